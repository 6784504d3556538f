import { createHash } from 'node:crypto';
import type { CompletedReport, FailedReport, ReportMessage, StartedReport, Subjects } from '@blixard/contracts';
import {
  AttemptFailure,
  canTransition,
  ConflictError,
  decideAfterFailure,
  initialStatus,
  JobStatus,
  JobSubmission,
  JobTransitionName,
  newJobId,
  NotFoundError,
  resolveBackoff,
  transition,
  BackoffPolicy,
  ValidationError,
} from '@blixard/domain';
import type { Pool } from 'pg';
import { annotateActiveSpan, captureTraceContext, SpanAttr } from '@blixard/telemetry';
import { poolOf, type Db, type Job, type JobAttempt } from './prisma';
import { inTransaction, insertJobRow, insertOutbox, jobFromRow, prepared, Sql, updateAttempts, updateJob, updateJobs } from './sql';
import { jobEventRow } from './outbox-rows';
import { loadParents, ParentResult } from './dispatch-store';

export interface JobStoreOptions {
  subjects: Subjects;
  /** CloudEvents `source` of the events this store writes, e.g. `/blixard/scheduler`. */
  source: string;
  /** How long a dispatched attempt may wait for an executor to start it. */
  claimLeaseMs: number;
  /** Lease of a running attempt; executor heartbeats renew it. */
  runLeaseMs: number;
  /** How long an idempotency key returns its job (default 24 h). */
  idempotencyWindowMs?: number;
}

export type ApplyResult =
  | { applied: true; job: Job }
  | { applied: false; reason: 'stale' | 'unknown_job'; job?: LockedJob };

/**
 * The columns a transition decision needs, read under `FOR NO KEY UPDATE`: it excludes every other
 * transition of the job, but not the key-share locks that inserts referencing the job take (log
 * chunks and end markers, attempts, dependents); `FOR UPDATE` would make them wait, and a batch
 * of reports deadlock with them.
 */
export interface LockedJob {
  id: string;
  status: JobStatus;
  attempt: number;
  workerId: string | null;
  maxAttempts: number;
  backoff: BackoffPolicy;
  timeoutMs: number | null;
  startedAt: Date | null;
  /** The database's clock: leases and deadlines are computed on it, never on a service's. */
  now: Date;
}

export type AttemptOutcome = 'FAILED' | 'TIMED_OUT' | 'CANCELLED' | 'LEASE_EXPIRED' | 'WORKER_LOST';

interface AttemptDetails {
  workerId?: string | null;
  exitCode?: number | null;
  durationMs?: number | null;
  stdoutTail?: string | null;
  stderrTail?: string | null;
}

