import type { Subjects } from '@blixard/contracts';
import { DispatchCandidate, DispatchState, FairCursor, FleetWorker, keyOf, planDispatch, PlacementPolicy, PlacementRequirements, QueueControls, START_CURSOR } from '@blixard/domain';
import { jobEventRow } from './outbox-rows';
import type { Pool } from 'pg';
import { poolOf, type Db, type Job } from './prisma';
import { heldOnWorkersSql, IN_FLIGHT_JOBS, inTransaction, jobFromRow, Sql } from './sql';

export interface ParentResult {
  jobId: string;
  status: string;
  result: unknown;
}

export interface DispatchBatch {
  jobs: Job[];
  /** Each dependent's parents, with their results. */
  parents: Map<string, ParentResult[]>;
  /** False when another scheduler holds the dispatch lock this round. */
  locked: boolean;
  /** True when more ready work may be admissible right now (a full batch was claimed). */
  more: boolean;
}

/** Arbitrary, fixed: the transaction-scoped advisory lock that serialises dispatch decisions. */
const DISPATCH_LOCK = 727275;

/**
 * The dispatcher's SQL. One round is one transaction that holds a transaction-scoped advisory
 * lock, so every scheduler replica decides on the same counts and limits hold exactly; the
 * replicas still share the rest of the work (reports, recovery) and take over dispatch at once
 * when the holder dies (the lock dies with its connection).
 */
export class DispatchStore {
  private readonly pool: Pool;
  /** Each queue's last placed worker as read this round (to write back only what moved). */
  private readonly lastPlaced = new Map<string, string | null>();

  constructor(
    db: Db,
    private readonly options: { subjects: Subjects; source: string; claimLeaseMs: number; fairness: boolean; reservePercent?: number },
    /** A pool of the dispatcher's own, so a round never queues behind report handling. */
    pool?: Pool,
  ) {
    this.pool = pool ?? poolOf(db);
  }

