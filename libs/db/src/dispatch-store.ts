import type { Subjects } from '@blixard/contracts';
import { DispatchCandidate, DispatchState, FairCursor, FleetWorker, keyOf, planDispatch, PlacementPolicy, PlacementRequirements, QueueControls, START_CURSOR } from '@blixard/domain';
import { jobEventRow } from './outbox-rows';
import type { Pool, PoolClient } from 'pg';
import { poolOf, type Db, type Job } from './prisma';
import { columnList, heldOnWorkersSql, IN_FLIGHT_JOBS, JOB_COLUMNS, jobFromRow, prepared, Sql } from './sql';

export interface ParentResult {
  jobId: string;
  status: string;
  result: unknown;
}

export interface DispatchBatch {
  jobs: Job[];
  /** Each dependent's parents, with their results. */
  parents: Map<string, ParentResult[]>;
  /** False when another scheduler leads dispatch. */
  locked: boolean;
  /** True when more ready work may be admissible right now (a full batch was claimed). */
  more: boolean;
  /** What else the round found to do (null when it did not lead). */
  work: PendingWork | null;
}

/** Delayed and blocked jobs: whether promotion or dependency resolution has anything to do. */
export interface PendingWork {
  /** The earliest SCHEDULED run-at. */
  nextRunAt: Date | null;
  /** That run-at has come, by the database's clock. */
  due: boolean;
  /** Some job is BLOCKED on its parents. */
  blocked: boolean;
}

/** Arbitrary, fixed: the session advisory lock held by the scheduler that leads dispatch. */
const DISPATCH_LOCK = 727275;
/** How often a scheduler that does not lead dispatch tries to take the lead. */
const STANDBY_RETRY_MS = 100;

/**
 * The dispatcher's SQL. One scheduler at a time leads dispatch: it holds a session advisory lock
 * on a connection of its own and makes every claim on that connection, so limits hold exactly
 * (only the leader adds attempts in flight, and everything else can only lower the counts it
 * read). The others share the rest of the work (reports, recovery) and take the lead within
 * STANDBY_RETRY_MS of the leader's connection closing, which ends its lock with it.
 *
 * Leading without a transaction keeps a round to three round trips, whatever else the scheduler
 * is doing: the state (with the pending delayed and blocked work), the candidates, and one
 * statement that claims, writes the attempt rows, the `claimed` events and the fairness cursors.
 */
export class DispatchStore {
  private readonly pool: Pool;
  /** Each queue's last placed worker as read this round (to write back only what moved). */
  private readonly lastPlaced = new Map<string, string | null>();
  /** The connection holding the dispatch lock, while this store leads. */
  private session: PoolClient | null = null;
  private lastTry = 0;

  constructor(
    db: Db,
    private readonly options: { subjects: Subjects; source: string; claimLeaseMs: number; fairness: boolean; reservePercent?: number },
    /** A pool of the dispatcher's own, so a round never queues behind report handling. */
    pool?: Pool,
  ) {
    this.pool = pool ?? poolOf(db);
  }

  /** True while this store holds the dispatch lock. */
  get leading(): boolean {
    return this.session !== null;
  }

  /**
   * One round, if this store leads dispatch (taking the lead when nobody has it): reads the state,
   * lets `prepare` promote due and release unblocked jobs, then claims ready jobs as far as
   * capacity, limits and fairness allow.
   */
  async claimForDispatch(limit: number, prepare?: (work: PendingWork) => Promise<void>): Promise<DispatchBatch> {
    const session = await this.lead();
    if (!session) return { jobs: [], parents: new Map(), locked: false, more: false, work: null };
    try {
      return await this.round(session, limit, prepare);
    } catch (err) {
      // The connection may be broken, or the lock with it: start over on a new one.
      this.resign(err as Error);
      throw err;
    }
  }

  /** Gives up the lead (the lock goes with the connection). */
  async close(): Promise<void> {
    const session = this.session;
    if (!session) return;
    await session.query(`SELECT pg_advisory_unlock($1)`, [DISPATCH_LOCK]).catch(() => undefined);
    this.resign();
  }