/** A stable hash of a submission body, to tell an idempotent replay from a conflicting reuse of a key. */
export function requestHash(body: unknown): string {
  return createHash('sha256').update(canonicalJson(body)).digest('hex');
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

const addMs = (d: Date, ms: number): Date => new Date(d.getTime() + ms);

/** The tenant of everything made without an API key (auth disabled, jobs from before tenancy). */
export const DEFAULT_TENANT = 'default';

/** Who a new job belongs to: its tenant and the API key that submitted it. */
export interface JobOwner {
  tenant?: string;
  submittedBy?: string | null;
}

/**
 * Every write to a job goes through here: one transaction over the job row, its attempt row and
 * the outbox event of the transition. Each write locks the row, asks the domain's transition table
 * whether the transition is allowed from the status it finds (fencing by status and attempt
 * number), and otherwise changes nothing and reports the write as stale.
 */
export class JobStore {
  private readonly pool: Pool;

  constructor(
    private readonly db: Db,
    private readonly options: JobStoreOptions,
    /** Connections to use instead of the client's pool (the dispatcher's own, say). */
    pool?: Pool,
  ) {
    this.pool = pool ?? poolOf(db);
  }

  // ---------------------------------------------------------------- submit

  /**
   * Writes a new job and its `created` event in one transaction. With an idempotency key, a
   * second submission of the same body returns the first job (`created: false`); a different
   * body under the same key is a 409.
   */
  async submit(submission: JobSubmission, bodyHash: string, now: Date = new Date(), owner: JobOwner = {}): Promise<{ job: Job; created: boolean }> {
    const tenant = owner.tenant ?? DEFAULT_TENANT;
    if (submission.idempotencyKey !== null) {
      const existing = await this.findByIdempotencyKey(tenant, submission.queue, submission.idempotencyKey);
      if (existing) return { job: this.replayOf(existing, bodyHash), created: false };
    }
    try {
      // Without parents the job and its `created` event are one statement: no transaction needed.
      const job = submission.dependsOn.length > 0
        ? await inTransaction(this.pool, (tx) => this.insertJob(tx, submission, bodyHash, now, owner))
        : await this.insertJob(this.pool, submission, bodyHash, now, owner);
      return { job, created: true };
    } catch (err) {
      // Two submissions with one key raced; the loser returns the winner's job.
      if (submission.idempotencyKey !== null && (err as { code?: string }).code === '23505') {
        const existing = await this.findByIdempotencyKey(tenant, submission.queue, submission.idempotencyKey);
        if (existing) return { job: this.replayOf(existing, bodyHash), created: false };
      }
      throw err;
    }
  }

  /**
   * Inserts a job, its `created` event and its dependency edges within `tx` (one statement for a
   * job without parents, which needs no transaction). Parents must exist
   * (a missing one is a 400), so every edge points to an older job: cycles cannot be built.
   */
  async insertJob(tx: Sql, submission: JobSubmission, bodyHash: string | null, now: Date = new Date(), extra: { scheduleId?: string } & JobOwner = {}): Promise<Job> {
    const tenant = extra.tenant ?? DEFAULT_TENANT;
    let parentTraces: unknown[] = [];
    if (submission.dependsOn.length > 0) {
      // FOR SHARE: a parent cannot finish while its new dependent is being written, so the
      // resolver that runs after its transition sees this dependent. Another tenant's job is
      // reported as missing, like one that never existed.
      const { rows: found } = await tx.query<{ id: string; trace_context: unknown }>(`SELECT id, trace_context FROM jobs WHERE id = ANY($1::uuid[]) AND tenant = $2 FOR SHARE`, [submission.dependsOn, tenant]);
      parentTraces = found.map((r) => r.trace_context);
      const known = new Set(found.map((r) => r.id));
      const missing = submission.dependsOn.map((id, i) => ({ id, i })).filter(({ id }) => !known.has(id));
      if (missing.length > 0) {
        throw new ValidationError(missing.map(({ id, i }) => ({ field: `dependsOn[${i}]`, message: `job ${id} does not exist` })));
      }
    }
    const status = transition(null, 'created', initialStatus(submission, now));
    const job = await insertJobRow(tx, {
      id: newJobId(),
      queue: submission.queue,
      backend: submission.backend,
      payload: submission.payload,
      status,
      priority: submission.priority,
      labels: submission.labels,
      maxAttempts: submission.maxAttempts,
      timeoutMs: submission.timeoutMs,
      backoff: { ...submission.backoff },
      idempotencyKey: submission.idempotencyKey,
      requestHash: submission.idempotencyKey === null ? null : bodyHash,
      concurrencyKey: submission.concurrencyKey,
      fairnessKey: submission.fairnessKey,
      onParentFailure: submission.onParentFailure,
      scheduleId: extra.scheduleId ?? null,
      tenant,
      submittedBy: extra.submittedBy ?? null,
      // The submit's trace (the HTTP request, or the cron fire): its dispatch continues it, its
      // retries and dependents link back to it (see @blixard/telemetry job-spans.ts).
      traceContext: captureTraceContext(parentTraces) as unknown as Job['traceContext'],
      requirements: (submission.requirements ?? null) as unknown as Job['requirements'],
      placementDeadlineAt:
        submission.requirements && submission.placementDeadlineMs
          ? new Date(Math.max(now.getTime(), submission.runAt?.getTime() ?? 0) + submission.placementDeadlineMs)
          : null,
      runAt: submission.runAt ?? now,
      createdAt: now,
      updatedAt: now,
    }, (row) => this.eventRow('created', row, null));
    if (submission.dependsOn.length > 0) {
      await tx.query(`INSERT INTO job_dependencies (child_id, parent_id) SELECT $1, unnest($2::uuid[])`, [job.id, submission.dependsOn]);
    }
    annotateActiveSpan({ [SpanAttr.jobId]: job.id, [SpanAttr.backend]: job.backend, [SpanAttr.queue]: job.queue });
    return job;
  }

  /**
   * Moves BLOCKED jobs whose parents have settled: all completed → released (PENDING); a parent
   * FAILED or CANCELLED → cancelled, or with `onParentFailure: "run"` released once every parent
   * has ended. Cancelling cascades: the next pass sees the cancelled job as a failed parent.
   * Returns how many jobs it moved.
   */
  async resolveBlocked(limit: number): Promise<number> {
    const { rows: settled } = await this.pool.query<{ id: string; on_parent_failure: string; all_completed: boolean; any_failed: boolean; all_ended: boolean; failed_parent: string | null }>(`
      SELECT c.id, c.on_parent_failure,
             bool_and(p.status = 'COMPLETED') AS all_completed,
             bool_or(p.status IN ('FAILED', 'CANCELLED')) AS any_failed,
             bool_and(p.status IN ('COMPLETED', 'FAILED', 'CANCELLED')) AS all_ended,
             min(CASE WHEN p.status IN ('FAILED', 'CANCELLED') THEN p.id::text END) AS failed_parent
      FROM jobs c
      JOIN job_dependencies d ON d.child_id = c.id
      JOIN jobs p ON p.id = d.parent_id
      WHERE c.status = 'BLOCKED'
      GROUP BY c.id, c.on_parent_failure
      HAVING bool_and(p.status = 'COMPLETED') OR bool_or(p.status IN ('FAILED', 'CANCELLED'))
      LIMIT $1`, [limit]);
    let moved = 0;
    for (const r of settled) {
      const release = r.all_completed || (r.on_parent_failure === 'run' && r.all_ended);
      const cancel = !release && r.any_failed && r.on_parent_failure !== 'run';
      if (!release && !cancel) continue;
      const done = await inTransaction(this.pool, async (tx) => {
        const cur = await this.lock(tx, r.id, true);
        if (!cur || cur.status !== 'BLOCKED') return false;
        if (release) {
          const job = await updateJob(tx, cur.id, { status: transition(cur.status, 'released'), updatedAt: cur.now });
          await this.emit(tx, 'released', job, cur.status);
        } else {
          await this.finishCancelled(tx, cur, `parent ${r.failed_parent} did not complete`, {}, 'parent_failed');
        }
        return true;
      });
      if (done) moved++;
    }
    return moved;
  }

  private async findByIdempotencyKey(tenant: string, queue: string, key: string): Promise<Job | null> {
    const holder = await this.db.job.findUnique({ where: { tenant_queue_idempotencyKey: { tenant, queue, idempotencyKey: key } } });
    if (!holder) return null;
    if (Date.now() - holder.createdAt.getTime() <= this.windowMs) return holder;
    await this.db.job.updateMany({ where: { id: holder.id, idempotencyKey: key }, data: { idempotencyKey: null, requestHash: null } });
    return null;
  }

  private get windowMs(): number {
    return this.options.idempotencyWindowMs ?? 86_400_000;
  }

  /** Frees the idempotency keys of jobs older than `windowMs`; returns how many. */
  async expireIdempotencyKeys(windowMs: number, limit: number): Promise<number> {
    const { rowCount } = await this.pool.query(
      `UPDATE jobs SET idempotency_key = NULL, request_hash = NULL
       WHERE id IN (
         SELECT id FROM jobs
         WHERE idempotency_key IS NOT NULL
           AND created_at < now() - ($1::bigint * interval '1 millisecond')
         LIMIT $2
         FOR UPDATE SKIP LOCKED)`,
      [windowMs, limit],
    );
    return rowCount ?? 0;
  }

  private replayOf(existing: Job, bodyHash: string): Job {
    if (existing.requestHash !== bodyHash) {
      throw new ConflictError(
        'idempotency_key_reused',
        `idempotency key ${JSON.stringify(existing.idempotencyKey)} was already used for job ${existing.id} with a different request`,
      );
    }
    return existing;
  }

  // ---------------------------------------------------------------- dispatch

  /**
   * Promotes SCHEDULED jobs whose run-at has passed (delays and retry backoffs) to PENDING.
   * Returns how many it promoted.
   */
  async promoteDue(limit: number): Promise<number> {
    return inTransaction(this.pool, async (tx) => {
      const { rows } = await tx.query(
        `WITH due AS (
           SELECT id FROM jobs
           WHERE status = 'SCHEDULED' AND run_at <= now()
           ORDER BY run_at
           LIMIT $1
           FOR NO KEY UPDATE SKIP LOCKED
         )
         UPDATE jobs j SET status = 'PENDING', updated_at = now()
         FROM due WHERE j.id = due.id
         RETURNING j.*`,
        [limit],
      );
      if (rows.length === 0) return 0;
      const jobs = rows.map(jobFromRow);
      await insertOutbox(tx, jobs.map((j) => this.eventRow('due', j, 'SCHEDULED')));
      return jobs.length;
    });
  }

  // ---------------------------------------------------------------- reports

  /** An executor began attempt `attempt`: CLAIMED → RUNNING, the run lease and deadline start. */
  async applyStarted(report: StartedReport): Promise<ApplyResult> {
    return (await this.applyReports([report]))[0];
  }

  /** Attempt `attempt` succeeded: → COMPLETED with its output. Applied at most once per job. */
  async applyCompleted(report: CompletedReport): Promise<ApplyResult> {
    return (await this.applyReports([report]))[0];
  }

  /**
   * Attempt `attempt` failed: → SCHEDULED with backoff while attempts remain and the error is
   * retryable, else → FAILED (the dead-letter state). A `cancelled` report ends the job CANCELLED.
   */
  async applyFailed(report: FailedReport): Promise<ApplyResult> {
    return (await this.applyReports([report]))[0];
  }

  /**
   * Applies executors' reports in one transaction, as River's completer does: locks every job of
   * the batch (in id order, so concurrent batches cannot deadlock), decides each transition in
   * memory under the same fencing as a single report, then writes them set-based — a handful of
   * statements for the whole batch instead of six per report. At most one report per job: the
   * caller keeps each job's reports in order across batches. Results come in the reports' order.
   */
  async applyReports(reports: ReportMessage[]): Promise<ApplyResult[]> {
    const ids = reports.map((r) => r.jobId);
    if (new Set(ids).size !== ids.length) throw new Error('applyReports: at most one report per job in a batch');
    return inTransaction(this.pool, async (tx) => {
      const locked = await this.lockMany(tx, ids);
      const results: ApplyResult[] = [];
      const decided: { index: number; change: Change }[] = [];
      reports.forEach((report, index) => {
        const cur = locked.get(report.jobId);
        if (!cur) {
          results[index] = { applied: false, reason: 'unknown_job' };
          return;
        }
        const change = this.decideReport(cur, report);
        if (change === null) results[index] = { applied: false, reason: 'stale', job: cur };
        else decided.push({ index, change });
      });
      const jobs = await this.write(tx, decided.map((d) => d.change));
      decided.forEach(({ index }, i) => (results[index] = { applied: true, job: jobs[i] }));
      return results;
    });
  }

  /** What a report does to its job, or null when it is stale (fenced by status, attempt and worker). */
  private decideReport(cur: LockedJob, report: ReportMessage): Change | null {
    if (report.type === 'started') {
      if (cur.attempt !== report.attempt || !canTransition(cur.status, 'started')) return null;
      const startedAt = new Date(report.at);
      return {
        cur,
        name: 'started',
        job: {
          status: transition(cur.status, 'started'),
          workerId: report.workerId,
          startedAt,
          leaseExpiresAt: addMs(cur.now, this.options.runLeaseMs),
          deadlineAt: cur.timeoutMs === null ? null : addMs(cur.now, cur.timeoutMs),
          updatedAt: cur.now,
        },
        attempt: { workerId: report.workerId, startedAt },
      };
    }
    if (report.type === 'completed') {
      if (!this.ownsAttempt(cur, report.attempt, report.workerId) || !canTransition(cur.status, 'completed')) return null;
      const finishedAt = new Date(report.at);
      // Reports of one attempt may be applied out of order across schedulers: a completion that
      // arrives before its start still tells when the attempt started.
      const startedAt = cur.startedAt ?? new Date(finishedAt.getTime() - report.durationMs);
      const result = report.output ?? null;
      const tails = { exitCode: report.exitCode ?? null, stdoutTail: report.stdoutTail ?? null, stderrTail: report.stderrTail ?? null };
      return {
        cur,
        name: 'completed',
        withResult: true,
        job: {
          status: transition(cur.status, 'completed'),
          workerId: report.workerId,
          result,
          startedAt,
          ...tails,
          error: null,
          errorCode: null,
          leaseExpiresAt: null,
          deadlineAt: null,
          finishedAt,
          updatedAt: cur.now,
        },
        attempt: { workerId: report.workerId, outcome: 'COMPLETED', startedAt, result, ...tails, durationMs: report.durationMs, finishedAt },
      };
    }
    if (!this.ownsAttempt(cur, report.attempt, report.workerId) || !canTransition(cur.status, 'failed')) return null;
    const details: AttemptDetails = {
      workerId: report.workerId,
      exitCode: report.exitCode ?? null,
      durationMs: report.durationMs,
      stdoutTail: report.stdoutTail ?? null,
      stderrTail: report.stderrTail ?? null,
    };
    const failure: AttemptFailure = {
      code: report.errorCode,
      message: report.message,
      retryable: report.retryable && report.reason !== 'invalid_payload',
    };
    if (report.reason === 'cancelled') return this.cancelledChange(cur, failure.message, details);
    return this.failureChange(cur, failure, report.reason === 'timed_out' ? 'TIMED_OUT' : 'FAILED', details);
  }

  // ---------------------------------------------------------------- recovery (reconciler)

  /**
   * Attempts whose run lease ran out (their worker stopped heartbeating) or whose deadline passed
   * by more than `graceMs` (the executor did not time them out itself) fail with `lease_expired`
   * or `timed_out`, and are retried under the job's policy. Returns the jobs it moved.
   */
  async expireOverdueAttempts(limit: number, graceMs: number): Promise<Job[]> {
    const { rows: overdue } = await this.pool.query<{ id: string; timed_out: boolean }>(
      `SELECT id, (deadline_at IS NOT NULL AND deadline_at + ($1::int * interval '1 millisecond') < now()) AS timed_out
       FROM jobs
       WHERE status = 'RUNNING'
         AND (lease_expires_at < now() OR deadline_at + ($1::int * interval '1 millisecond') < now())
       ORDER BY lease_expires_at
       LIMIT $2`,
      [graceMs, limit],
    );
    const moved: Job[] = [];
    for (const row of overdue) {
      const job = await this.expireAttempt(
        row.id,
        row.timed_out
          ? { code: 'timed_out', message: 'the attempt outlived its timeout and its executor did not report', retryable: true }
          : { code: 'lease_expired', message: 'the attempt lease expired: its worker stopped heartbeating', retryable: true },
        row.timed_out ? 'TIMED_OUT' : 'LEASE_EXPIRED',
        (cur) => cur.status === 'RUNNING',
      );
      if (job) moved.push(job);
    }
    return moved;
  }

  /** A worker was declared lost: every attempt it held fails with `worker_lost` at once. */
  async requeueWorkerAttempts(workerId: string): Promise<Job[]> {
    // CLAIMED too: attempts placed on the worker that it had not started yet.
    const { rows: held } = await this.pool.query<{ id: string }>(`SELECT id FROM jobs WHERE worker_id = $1 AND status IN ('CLAIMED', 'RUNNING')`, [workerId]);
    const moved: Job[] = [];
    for (const { id } of held) {
      const job = await this.expireAttempt(
        id,
        { code: 'worker_lost', message: `worker ${workerId} was declared lost`, retryable: true },
        'WORKER_LOST',
        (cur) => (cur.status === 'RUNNING' || cur.status === 'CLAIMED') && cur.workerId === workerId,
      );
      if (job) moved.push(job);
    }
    return moved;
  }

  private async expireAttempt(
    id: string,
    failure: AttemptFailure,
    outcome: AttemptOutcome,
    stillApplies: (cur: LockedJob) => boolean,
  ): Promise<Job | null> {
    return inTransaction(this.pool, async (tx) => {
      // SKIP LOCKED: another scheduler is already deciding this job's fate.
      const cur = await this.lock(tx, id, true);
      if (!cur || !stillApplies(cur)) return null;
      return this.failAttempt(tx, cur, failure, outcome, { workerId: cur.workerId });
    });
  }

  /**
   * CLAIMED attempts that no executor started within the claim lease: their dispatch may have
   * been lost by NATS. Extends the claim and returns them so the caller publishes the same
   * dispatch again (under a fresh message id: JetStream may remember the first one after losing
   * the message; a duplicate run of the attempt is fenced by its attempt number).
   */
  async reclaimStaleClaims(limit: number): Promise<Job[]> {
    const { rows } = await this.pool.query(
      `WITH stale AS (
         SELECT id FROM jobs
         WHERE status = 'CLAIMED' AND lease_expires_at < now()
           -- An attempt placed on a worker that is gone is not sent again (failPlacedOnGoneWorkers).
           AND (worker_id IS NULL OR EXISTS (SELECT 1 FROM workers w WHERE w.id = jobs.worker_id AND w.status = 'ONLINE'))
         ORDER BY lease_expires_at
         LIMIT $1
         FOR NO KEY UPDATE SKIP LOCKED
       )
       UPDATE jobs j
       SET lease_expires_at = now() + ($2::int * interval '1 millisecond'), updated_at = now()
       FROM stale WHERE j.id = stale.id
       RETURNING j.*`,
      [limit, this.options.claimLeaseMs],
    );
    return rows.map(jobFromRow);
  }

  /**
   * Attempts placed on a worker that went away (drained, offline or lost) before starting them:
   * the attempt fails as `worker_lost` (retryable), so the job is placed again elsewhere.
   */
  async failPlacedOnGoneWorkers(limit: number): Promise<Job[]> {
    const { rows } = await this.pool.query<{ id: string; worker_id: string }>(
      `SELECT j.id, j.worker_id FROM jobs j LEFT JOIN workers w ON w.id = j.worker_id
       WHERE j.status = 'CLAIMED' AND j.worker_id IS NOT NULL AND j.lease_expires_at < now()
         AND (w.id IS NULL OR w.status <> 'ONLINE')
       LIMIT $1`,
      [limit],
    );
    const moved: Job[] = [];
    for (const r of rows) {
      const job = await this.expireAttempt(
        r.id,
        { code: 'worker_lost', message: `worker ${r.worker_id} left before starting the attempt placed on it`, retryable: true },
        'WORKER_LOST',
        (cur) => cur.status === 'CLAIMED' && cur.workerId === r.worker_id,
      );
      if (job) moved.push(job);
    }
    return moved;
  }

  /**
   * Gives PENDING jobs of a backend with no online worker that reason (the dispatcher explains
   * only the jobs it looks at, and it looks only at backends with free slots). The backends come
   * from a skip scan over (backend, status), so a large backlog of served backends costs nothing.
   */
  async explainUnservedBackends(limit: number): Promise<number> {
    const { rowCount } = await this.pool.query(
      `WITH RECURSIVE b(name) AS (
         (SELECT backend FROM jobs WHERE status = 'PENDING' ORDER BY backend LIMIT 1)
         UNION ALL
         SELECT (SELECT backend FROM jobs WHERE status = 'PENDING' AND backend > b.name ORDER BY backend LIMIT 1) FROM b WHERE b.name IS NOT NULL
       ),
       unserved AS (
         SELECT name, format('no online worker for backend "%s"', name) AS reason FROM b
         WHERE name IS NOT NULL AND NOT EXISTS (SELECT 1 FROM workers w WHERE w.backend = b.name AND w.status = 'ONLINE')
       )
       UPDATE jobs SET wait_reason = u.reason
       FROM unserved u
       WHERE jobs.id IN (
         SELECT j.id FROM jobs j JOIN unserved u2 ON u2.name = j.backend
         WHERE j.status = 'PENDING' AND j.wait_reason IS DISTINCT FROM u2.reason LIMIT $1)
         AND jobs.backend = u.name`,
      [limit],
    );
    return rowCount ?? 0;
  }

  /** PENDING jobs that no worker could take before their placement deadline: FAILED (`unplaced`). */
  async failUnplaced(limit: number): Promise<Job[]> {
    const { rows } = await this.pool.query<{ id: string }>(
      `SELECT id FROM jobs WHERE status = 'PENDING' AND placement_deadline_at < now() ORDER BY placement_deadline_at LIMIT $1`,
      [limit],
    );
    const moved: Job[] = [];
    for (const { id } of rows) {
      const job = await inTransaction(this.pool, async (tx) => {
        const cur = await this.lock(tx, id, true);
        if (!cur || !canTransition(cur.status, 'unplaced')) return null;
        const { rows: [w] } = await tx.query<{ wait_reason: string | null }>(`SELECT wait_reason FROM jobs WHERE id = $1`, [id]);
        const updated = await updateJob(tx, id, {
          status: transition(cur.status, 'unplaced'),
          errorCode: 'placement_timeout',
          error: `no worker took the job before its placement deadline${w?.wait_reason ? `: ${w.wait_reason}` : ''}`,
          finishedAt: cur.now,
          updatedAt: cur.now,
        });
        await this.emit(tx, 'unplaced', updated, cur.status);
        return updated;
      });
      if (job) moved.push(job);
    }
    return moved;
  }

  /** Each dependent's parents with their results (for dispatching it again). */
  parentsOf(childIds: string[]): Promise<Map<string, ParentResult[]>> {
    return loadParents(this.pool, childIds);
  }

  // ---------------------------------------------------------------- API actions

  /**
   * Cancels a job. A waiting job ends CANCELLED at once; so does a claimed or running one, whose
   * worker the caller then tells to stop (`notify`): any report it sends later is stale.
   * A finished job cannot be cancelled (409).
   */
  async cancel(id: string, reason = 'cancelled on request'): Promise<{ job: Job; notify: { workerId: string; attempt: number } | null }> {
    return inTransaction(this.pool, (tx) => this.cancelInTx(tx, id, reason));
  }

  async cancelInTx(tx: Sql, id: string, reason: string): Promise<{ job: Job; notify: { workerId: string; attempt: number } | null }> {
    const cur = await this.lock(tx, id);
    if (!cur) throw new NotFoundError('job', id);
    if (!canTransition(cur.status, 'cancelled')) {
      throw new ConflictError('invalid_transition', `job ${id} is ${cur.status} and cannot be cancelled`);
    }
    const notify = cur.status === 'RUNNING' && cur.workerId ? { workerId: cur.workerId, attempt: cur.attempt } : null;
    const job = await this.finishCancelled(tx, cur, reason, { workerId: cur.workerId });
    return { job, notify };
  }

  /**
   * Redrives a FAILED or CANCELLED job: back to PENDING with a fresh budget of `attempts` more
   * attempts (default: its original maxAttempts). Attempt numbers keep counting up, so reports of
   * earlier attempts stay stale.
   */
  async redrive(id: string, attempts?: number): Promise<Job> {
    return inTransaction(this.pool, async (tx) => {
      const cur = await this.lock(tx, id);
      if (!cur) throw new NotFoundError('job', id);
      if (!canTransition(cur.status, 'redriven')) {
        throw new ConflictError('invalid_transition', `job ${id} is ${cur.status}; only FAILED or CANCELLED jobs can be retried`);
      }
      const job = await updateJob(tx, id, {
          status: transition(cur.status, 'redriven'),
          maxAttempts: cur.attempt + (attempts ?? cur.maxAttempts),
          runAt: cur.now,
          workerId: null,
          leaseExpiresAt: null,
          deadlineAt: null,
          finishedAt: null,
          startedAt: null,
          error: null,
          errorCode: null,
          updatedAt: cur.now,
        });
      await this.emit(tx, 'redriven', job, cur.status);
      return job;
    });
  }

  /** Redrives up to `limit` FAILED/CANCELLED jobs matching the filter; returns their ids. */
  async redriveMany(filter: { status: ('FAILED' | 'CANCELLED')[]; backend?: string; queue?: string; tenant?: string }, limit: number): Promise<string[]> {
    const rows = await this.db.job.findMany({
      where: { status: { in: filter.status }, ...(filter.tenant !== undefined ? { tenant: filter.tenant } : {}), ...(filter.backend ? { backend: filter.backend } : {}), ...(filter.queue ? { queue: filter.queue } : {}) },
      select: { id: true },
      orderBy: { id: 'asc' },
      take: limit,
    });
    const done: string[] = [];
    for (const { id } of rows) {
      try {
        await this.redrive(id);
        done.push(id);
      } catch (err) {
        // Changed under us (redriven or cancelled concurrently): not ours to redrive any more.
        if (!(err instanceof ConflictError)) throw err;
      }
    }
    return done;
  }

  // ---------------------------------------------------------------- shared steps

  private async failAttempt(tx: Sql, cur: LockedJob, failure: AttemptFailure, outcome: AttemptOutcome, details: AttemptDetails): Promise<Job> {
    return (await this.write(tx, [this.failureChange(cur, failure, outcome, details)]))[0];
  }

  private async finishCancelled(tx: Sql, cur: LockedJob, message: string, details: AttemptDetails, code = 'cancelled'): Promise<Job> {
    return (await this.write(tx, [this.cancelledChange(cur, message, details, code)]))[0];
  }

  /** A failed attempt: retried after its backoff while the policy allows, else FAILED. */
  private failureChange(cur: LockedJob, failure: AttemptFailure, outcome: AttemptOutcome, details: AttemptDetails): Change {
    const decision = decideAfterFailure(failure, cur.attempt, cur.maxAttempts, cur.backoff);
    const common = {
      error: failure.message,
      errorCode: failure.code,
      exitCode: details.exitCode ?? null,
      stdoutTail: details.stdoutTail ?? null,
      stderrTail: details.stderrTail ?? null,
      leaseExpiresAt: null,
      deadlineAt: null,
      updatedAt: cur.now,
    };
    return {
      cur,
      name: decision.kind === 'retry' ? 'retrying' : 'failed',
      job:
        decision.kind === 'retry'
          ? { ...common, status: transition(cur.status, 'retrying'), workerId: null, startedAt: null, runAt: addMs(cur.now, decision.delayMs) }
          : { ...common, status: transition(cur.status, 'failed'), finishedAt: cur.now },
      attempt: this.attemptEnd(cur, outcome, failure, details),
    };
  }

  private cancelledChange(cur: LockedJob, message: string, details: AttemptDetails, code = 'cancelled'): Change {
    return {
      cur,
      name: 'cancelled',
      job: {
        status: transition(cur.status, 'cancelled'),
        error: message,
        errorCode: code,
        leaseExpiresAt: null,
        deadlineAt: null,
        finishedAt: cur.now,
        updatedAt: cur.now,
      },
      // Only an attempt in flight has a row to close.
      attempt: cur.status === 'CLAIMED' || cur.status === 'RUNNING' ? this.attemptEnd(cur, 'CANCELLED', { code: 'cancelled', message, retryable: false }, details) : undefined,
    };
  }

  private attemptEnd(cur: LockedJob, outcome: AttemptOutcome, failure: AttemptFailure, details: AttemptDetails): Partial<JobAttempt> {
    return {
      outcome,
      error: failure.message,
      errorCode: failure.code,
      workerId: details.workerId ?? cur.workerId,
      exitCode: details.exitCode ?? null,
      durationMs: details.durationMs ?? null,
      stdoutTail: details.stdoutTail ?? null,
      stderrTail: details.stderrTail ?? null,
      finishedAt: cur.now,
    };
  }

  /**
   * Writes decided changes (one per job): the job rows, their attempt rows and one outbox event
   * each, set-based. Returns the updated jobs in the changes' order.
   */
  private async write(tx: Sql, changes: Change[]): Promise<Job[]> {
    if (changes.length === 0) return [];
    const jobs = await updateJobs(tx, changes.map((c) => ({ id: c.cur.id, patch: c.job })));
    const attempts = changes.filter((c) => c.attempt !== undefined).map((c) => ({ jobId: c.cur.id, attempt: c.cur.attempt, patch: c.attempt as Partial<JobAttempt> }));
    await updateAttempts(tx, attempts);
    const written = changes.map((c) => {
      const job = jobs.get(c.cur.id);
      if (!job) throw new Error(`job ${c.cur.id} vanished while locked`);
      return job;
    });
    await insertOutbox(tx, changes.map((c, i) => this.eventRow(c.name, written[i], c.cur.status, c.withResult)));
    return written;
  }

  /**
   * The fencing rule for reports: only the job's current attempt, and only from the worker that
   * started it (a report that arrives before `started` was applied is accepted from anyone).
   */
  private ownsAttempt(cur: LockedJob, attempt: number, workerId: string): boolean {
    return cur.attempt === attempt && (cur.workerId === null || cur.workerId === workerId);
  }

  /** Locks the job row for the rest of the transaction (see LockedJob). */
  private async lock(tx: Sql, id: string, skipLocked = false): Promise<LockedJob | null> {
    const { rows } = await tx.query<RawLocked>(
      `SELECT ${LOCKED_COLUMNS} FROM jobs WHERE id = $1::uuid FOR NO KEY UPDATE${skipLocked ? ' SKIP LOCKED' : ''}`,
      [id],
    );
    return rows[0] ? lockedFromRow(rows[0]) : null;
  }

  /** Locks the jobs (in id order) for the rest of the transaction; unknown ids are left out. */
  private async lockMany(tx: Sql, ids: string[]): Promise<Map<string, LockedJob>> {
    const { rows } = await tx.query<RawLocked>({
      ...prepared(`SELECT ${LOCKED_COLUMNS} FROM jobs WHERE id = ANY($1::uuid[]) ORDER BY id FOR NO KEY UPDATE`),
      values: [ids],
    });
    return new Map(rows.map((r) => [r.id, lockedFromRow(r)]));
  }

  private eventRow(name: JobTransitionName, job: Job, previous: JobStatus | null, withResult = false) {
    return jobEventRow(this.options.subjects, this.options.source, name, job, previous, withResult);
  }

  private async emit(tx: Sql, name: JobTransitionName, job: Job, previous: JobStatus | null, withResult = false): Promise<void> {
    await insertOutbox(tx, [this.eventRow(name, job, previous, withResult)]);
  }
}

interface RawLocked {
  id: string;
  status: string;
  attempt: number;
  worker_id: string | null;
  max_attempts: number;
  backoff: unknown;
  timeout_ms: number | null;
  started_at: Date | string | null;
  now: Date | string;
}

/** What `LockedJob` reads, with the database's clock. */
const LOCKED_COLUMNS = 'id, status::text AS status, attempt, worker_id, max_attempts, backoff, timeout_ms, started_at, now() AS now';

function lockedFromRow(r: RawLocked): LockedJob {
  return {
    id: r.id,
    status: r.status as JobStatus,
    attempt: r.attempt,
    workerId: r.worker_id,
    maxAttempts: r.max_attempts,
    backoff: resolveBackoff(r.backoff as Partial<BackoffPolicy>),
    timeoutMs: r.timeout_ms,
    startedAt: r.started_at ? new Date(r.started_at) : null,
    now: new Date(r.now),
  };
}

/** One decided transition: the job row's patch, its current attempt's patch, and the event. */
interface Change {
  cur: LockedJob;
  name: JobTransitionName;
  job: Partial<Job>;
  attempt?: Partial<JobAttempt>;
  /** The event carries the job's result (completions). */
  withResult?: boolean;
}
