import type { Pool, PoolClient } from 'pg';
import type { Job, JobAttempt } from './prisma';

/**
 * Plain SQL over the pool that Prisma also uses. The hot statements (submit, claim, reports,
 * recovery, outbox, heartbeats) run here: Prisma's query engine costs several times the CPU of
 * the statements themselves (measured: 64% of a busy scheduler's CPU), while the schema, the
 * migrations, the generated types and the ordinary reads stay with Prisma.
 */
export type Sql = Pick<PoolClient, 'query'>;

/**
 * What attempts in flight hold on workers, as rows (worker_id, resource, amount): one `slots` row
 * per worker (every attempt takes a slot) and one row per resource that placed attempts reserved.
 * `workers` is the SQL condition on `worker_id`, e.g. `IS NOT NULL` or `= ANY($1::text[])`.
 */
export function heldOnWorkersSql(workers: string): string {
  return `SELECT worker_id, 'slots' AS resource, count(*)::float8 AS amount FROM jobs
          WHERE status IN ('CLAIMED', 'RUNNING') AND worker_id ${workers} GROUP BY worker_id
          UNION ALL
          SELECT j.worker_id, r.key, sum(r.value::float8) FROM jobs j
          CROSS JOIN LATERAL jsonb_each_text(j.requirements -> 'resources') AS r(key, value)
          WHERE j.status IN ('CLAIMED', 'RUNNING') AND j.worker_id ${workers} AND j.requirements IS NOT NULL
          GROUP BY j.worker_id, r.key`;
}

/** Runs `fn` in one transaction on one connection; rolls back on any error. */
export async function inTransaction<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let failed: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    failed = err as Error;
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    try {
      // With the error, the pool discards a connection that may be broken.
      client.release(failed && isConnectionError(failed) ? failed : undefined);
    } catch {
      // Already released by the pool's own error handling (createPool).
    }
  }
}

function isConnectionError(err: Error): boolean {
  const code = (err as { code?: string }).code;
  return code === undefined || code.startsWith('08') || code === '57P01' || /terminat|Connection|timeout/i.test(err.message);
}

/** Column names of `jobs` by model field: the one place the mapping is written. */
const JOB_COLUMNS = {
  id: 'id', queue: 'queue', backend: 'backend', payload: 'payload', status: 'status', priority: 'priority', labels: 'labels',
  attempt: 'attempt', maxAttempts: 'max_attempts', timeoutMs: 'timeout_ms', backoff: 'backoff', idempotencyKey: 'idempotency_key',
  requestHash: 'request_hash', runAt: 'run_at', workerId: 'worker_id', leaseExpiresAt: 'lease_expires_at', deadlineAt: 'deadline_at',
  result: 'result', error: 'error', errorCode: 'error_code', exitCode: 'exit_code', stdoutTail: 'stdout_tail', stderrTail: 'stderr_tail',
  progress: 'progress', progressNote: 'progress_note', progressAttempt: 'progress_attempt', progressSeq: 'progress_seq', progressAt: 'progress_at',
  traceContext: 'trace_context', createdAt: 'created_at', updatedAt: 'updated_at',
  dispatchedAt: 'dispatched_at', startedAt: 'started_at', finishedAt: 'finished_at', concurrencyKey: 'concurrency_key',
  fairnessKey: 'fairness_key', onParentFailure: 'on_parent_failure', scheduleId: 'schedule_id',
  requirements: 'requirements', placementDeadlineAt: 'placement_deadline_at', waitReason: 'wait_reason',
  tenant: 'tenant', submittedBy: 'submitted_by',
} as const satisfies Record<keyof Job, string>;

const ATTEMPT_COLUMNS = {
  id: 'id', jobId: 'job_id', attempt: 'attempt', queue: 'queue', concurrencyKey: 'concurrency_key', workerId: 'worker_id',
  outcome: 'outcome', error: 'error', errorCode: 'error_code', exitCode: 'exit_code', durationMs: 'duration_ms',
  stdoutTail: 'stdout_tail', stderrTail: 'stderr_tail', result: 'result', claimedAt: 'claimed_at', startedAt: 'started_at',
  finishedAt: 'finished_at',
} as const satisfies Record<keyof JobAttempt, string>;