  private async lead(): Promise<PoolClient | null> {
    if (this.session) return this.session;
    if (Date.now() - this.lastTry < STANDBY_RETRY_MS) return null;
    this.lastTry = Date.now();
    const client = await this.pool.connect();
    try {
      const { rows: [r] } = await client.query<{ locked: boolean }>(`SELECT pg_try_advisory_lock($1) AS locked`, [DISPATCH_LOCK]);
      if (r?.locked) {
        this.session = client;
        return client;
      }
      client.release();
      return null;
    } catch (err) {
      client.release(err as Error);
      throw err;
    }
  }

  private resign(err?: Error): void {
    const session = this.session;
    this.session = null;
    try {
      // Destroyed, not returned to the pool: closing the connection is what frees the lock.
      session?.release(err ?? true);
    } catch {
      // Already released by the pool's error handling (createPool).
    }
  }

  private async round(session: PoolClient, limit: number, prepare?: (work: PendingWork) => Promise<void>): Promise<DispatchBatch> {
    const state = await this.loadState(session);
    if (prepare && (state.work.due || state.work.blocked)) await prepare(state.work);
    const none = { jobs: [], parents: new Map(), locked: true, more: false, work: state.work };
    const backends = [...state.freeSlots].filter(([, free]) => free > 0).map(([b]) => b);
    if (backends.length === 0) return none;
    const closedQueues = [...state.queues].filter(([q, c]) => isClosed(q, c, state)).map(([q]) => q);
    const saturated = saturatedKeys(state);
    // No round can claim more than the free slots: reading far more candidates per key than
    // that only costs (each is a heap visit past the dead index entries of recent claims).
    const free = backends.reduce((n, b) => n + (state.freeSlots.get(b) ?? 0), 0);
    const { byBackend, byId, at } = await this.loadCandidates(session, Math.min(limit, Math.max(2 * free, 16)), backends, closedQueues, saturated);
    // Fairness shares each backend's slots: one weighted round robin per backend, whose position
    // is kept in the database (a new leader continues where the last one stopped).
    const plan = { chosen: [] as Ranked[], placements: new Map<string, string>(), waiting: new Map<string, string>() };
    const cursors: { backend: string; key: string | null; used: number }[] = [];
    for (const [backend, byKey] of byBackend) {
      if (plan.chosen.length >= limit) break;
      const cursor: FairCursor = state.cursors.get(backend) ?? START_CURSOR;
      const part = planDispatch(byKey, state, limit - plan.chosen.length, {
        fairness: this.options.fairness,
        cursor,
        order: (a, b) => (a as Ranked).rank - (b as Ranked).rank,
      });
      plan.chosen.push(...part.chosen.map((id) => byId.get(id)!));
      for (const [id, w] of part.placements) plan.placements.set(id, w);
      for (const [id, why] of part.waiting) plan.waiting.set(id, why);
      if (part.cursor.key !== cursor.key || part.cursor.used !== cursor.used) cursors.push({ backend, ...part.cursor });
    }
    await this.recordPlacement(session, plan.waiting, state);
    if (plan.chosen.length === 0) {
      if (cursors.length > 0) await session.query(upsertCursors('$1', '$2', '$3'), cursorParams(cursors));
      return none;
    }
    const jobs = await this.claim(session, plan.chosen, plan.placements, cursors, at);
    const dependents = jobs.filter((j) => j.hasParents).map((j) => j.job.id);
    const parents = dependents.length > 0 ? await loadParents(session, dependents) : new Map<string, ParentResult[]>();
    return { jobs: jobs.map((j) => j.job), parents, locked: true, more: plan.chosen.length === limit, work: state.work };
  }