  async claimForDispatch(limit: number): Promise<DispatchBatch> {
    return inTransaction(this.pool, async (tx) => {
      const { rows: [lock] } = await tx.query<{ locked: boolean }>(`SELECT pg_try_advisory_xact_lock($1) AS locked`, [DISPATCH_LOCK]);
      if (!lock?.locked) return { jobs: [], parents: new Map(), locked: false, more: false };

      const state = await this.loadState(tx);
      const backends = [...state.freeSlots].filter(([, free]) => free > 0).map(([b]) => b);
      if (backends.length === 0) return { jobs: [], parents: new Map(), locked: true, more: false };
      const closedQueues = [...state.queues].filter(([q, c]) => isClosed(q, c, state)).map(([q]) => q);
      const saturated = saturatedKeys(state);
      // No round can claim more than the free slots: reading far more candidates per key than
      // that only costs (each is a heap visit past the dead index entries of recent claims).
      const free = backends.reduce((n, b) => n + (state.freeSlots.get(b) ?? 0), 0);
      const byBackend = await this.loadCandidates(tx, Math.min(limit, Math.max(2 * free, 16)), backends, closedQueues, saturated);
      // Fairness shares each backend's slots: one weighted round robin per backend, whose position
      // is shared by every replica (each round continues where the last one stopped).
      const cursors = state.cursors;
      const plan = { chosen: [] as string[], placements: new Map<string, string>(), waiting: new Map<string, string>() };
      for (const [backend, byKey] of byBackend) {
        if (plan.chosen.length >= limit) break;
        const cursor: FairCursor = cursors.get(backend) ?? START_CURSOR;
        const part = planDispatch(byKey, state, limit - plan.chosen.length, {
          fairness: this.options.fairness,
          cursor,
          order: (a, b) => (a as Ranked).rank - (b as Ranked).rank,
        });
        plan.chosen.push(...part.chosen);
        for (const [id, w] of part.placements) plan.placements.set(id, w);
        for (const [id, why] of part.waiting) plan.waiting.set(id, why);
        if (part.cursor.key !== cursor.key || part.cursor.used !== cursor.used) {
          await tx.query(
            `INSERT INTO dispatch_cursor (backend, fair_key, fair_used) VALUES ($1, $2, $3)
             ON CONFLICT (backend) DO UPDATE SET fair_key = excluded.fair_key, fair_used = excluded.fair_used`,
            [backend, part.cursor.key, part.cursor.used],
          );
        }
      }
      await this.recordPlacement(tx, plan.waiting, state);
      if (plan.chosen.length === 0) return { jobs: [], parents: new Map(), locked: true, more: false };

      // Guarded by status: a job cancelled since it was read is not claimed. A placed job holds
      // its worker (and what it reserved there) from now until the attempt ends.
      const { rows: claimed } = await tx.query(
        `UPDATE jobs
         -- clock_timestamp(), not now(): the transaction began before another replica may have made
         -- the job due, and a claim must never look earlier than the job's run-at.
         SET status = 'CLAIMED', attempt = attempt + 1, worker_id = p.worker_id, deadline_at = NULL, wait_reason = NULL,
             lease_expires_at = now() + ($1::int * interval '1 millisecond'),
             dispatched_at = clock_timestamp(), updated_at = now()
         FROM unnest($2::uuid[], $3::text[]) AS p(id, worker_id)
         WHERE jobs.id = p.id AND jobs.status = 'PENDING'
         RETURNING jobs.*, EXISTS (SELECT 1 FROM job_dependencies d WHERE d.child_id = jobs.id) AS has_parents`,
        [this.options.claimLeaseMs, plan.chosen, plan.chosen.map((id) => plan.placements.get(id) ?? null)],
      );
      const order = new Map(plan.chosen.map((id, i) => [id, i]));
      const jobs = claimed.map(jobFromRow).sort((a, b) => order.get(a.id)! - order.get(b.id)!);
      // The attempt rows and the `claimed` events in one statement (one round trip under the lock).
      const events = jobs.map((j) => jobEventRow(this.options.subjects, this.options.source, 'claimed', j, 'PENDING'));
      await tx.query(
        `WITH attempts AS (
           INSERT INTO job_attempts (job_id, attempt, queue, concurrency_key, claimed_at)
           SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::timestamptz[]))
         INSERT INTO outbox_events (subject, event) SELECT * FROM unnest($6::text[], $7::jsonb[])`,
        [
          jobs.map((j) => j.id), jobs.map((j) => j.attempt), jobs.map((j) => j.queue), jobs.map((j) => j.concurrencyKey), jobs.map((j) => j.dispatchedAt),
          events.map((e) => e.subject), events.map((e) => JSON.stringify(e.event)),
        ],
      );
      const dependents = claimed.filter((r) => r.has_parents).map((r) => r.id as string);
      const parents = dependents.length > 0 ? await loadParents(tx, dependents) : new Map<string, ParentResult[]>();
      return { jobs, parents, locked: true, more: plan.chosen.length === limit };
    });
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
   * and the fairness cursors: one statement (one round trip), since a round holds the dispatch
   * lock and every other replica's round waits for it. Rate-limit windows follow only for queues
   * that have rate limits.
   */
  private async loadState(tx: Sql): Promise<DispatchState & { cursors: Map<string, FairCursor> }> {
    const { rows: [snap] } = await tx.query<{
      capacity: { backend: string; slots: number }[];
      in_flight: { backend: string; queue: string; concurrency_key: string | null; fairness_key: string; n: number }[];
      queues: QueueRow[];
      weights: { key: string; weight: number }[];
      workers: { id: string; backend: string; labels: Record<string, string>; capacity: Record<string, number>; concurrency: number; since: string }[];
      held: { worker_id: string; resource: string; amount: number }[];
      cursors: { backend: string; fair_key: string | null; fair_used: number }[];
    }>(`
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
        (SELECT coalesce(json_agg(d), '[]') FROM dispatch_cursor d) AS cursors`);
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
    };
  }

