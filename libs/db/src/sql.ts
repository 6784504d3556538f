import { createHash } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import type { Job, JobAttempt } from './prisma';

/**
 * Plain SQL over the pool that Prisma also uses. The hot statements (submit, claim, reports,
 * recovery, outbox, heartbeats) run here: Prisma's query engine costs several times the CPU of
 * the statements themselves (measured: 64% of a busy scheduler's CPU), while the schema, the
 * migrations, the generated types and the ordinary reads stay with Prisma.
 */
export type Sql = Pick<PoolClient, 'query'>;

const statementNames = new Map<string, string>();

/**
 * A hot statement as a named prepared statement: each connection parses it once, and Postgres
 * keeps one generic plan for it where that plans no worse than planning every call (the candidates
 * query keeps its per-call plans: forced generic, it ran 5 times slower). Measured under the
 * noisy-neighbour benchmark: a dispatch round's three statements took 5.1 ms of Postgres's time
 * unprepared, 3.1 ms prepared. The name is the text's hash, so one name never means two texts.
 * Only for statements of a bounded set of texts (each stays prepared on every connection), and
 * with their columns listed: after a migration adds a column, a prepared `SELECT *` or
 * `RETURNING *` fails on every call ("cached plan must not change result type").
 */
export function prepared(text: string): { name: string; text: string } {
  let name = statementNames.get(text);
  if (name === undefined) {
    name = `blx_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
    statementNames.set(text, name);
  }
  return { name, text };
}

/** The attempts in flight: what they hold (slots, resources, concurrency) and where. */
export const IN_FLIGHT_JOBS = `SELECT backend, queue, concurrency_key, fairness_key, worker_id, requirements FROM jobs WHERE status IN ('CLAIMED', 'RUNNING')`;

/**
 * What attempts in flight hold on workers, as rows (worker_id, resource, amount): one `slots` row
 * per worker (every attempt takes a slot) and one row per resource that placed attempts reserved.
 * `workers` is the SQL condition on `worker_id`, e.g. `IS NOT NULL` or `= ANY($1::text[])`;
 * `inFlight` a relation of the attempts in flight (a CTE of IN_FLIGHT_JOBS read once for several
 * aggregates, or by default that query itself).
 */
export function heldOnWorkersSql(workers: string, inFlight = `(${IN_FLIGHT_JOBS})`): string {
  return `SELECT worker_id, 'slots' AS resource, count(*)::float8 AS amount FROM ${inFlight} f
          WHERE worker_id ${workers} GROUP BY worker_id
          UNION ALL
          SELECT j.worker_id, r.key, sum(r.value::float8) FROM ${inFlight} j
          CROSS JOIN LATERAL jsonb_each_text(j.requirements -> 'resources') AS r(key, value)
          WHERE j.worker_id ${workers} AND j.requirements IS NOT NULL
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

/**
 * Postgres types of the columns by model field, for casts of parameters and of the arrays `unnest`
 * takes: the one place the fields of `jobs` and `job_attempts` are listed (`satisfies` keeps them
 * equal to Prisma's models).
 */
const JOB_TYPES = {
  id: 'uuid', queue: 'text', backend: 'text', payload: 'jsonb', status: '"JobStatus"', priority: 'int4', labels: 'jsonb',
  attempt: 'int4', maxAttempts: 'int4', timeoutMs: 'int4', backoff: 'jsonb', idempotencyKey: 'text',
  requestHash: 'text', runAt: 'timestamptz', workerId: 'text', leaseExpiresAt: 'timestamptz', deadlineAt: 'timestamptz',
  result: 'jsonb', error: 'text', errorCode: 'text', exitCode: 'int4', stdoutTail: 'text', stderrTail: 'text',
  progress: 'float8', progressNote: 'text', progressAttempt: 'int4', progressSeq: 'int4', progressAt: 'timestamptz',
  traceContext: 'jsonb', createdAt: 'timestamptz', updatedAt: 'timestamptz',
  dispatchedAt: 'timestamptz', startedAt: 'timestamptz', finishedAt: 'timestamptz', concurrencyKey: 'text',
  fairnessKey: 'text', onParentFailure: 'text', scheduleId: 'uuid',
  requirements: 'jsonb', placementDeadlineAt: 'timestamptz', waitReason: 'text',
  tenant: 'text', submittedBy: 'uuid',
} as const satisfies Record<keyof Job, string>;

const ATTEMPT_TYPES = {
  id: 'int8', jobId: 'uuid', attempt: 'int4', queue: 'text', concurrencyKey: 'text', workerId: 'text',
  outcome: '"AttemptOutcome"', error: 'text', errorCode: 'text', exitCode: 'int4', durationMs: 'int4',
  stdoutTail: 'text', stderrTail: 'text', result: 'jsonb', claimedAt: 'timestamptz', startedAt: 'timestamptz',
  finishedAt: 'timestamptz',
} as const satisfies Record<keyof JobAttempt, string>;

/** Column names by model field: the schema maps each field to its snake_case name (`maxAttempts` → `max_attempts`). */
function columnsOf<F extends string>(types: Record<F, string>): Record<F, string> {
  return Object.fromEntries(Object.keys(types).map((f) => [f, f.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)])) as Record<F, string>;
}

export const JOB_COLUMNS = columnsOf(JOB_TYPES);
const ATTEMPT_COLUMNS = columnsOf(ATTEMPT_TYPES);

/**
 * Every column the code knows of a table, qualified by `alias`: the result of a prepared
 * statement listing them cannot change when a later migration adds a column.
 */
export function columnList(columns: Record<string, string>, alias: string): string {
  return Object.values(columns).map((c) => `${alias}.${c}`).join(', ');
}

export function jobFromRow(row: Record<string, unknown>): Job {
  const job: Record<string, unknown> = {};
  for (const [field, column] of Object.entries(JOB_COLUMNS)) job[field] = row[column];
  return job as unknown as Job;
}

/** Serialises JSON columns: pg would send a JS array as a Postgres array, not as JSON. */
function param(value: unknown, type: string): unknown {
  if (type === 'jsonb') return value === null || value === undefined ? null : JSON.stringify(value);
  return value;
}

/**
 * `INSERT INTO jobs (<fields>) VALUES (...) RETURNING *`. With `event`, the same statement writes
 * the job's outbox row, built from the row as it will be stored: `values` over the defaults of
 * the columns an insert leaves out (INSERT_DEFAULTS).
 */
export async function insertJobRow(sql: Sql, values: Partial<Job>, event?: (job: Job) => { subject: string; event: unknown }): Promise<Job> {
  const fields = (Object.keys(values) as (keyof Job)[]).filter((f) => values[f] !== undefined);
  const params = fields.map((f) => param(values[f], JOB_TYPES[f]));
  const insert = `INSERT INTO jobs (${fields.map((f) => JOB_COLUMNS[f]).join(', ')}) VALUES (${fields.map((f, i) => `$${i + 1}::${JOB_TYPES[f]}`).join(', ')}) RETURNING *`;
  if (!event) return jobFromRow((await sql.query(insert, params)).rows[0]);
  const row = event({ ...INSERT_DEFAULTS, ...values } as Job);
  const { rows } = await sql.query(
    `WITH j AS (${insert}), e AS (INSERT INTO outbox_events (subject, event) VALUES ($${params.length + 1}, $${params.length + 2}::jsonb)) SELECT * FROM j`,
    [...params, row.subject, JSON.stringify(row.event)],
  );
  return jobFromRow(rows[0]);
}

/** What a new job's row holds in the fields its insert leaves to the column defaults. */
const INSERT_DEFAULTS: Partial<Job> = { attempt: 0, workerId: null, startedAt: null, finishedAt: null, error: null, errorCode: null, exitCode: null, result: null };

/**
 * Set-based updates: rows whose patches set the same fields go out as one
 * `UPDATE … FROM unnest(<key arrays>, <value arrays>)` (a batch of reports usually needs one or
 * two such statements, whatever its size). Each key may appear once per call.
 */
async function updateMany<Row, K extends string>(
  sql: Sql,
  table: { name: string; columns: Record<K, string>; types: Record<K, string>; keys: readonly K[]; returning: string },
  rows: { key: unknown[]; patch: Partial<Record<K, unknown>> }[],
  returning: boolean,
): Promise<Row[]> {
  const shapes = new Map<string, { fields: K[]; rows: typeof rows }>();
  for (const row of rows) {
    const fields = (Object.keys(row.patch) as K[]).filter((f) => row.patch[f] !== undefined).sort();
    const shape = fields.join(',');
    const group = shapes.get(shape) ?? { fields, rows: [] };
    group.rows.push(row);
    shapes.set(shape, group);
  }
  const out: Row[] = [];
  for (const { fields, rows: group } of shapes.values()) {
    if (fields.length === 0) continue;
    const all = [...table.keys, ...fields];
    const arrays = all.map((f, i) => `$${i + 1}::${table.types[f]}[]`);
    const names = all.map((f) => `u_${table.columns[f]}`);
    const sets = fields.map((f) => `${table.columns[f]} = u.u_${table.columns[f]}`);
    const match = table.keys.map((k) => `t.${table.columns[k]} = u.u_${table.columns[k]}`);
    const values = [
      ...table.keys.map((_, i) => group.map((r) => r.key[i])),
      ...fields.map((f) => group.map((r) => param(r.patch[f], table.types[f]))),
    ];
    // One text per patch shape (a handful): prepared, returning the listed columns.
    const { rows: updated } = await sql.query({
      ...prepared(`UPDATE ${table.name} t SET ${sets.join(', ')}
       FROM unnest(${arrays.join(', ')}) AS u(${names.join(', ')})
       WHERE ${match.join(' AND ')}${returning ? ` RETURNING ${table.returning}` : ''}`),
      values,
    });
    out.push(...(updated as Row[]));
  }
  return out;
}

const JOBS_TABLE = { name: 'jobs', columns: JOB_COLUMNS, types: JOB_TYPES, keys: ['id'] as const, returning: columnList(JOB_COLUMNS, 't') };
const ATTEMPTS_TABLE = { name: 'job_attempts', columns: ATTEMPT_COLUMNS, types: ATTEMPT_TYPES, keys: ['jobId', 'attempt'] as const, returning: columnList(ATTEMPT_COLUMNS, 't') };

/** Updates each job by its own patch (ids distinct); returns the updated jobs by id. */
export async function updateJobs(sql: Sql, rows: { id: string; patch: Partial<Job> }[]): Promise<Map<string, Job>> {
  const updated = await updateMany<Record<string, unknown>, keyof Job>(sql, JOBS_TABLE, rows.map((r) => ({ key: [r.id], patch: r.patch })), true);
  return new Map(updated.map((row) => [row.id as string, jobFromRow(row)]));
}

/** `UPDATE jobs SET <patch> WHERE id = $1 RETURNING *`, the patch given by model field. */
export async function updateJob(sql: Sql, id: string, patch: Partial<Job>): Promise<Job> {
  const job = (await updateJobs(sql, [{ id, patch }])).get(id);
  if (!job) throw new Error(`job ${id} vanished while locked`);
  return job;
}

/** Updates each attempt `(jobId, attempt)` by its own patch (pairs distinct). */
export async function updateAttempts(sql: Sql, rows: { jobId: string; attempt: number; patch: Partial<JobAttempt> }[]): Promise<void> {
  await updateMany(sql, ATTEMPTS_TABLE, rows.map((r) => ({ key: [r.jobId, r.attempt], patch: r.patch })), false);
}

/** Inserts outbox rows in one statement. */
export async function insertOutbox(sql: Sql, rows: { subject: string; event: unknown }[]): Promise<void> {
  if (rows.length === 0) return;
  await sql.query({
    ...prepared(`INSERT INTO outbox_events (subject, event) SELECT * FROM unnest($1::text[], $2::jsonb[])`),
    values: [rows.map((r) => r.subject), rows.map((r) => JSON.stringify(r.event))],
  });
}