  /**
   * Claims the chosen jobs in one statement, which also writes their attempt rows, their `claimed`
   * events and the moved fairness cursors. Each event is built here from the candidate's row as
   * the claim leaves it (`at` is the claim's time, read with the candidates); a job cancelled or
   * claimed since it was read is left alone, and so is its event.
   */
  private async claim(session: PoolClient, chosen: Ranked[], placements: Map<string, string>, cursors: { backend: string; key: string | null; used: number }[], at: Date): Promise<{ job: Job; hasParents: boolean }[]> {
    const leaseMs = this.options.claimLeaseMs;
    const events = chosen.map((c) => {
      const claimed: Job = {
        ...c.row,
        status: 'CLAIMED',
        attempt: c.row.attempt + 1,
        workerId: placements.get(c.id) ?? null,
        dispatchedAt: at,
        updatedAt: at,
      } as Job;
      return jobEventRow(this.options.subjects, this.options.source, 'claimed', claimed, 'PENDING');
    });
    const { rows } = await session.query({
      ...prepared(`WITH claimed AS (
         UPDATE jobs
         SET status = 'CLAIMED', attempt = jobs.attempt + 1, worker_id = p.worker_id, deadline_at = NULL, wait_reason = NULL,
             lease_expires_at = $1::timestamptz + ($2::int * interval '1 millisecond'),
             dispatched_at = $1, updated_at = $1
         FROM unnest($3::uuid[], $4::text[], $5::int[]) AS p(id, worker_id, read_attempt)
         WHERE jobs.id = p.id AND jobs.status = 'PENDING' AND jobs.attempt = p.read_attempt
         RETURNING ${CLAIM_RETURNING}, EXISTS (SELECT 1 FROM job_dependencies d WHERE d.child_id = jobs.id) AS has_parents
       ), attempts AS (
         INSERT INTO job_attempts (job_id, attempt, queue, concurrency_key, claimed_at)
         SELECT id, attempt, queue, concurrency_key, dispatched_at FROM claimed
       ), events AS (
         INSERT INTO outbox_events (subject, event)
         SELECT e.subject, e.event FROM unnest($3::uuid[], $6::text[], $7::jsonb[]) WITH ORDINALITY AS e(id, subject, event, n)
         WHERE e.id IN (SELECT id FROM claimed) ORDER BY e.n
       ), cursors AS (
         ${upsertCursors('$8', '$9', '$10')}
       )
       SELECT * FROM claimed`),
      values: [
        at, leaseMs, chosen.map((c) => c.id), chosen.map((c) => placements.get(c.id) ?? null), chosen.map((c) => c.row.attempt),
        events.map((e) => e.subject), events.map((e) => JSON.stringify(e.event)),
        ...cursorParams(cursors),
      ],
    });
    const order = new Map(chosen.map((c, i) => [c.id, i]));
    return rows
      .map((r) => ({ job: jobFromRow(r), hasParents: r.has_parents === true }))
      .sort((a, b) => order.get(a.job.id)! - order.get(b.job.id)!);
  }

  /**
   * Shows why placed jobs wait (only where the reason changed, so a waiting job is not rewritten
   * every round) and remembers each queue's last placement for round-robin.
   */
  private async recordPlacement(tx: Sql, waiting: Map<string, string>, state: DispatchState): Promise<void> {
    if (waiting.size > 0) {
      await tx.query(
        `UPDATE jobs SET wait_reason = w.reason
         FROM unnest($1::uuid[], $2::text[]) AS w(id, reason)
         WHERE jobs.id = w.id AND jobs.status = 'PENDING' AND jobs.wait_reason IS DISTINCT FROM w.reason`,
        [[...waiting.keys()], [...waiting.values()]],
      );
    }
    const moved = [...(state.placement ?? [])].filter(([q, p]) => p.policy === 'round-robin' && p.lastWorker !== null && this.lastPlaced.get(q) !== p.lastWorker);
    if (moved.length > 0) {
      await tx.query(
        `INSERT INTO queues (name, last_placed_worker) SELECT * FROM unnest($1::text[], $2::text[])
         ON CONFLICT (name) DO UPDATE SET last_placed_worker = excluded.last_placed_worker`,
        [moved.map(([q]) => q), moved.map(([, p]) => p.lastWorker)],
      );
    }
  }