  /**
   * Up to `limit` ready jobs per fairness key, highest priority first then oldest, leaving out
   * queues that cannot take any, concurrency keys at their limit and backends without capacity.
   * The keys are found with a skip scan over the index, so a key with 100,000 waiting jobs costs
   * no more than one with a single job.
   */
  private async loadCandidates(
    tx: Sql,
    limit: number,
    backends: string[],
    closedQueues: string[],
    saturated: { queues: string[]; keys: string[] },
  ): Promise<Map<string, Map<string, DispatchCandidate[]>>> {
    const { rows } = await tx.query<{ id: string; backend: string; queue: string; fairness_key: string; concurrency_key: string | null; requirements: PlacementRequirements | null; rank: string }>(
      `
      WITH RECURSIVE fair_keys(k) AS (
        (SELECT fairness_key FROM jobs WHERE status = 'PENDING' ORDER BY fairness_key LIMIT 1)
        UNION ALL
        SELECT (SELECT fairness_key FROM jobs WHERE status = 'PENDING' AND fairness_key > fk.k ORDER BY fairness_key LIMIT 1)
        FROM fair_keys fk WHERE fk.k IS NOT NULL
      )
      SELECT j.id, j.backend, j.queue, j.fairness_key, j.concurrency_key, j.requirements,
             row_number() OVER (ORDER BY j.priority DESC, j.created_at, j.id) AS rank
      FROM fair_keys fk
      CROSS JOIN LATERAL (
        (${readyOfKey('requirements IS NULL', '$5')})
        UNION ALL
        -- Jobs with requirements have their own list (and partial index), so a head of jobs that
        -- fit no worker yet never hides the ones behind them that do.
        (${readyOfKey('requirements IS NOT NULL', '$6')})
      ) j
      WHERE fk.k IS NOT NULL`,
      [backends, closedQueues, saturated.queues, saturated.keys, limit, limit * PLACED_LOOKAHEAD],
    );
    // backend → fairness key → candidates in priority order.
    const byBackend = new Map<string, Map<string, DispatchCandidate[]>>();
    for (const r of rows.sort((a, b) => Number(a.rank) - Number(b.rank))) {
      const c: Ranked = { id: r.id, backend: r.backend, queue: r.queue, fairnessKey: r.fairness_key, concurrencyKey: r.concurrency_key, requirements: r.requirements, rank: Number(r.rank) };
      const byKey = byBackend.get(c.backend) ?? byBackend.set(c.backend, new Map()).get(c.backend)!;
      const list = byKey.get(c.fairnessKey) ?? byKey.set(c.fairnessKey, []).get(c.fairnessKey)!;
      list.push(c);
    }
    return byBackend;
  }

  /**
   * What the dispatcher has to do besides claiming, in one cheap read (both are index lookups):
   * the earliest SCHEDULED run-at (and whether it is due by the database's clock), and whether any
   * job is BLOCKED on parents. A round skips promotion and dependency resolution when there is
   * nothing for them, which is most rounds of a busy queue.
   */
  async pendingWork(): Promise<{ nextRunAt: Date | null; due: boolean; blocked: boolean }> {
    const { rows: [r] } = await this.pool.query<{ at: Date | null; due: boolean | null; blocked: boolean }>(
      `SELECT s.at, s.at <= now() AS due, EXISTS (SELECT 1 FROM jobs WHERE status = 'BLOCKED') AS blocked
       FROM (SELECT min(run_at) AS at FROM jobs WHERE status = 'SCHEDULED') s`,
    );
    return { nextRunAt: r?.at ? new Date(r.at) : null, due: r?.due === true, blocked: r?.blocked === true };
  }
}

type Ranked = DispatchCandidate & { rank: number };

/**
 * One fairness key's (`fk.k`) ready jobs in claim order, within the candidates query: on a
 * backend with free slots ($1), not in a closed queue ($2), not of a saturated concurrency key
 * ($3, $4), at most `limit` of them.
 */
function readyOfKey(which: string, limit: string): string {
  return `SELECT id, backend, queue, fairness_key, concurrency_key, requirements, priority, created_at FROM jobs
          WHERE status = 'PENDING' AND fairness_key = fk.k AND ${which}
            AND backend = ANY($1::text[])
            AND NOT (queue = ANY($2::text[]))
            AND NOT EXISTS (
              SELECT 1 FROM unnest($3::text[], $4::text[]) AS s(q, k)
              WHERE s.q = jobs.queue AND s.k = jobs.concurrency_key)
          ORDER BY priority DESC, created_at, id
          LIMIT ${limit}`;
}

/** Jobs with requirements looked at per fairness key and round, per job the round may claim. */
const PLACED_LOOKAHEAD = 4;

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