/** Casts for the columns whose type a bare parameter does not carry. */
const JOB_CASTS: Partial<Record<keyof Job, string>> = {
  payload: 'jsonb', labels: 'jsonb', backoff: 'jsonb', result: 'jsonb', traceContext: 'jsonb', requirements: 'jsonb', status: '"JobStatus"', scheduleId: 'uuid', submittedBy: 'uuid',
};
const ATTEMPT_CASTS: Partial<Record<keyof JobAttempt, string>> = { result: 'jsonb', outcome: '"AttemptOutcome"' };

export function jobFromRow(row: Record<string, unknown>): Job {
  const job: Record<string, unknown> = {};
  for (const [field, column] of Object.entries(JOB_COLUMNS)) job[field] = row[column];
  return job as unknown as Job;
}

/** Serialises JSON columns: pg would send a JS array as a Postgres array, not as JSON. */
function param(value: unknown, cast: string | undefined): unknown {
  if (cast === 'jsonb') return value === null || value === undefined ? null : JSON.stringify(value);
  return value;
}

/** `UPDATE jobs SET <patch> WHERE id = $1 RETURNING *`, the patch given by model field. */
export async function updateJob(sql: Sql, id: string, patch: Partial<Job>): Promise<Job> {
  const fields = Object.keys(patch) as (keyof Job)[];
  const sets = fields.map((f, i) => `${JOB_COLUMNS[f]} = $${i + 2}${JOB_CASTS[f] ? `::${JOB_CASTS[f]}` : ''}`);
  const { rows } = await sql.query(`UPDATE jobs SET ${sets.join(', ')} WHERE id = $1 RETURNING *`, [id, ...fields.map((f) => param(patch[f], JOB_CASTS[f]))]);
  return jobFromRow(rows[0]);
}

/** `INSERT INTO jobs (<fields>) VALUES (...) RETURNING *`. */
export async function insertJobRow(sql: Sql, values: Partial<Job>): Promise<Job> {
  const fields = (Object.keys(values) as (keyof Job)[]).filter((f) => values[f] !== undefined);
  const placeholders = fields.map((f, i) => `$${i + 1}${JOB_CASTS[f] ? `::${JOB_CASTS[f]}` : ''}`);
  const { rows } = await sql.query(
    `INSERT INTO jobs (${fields.map((f) => JOB_COLUMNS[f]).join(', ')}) VALUES (${placeholders.join(', ')}) RETURNING *`,
    fields.map((f) => param(values[f], JOB_CASTS[f])),
  );
  return jobFromRow(rows[0]);
}

/** Updates attempt `attempt` of `jobId`. */
export async function updateAttempt(sql: Sql, jobId: string, attempt: number, patch: Partial<JobAttempt>): Promise<void> {
  const fields = (Object.keys(patch) as (keyof JobAttempt)[]).filter((f) => patch[f] !== undefined);
  const sets = fields.map((f, i) => `${ATTEMPT_COLUMNS[f]} = $${i + 3}${ATTEMPT_CASTS[f] ? `::${ATTEMPT_CASTS[f]}` : ''}`);
  await sql.query(`UPDATE job_attempts SET ${sets.join(', ')} WHERE job_id = $1 AND attempt = $2`, [jobId, attempt, ...fields.map((f) => param(patch[f], ATTEMPT_CASTS[f]))]);
}

/** Inserts outbox rows in one statement. */
export async function insertOutbox(sql: Sql, rows: { subject: string; event: unknown }[]): Promise<void> {
  if (rows.length === 0) return;
  await sql.query(`INSERT INTO outbox_events (subject, event) SELECT * FROM unnest($1::text[], $2::jsonb[])`, [
    rows.map((r) => r.subject),
    rows.map((r) => JSON.stringify(r.event)),
  ]);
}