  /**
   * Capacity, attempts in flight, queue controls, weights, the fleet with what each worker holds,
   * the fairness cursors and the pending delayed and blocked work: one statement (one round trip).
   * Rate-limit windows follow only for queues that have rate limits.
   */
  private async loadState(tx: Sql): Promise<DispatchState & { cursors: Map<string, FairCursor>; work: PendingWork }> {
    const { rows: [snap] } = await tx.query<{
      capacity: { backend: string; slots: number }[];
      in_flight: { backend: string; queue: string; concurrency_key: string | null; fairness_key: string; n: number }[];
      queues: QueueRow[];
      weights: { key: string; weight: number }[];
      workers: { id: string; backend: string; labels: Record<string, string>; capacity: Record<string, number>; concurrency: number; since: string }[];
      held: { worker_id: string; resource: string; amount: number }[];
      cursors: { backend: string; fair_key: string | null; fair_used: number }[];
      next_run_at: Date | null;
      due: boolean | null;
      blocked: boolean;
    }>(prepared(`
      -- The attempts in flight, read once for the counts and for what they hold on workers.
      WITH in_flight AS MATERIALIZED (${IN_FLIGHT_JOBS})
      SELECT
        (SELECT coalesce(json_agg(c), '[]') FROM (
           SELECT backend, sum(concurrency)::int AS slots FROM workers WHERE status = 'ONLINE' GROUP BY backend) c) AS capacity,
        (SELECT coalesce(json_agg(f), '[]') FROM (
           SELECT backend, queue, concurrency_key, fairness_key, count(*)::int AS n FROM in_flight
           GROUP BY backend, queue, concurrency_key, fairness_key) f) AS in_flight,
        (SELECT coalesce(json_agg(q), '[]') FROM queues q) AS queues,
        (SELECT coalesce(json_agg(w), '[]') FROM fairness_weights w) AS weights,
        (SELECT coalesce(json_agg(w), '[]') FROM (
           SELECT id, backend, labels, capacity, concurrency, started_at AS since FROM workers WHERE status = 'ONLINE') w) AS workers,
        (SELECT coalesce(json_agg(h), '[]') FROM (${heldOnWorkersSql('IS NOT NULL', 'in_flight')}) h) AS held,
        (SELECT coalesce(json_agg(d), '[]') FROM dispatch_cursor d) AS cursors,
        p.*
      FROM (${PENDING_WORK}) p`));
    const { capacity, in_flight: inFlight, queues: queueRows, weights } = snap!;

    const freeSlots = new Map(capacity.map((c) => [c.backend, c.slots]));
    const queueInFlight = new Map<string, number>();
    const keyInFlight = new Map<string, number>();
    const fairInFlight = new Map<string, number>();
    const add = (m: Map<string, number>, k: string, n: number) => m.set(k, (m.get(k) ?? 0) + n);
    for (const r of inFlight) {
      add(freeSlots, r.backend, -r.n);
      add(queueInFlight, r.queue, r.n);
      if (r.concurrency_key !== null) add(keyInFlight, keyOf(r.queue, r.concurrency_key), r.n);
      add(fairInFlight, keyOf(r.backend, r.fairness_key), r.n);
    }
    // Minimum share, with fairness only: a few slots per backend for keys with nothing running.
    const percent = this.options.fairness ? (this.options.reservePercent ?? 0) : 0;
    const reserved = new Map(capacity.map((c) => [c.backend, Math.floor((c.slots * percent) / 100)]));
    const queues = new Map<string, QueueControls>(
      queueRows.map((q) => [
        q.name,
        {
          paused: q.paused,
          maxConcurrency: q.max_concurrency,
          rateLimit: q.rate_limit_n !== null && q.rate_limit_interval_ms !== null ? { n: q.rate_limit_n, intervalMs: q.rate_limit_interval_ms } : null,
          keyConcurrency: q.key_concurrency,
          keyRateLimit: q.key_rate_limit_n !== null && q.key_rate_limit_interval_ms !== null ? { n: q.key_rate_limit_n, intervalMs: q.key_rate_limit_interval_ms } : null,
        },
      ]),
    );
    // Sliding-window rate limits: dispatches (attempt rows) within each interval.
    const queueRecent = new Map<string, number>();
    const keyRecent = new Map<string, number>();
    for (const [name, c] of queues) {
      if (c.rateLimit) {
        const { rows: [r] } = await tx.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM job_attempts
           WHERE queue = $1 AND claimed_at > now() - ($2::int * interval '1 millisecond')`,
          [name, c.rateLimit.intervalMs],
        );
        queueRecent.set(name, r?.n ?? 0);
      }
      if (c.keyRateLimit) {
        const { rows } = await tx.query<{ concurrency_key: string; n: number }>(
          `SELECT concurrency_key, count(*)::int AS n FROM job_attempts
           WHERE queue = $1 AND concurrency_key IS NOT NULL
             AND claimed_at > now() - ($2::int * interval '1 millisecond')
           GROUP BY concurrency_key`,
          [name, c.keyRateLimit.intervalMs],
        );
        for (const r of rows) keyRecent.set(keyOf(name, r.concurrency_key), r.n);
      }
    }

    // The fleet, for jobs with requirements: online workers with what attempts in flight hold there
    // (one slot each, plus a placed attempt's resources, from its claim to its end).
    const fleet = new Map<string, FleetWorker[]>();
    const byId = new Map<string, FleetWorker>();
    for (const w of snap!.workers) {
      const numeric = Object.fromEntries(Object.entries(w.capacity ?? {}).filter(([, v]) => typeof v === 'number'));
      const fw: FleetWorker = { id: w.id, backend: w.backend, labels: w.labels ?? {}, capacity: { ...numeric, slots: w.concurrency }, used: {}, since: Date.parse(w.since) };
      byId.set(w.id, fw);
      (fleet.get(w.backend) ?? fleet.set(w.backend, []).get(w.backend)!).push(fw);
    }
    for (const h of snap!.held) {
      const w = byId.get(h.worker_id);
      if (w) w.used[h.resource] = (w.used[h.resource] ?? 0) + Number(h.amount);
    }
    const placement = new Map(queueRows.map((q) => [q.name, { policy: (q.placement_policy ?? 'binpack') as PlacementPolicy, lastWorker: q.last_placed_worker }]));
    for (const [q, pl] of placement) this.lastPlaced.set(q, pl.lastWorker);
    const cursors = new Map(snap!.cursors.map((c) => [c.backend, { key: c.fair_key, used: c.fair_used }]));
    return {
      freeSlots, queues, queueInFlight, queueRecent, keyInFlight, keyRecent,
      weights: new Map(weights.map((w) => [w.key, w.weight])), reserved, fairInFlight, fleet, placement, cursors,
      work: pendingWorkOf(snap!),
    };
  }

  /**
   * Up to `limit` ready jobs per fairness key, highest priority first then oldest, leaving out
   * queues that cannot take any, concurrency keys at their limit and backends without capacity
   * (CANDIDATES_SQL). The keys, and their queues and backends, are found with a skip scan over an
   * index, so a key with 100,000 waiting jobs costs no more than one with a single job, whether
   * its queue is open or not.
   */
  private async loadCandidates(
    tx: Sql,
    limit: number,
    backends: string[],
    closedQueues: string[],
    saturated: { queues: string[]; keys: string[] },
  ): Promise<{ byBackend: Map<string, Map<string, DispatchCandidate[]>>; byId: Map<string, Ranked>; at: Date }> {
    const { rows } = await tx.query<Record<string, unknown> & { id: string; backend: string; queue: string; fairness_key: string; concurrency_key: string | null; requirements: PlacementRequirements | null; rank: string; at: Date }>({
      ...prepared(CANDIDATES_SQL),
      values: [backends, closedQueues, saturated.queues, saturated.keys, limit, limit * PLACED_LOOKAHEAD],
    });
    // backend → fairness key → candidates in priority order.
    const byBackend = new Map<string, Map<string, DispatchCandidate[]>>();
    const byId = new Map<string, Ranked>();
    for (const r of rows.sort((a, b) => Number(a.rank) - Number(b.rank))) {
      const c: Ranked = {
        id: r.id, backend: r.backend, queue: r.queue, fairnessKey: r.fairness_key, concurrencyKey: r.concurrency_key, requirements: r.requirements, rank: Number(r.rank),
        row: Object.fromEntries(EVENT_FIELDS.map((f) => [f, r[JOB_COLUMNS[f]]])) as Ranked['row'],
      };
      byId.set(c.id, c);
      const byKey = byBackend.get(c.backend) ?? byBackend.set(c.backend, new Map()).get(c.backend)!;
      const list = byKey.get(c.fairnessKey) ?? byKey.set(c.fairnessKey, []).get(c.fairnessKey)!;
      list.push(c);
    }
    return { byBackend, byId, at: rows[0]?.at ?? new Date() };
  }

  /**
   * What the dispatcher has to do besides claiming, in one cheap read (both are index lookups):
   * the earliest SCHEDULED run-at (and whether it is due by the database's clock), and whether any
   * job is BLOCKED on parents. A round skips promotion and dependency resolution when there is
   * nothing for them, which is most rounds of a busy queue.
   */
  async pendingWork(): Promise<PendingWork> {
    const { rows: [r] } = await this.pool.query<{ next_run_at: Date | null; due: boolean | null; blocked: boolean }>(PENDING_WORK);
    return pendingWorkOf(r!);
  }
}

/** The claim's columns (columnList). */
const CLAIM_RETURNING = columnList(JOB_COLUMNS, 'jobs');

/** PendingWork as one row (next_run_at, due, blocked): two index lookups. */
const PENDING_WORK = `
  SELECT s.at AS next_run_at, s.at <= now() AS due, EXISTS (SELECT 1 FROM jobs WHERE status = 'BLOCKED') AS blocked
  FROM (SELECT min(run_at) AS at FROM jobs WHERE status = 'SCHEDULED') s`;

function pendingWorkOf(r: { next_run_at: Date | null; due: boolean | null; blocked: boolean }): PendingWork {
  return { nextRunAt: r.next_run_at ? new Date(r.next_run_at) : null, due: r.due === true, blocked: r.blocked === true };
}

/** A candidate with its place in claim order and what its `claimed` event needs of its row. */
type Ranked = DispatchCandidate & { rank: number; row: Pick<Job, (typeof EVENT_FIELDS)[number]> };

/** The job fields a `claimed` event carries besides those the claim sets (toJobEventData). */
const EVENT_FIELDS = ['id', 'queue', 'backend', 'attempt', 'maxAttempts', 'runAt', 'createdAt', 'startedAt', 'finishedAt', 'error', 'errorCode', 'exitCode', 'tenant'] as const;

/** What the candidates query reads of each job: for planning, ordering and the `claimed` event. */
const CANDIDATE_COLUMNS = [...new Set(['id', 'backend', 'queue', 'fairness_key', 'concurrency_key', 'requirements', 'priority', ...EVENT_FIELDS.map((f) => JOB_COLUMNS[f])])].join(', ');

/** Upserts the fairness cursors a round moved, given as three arrays (backend, key, used). */
function upsertCursors(backends: string, keys: string, used: string): string {
  return `INSERT INTO dispatch_cursor (backend, fair_key, fair_used)
          SELECT * FROM unnest(${backends}::text[], ${keys}::text[], ${used}::int[])
          ON CONFLICT (backend) DO UPDATE SET fair_key = excluded.fair_key, fair_used = excluded.fair_used`;
}

function cursorParams(cursors: { backend: string; key: string | null; used: number }[]): unknown[] {
  return [cursors.map((c) => c.backend), cursors.map((c) => c.key), cursors.map((c) => c.used)];
}

/** Jobs with requirements looked at per fairness key and round, per job the round may claim. */
const PLACED_LOOKAHEAD = 4;

/** Not of a saturated concurrency key ($3, $4: queue and key pairs). */
const NOT_SATURATED = `NOT EXISTS (SELECT 1 FROM unnest($3::text[], $4::text[]) AS s(q, k) WHERE s.q = jobs.queue AND s.k = jobs.concurrency_key)`;

/**
 * One kind of candidate (`which`: jobs without requirements, or with) read per lane: one fairness
 * key's jobs of one queue on one backend, in claim order. A recursive skip scan over the kind's
 * lane index finds the lanes; a lane in a closed queue ($2) or on a backend without free slots
 * ($1) is passed over at the cost of one index probe, however many jobs wait in it. Each key then
 * keeps its first `limit` across its lanes. Two CTEs: `<name>_lanes` and `<name>`.
 */
function laneCandidates(name: string, which: string, limit: string): string {
  return `${name}_lanes(k, q, b) AS (
    (SELECT fairness_key, queue, backend FROM jobs WHERE status = 'PENDING' AND ${which}
     ORDER BY fairness_key, queue, backend LIMIT 1)
    UNION ALL
    SELECT n.fairness_key, n.queue, n.backend FROM ${name}_lanes l CROSS JOIN LATERAL (
      SELECT fairness_key, queue, backend FROM jobs
      WHERE status = 'PENDING' AND ${which} AND (fairness_key, queue, backend) > (l.k, l.q, l.b)
      ORDER BY fairness_key, queue, backend LIMIT 1) n
  ),
  ${name} AS (
    SELECT c.* FROM (
      SELECT j.*, row_number() OVER (PARTITION BY j.fairness_key ORDER BY j.priority DESC, j.created_at, j.id) AS n
      FROM ${name}_lanes l CROSS JOIN LATERAL (
        SELECT ${CANDIDATE_COLUMNS} FROM jobs
        WHERE status = 'PENDING' AND ${which} AND fairness_key = l.k AND queue = l.q AND backend = l.b AND ${NOT_SATURATED}
        ORDER BY priority DESC, created_at, id
        LIMIT ${limit}) j
      WHERE l.b = ANY($1::text[]) AND NOT (l.q = ANY($2::text[]))
    ) c
    WHERE c.n <= ${limit}
  )`;
}

/**
 * The candidates: per fairness key, up to $5 ready jobs without requirements and up to $6 with,
 * highest priority first then oldest, on backends with free slots ($1), outside closed queues
 * ($2) and saturated concurrency keys ($3, $4); each with its rank in claim order and the claim's
 * time. Read per lane (laneCandidates), so a backlog that cannot run now costs a round one index
 * probe: read per key with queue and backend as filters, a tenant's 15,000 jobs in a rate-limited
 * queue made each round walk all of them (42 ms at p99, under every other tenant's job). Jobs with
 * requirements have their own lanes (and partial index), so a head of jobs that fit no worker yet
 * never hides the ones behind them that do. Exported for the test that bounds its cost.
 */
export const CANDIDATES_SQL = `
  WITH RECURSIVE ${laneCandidates('unplaced', 'requirements IS NULL', '$5')},
  ${laneCandidates('placed', 'requirements IS NOT NULL', '$6')}
  SELECT c.*, row_number() OVER (ORDER BY c.priority DESC, c.created_at, c.id) AS rank,
         -- The claim's time: read once, after this statement's snapshot, so it is never earlier
         -- than the promotion that made a candidate ready (nor its run-at).
         (SELECT clock_timestamp()) AS at
  FROM (
    SELECT ${CANDIDATE_COLUMNS} FROM unplaced
    UNION ALL
    SELECT ${CANDIDATE_COLUMNS} FROM placed
  ) c`;

interface QueueRow {
  name: string;
  paused: boolean;
  max_concurrency: number | null;
  rate_limit_n: number | null;
  rate_limit_interval_ms: number | null;
  key_concurrency: number | null;
  key_rate_limit_n: number | null;
  key_rate_limit_interval_ms: number | null;
  placement_policy: string;
  last_placed_worker: string | null;
}

function isClosed(queue: string, c: QueueControls, s: DispatchState): boolean {
  return (
    c.paused ||
    (c.maxConcurrency !== null && (s.queueInFlight.get(queue) ?? 0) >= c.maxConcurrency) ||
    (c.rateLimit !== null && (s.queueRecent.get(queue) ?? 0) >= c.rateLimit.n)
  );
}

function saturatedKeys(s: DispatchState): { queues: string[]; keys: string[] } {
  const queues: string[] = [];
  const keys: string[] = [];
  const add = (compound: string) => {
    const [q, k] = compound.split('\u0000') as [string, string];
    queues.push(q);
    keys.push(k);
  };
  for (const [compound, n] of s.keyInFlight) {
    const q = s.queues.get(compound.split('\u0000')[0]!);
    if (q?.keyConcurrency !== null && q?.keyConcurrency !== undefined && n >= q.keyConcurrency) add(compound);
  }
  for (const [compound, n] of s.keyRecent) {
    const q = s.queues.get(compound.split('\u0000')[0]!);
    if (q?.keyRateLimit && n >= q.keyRateLimit.n) add(compound);
  }
  return { queues, keys };
}

/** Each dependent's parents with their status and result. */
export async function loadParents(sql: Sql, childIds: string[]): Promise<Map<string, ParentResult[]>> {
  const parents = new Map<string, ParentResult[]>();
  if (childIds.length === 0) return parents;
  const { rows } = await sql.query<{ child_id: string; id: string; status: string; result: unknown }>(
    `SELECT d.child_id, p.id, p.status::text AS status, p.result
     FROM job_dependencies d JOIN jobs p ON p.id = d.parent_id
     WHERE d.child_id = ANY($1::uuid[])`,
    [childIds],
  );
  for (const r of rows) {
    const list = parents.get(r.child_id) ?? [];
    list.push({ jobId: r.id, status: r.status, result: r.result ?? null });
    parents.set(r.child_id, list);
  }
  return parents;
}
