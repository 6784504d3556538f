import { closeDatabase, createPool, createPrisma, Db, DispatchStore, JobStore, WorkerStore } from '@blixard/db';
import type { PoolClient } from 'pg';
import { subjects, type ReportMessage } from '@blixard/contracts';
import { validateSubmission } from '@blixard/domain';
import { createTestInfra, TestInfra } from '@blixard/testing';

/**
 * The scheduler applies executors' reports in batches (one transaction, set-based writes). A batch
 * must decide exactly what the same reports applied one by one would: every transition, the
 * fencing of stale and foreign reports, the attempt rows and one outbox event per transition.
 */
describe('reports applied in a batch', () => {
  let infra: TestInfra;
  let db: Db;
  let jobs: JobStore;
  let dispatch: DispatchStore;
  const at = () => new Date().toISOString();

  beforeAll(async () => {
    infra = await createTestInfra('report_batch');
    db = createPrisma(infra.databaseUrl, 4);
    const s = subjects(infra.prefix);
    jobs = new JobStore(db, { subjects: s, source: '/test', claimLeaseMs: 60_000, runLeaseMs: 60_000 });
    dispatch = new DispatchStore(db, { subjects: s, source: '/test', claimLeaseMs: 60_000, fairness: false, reservePercent: 0 });
    await new WorkerStore(db, { subjects: s, source: '/test', runLeaseMs: 60_000 }).heartbeat({
      workerId: 'w1', backend: 'batch', host: 'h', version: 't', labels: {}, capacity: {}, concurrency: 1000, status: 'ONLINE', running: [], at: at(),
    });
  });

  afterAll(async () => {
    await dispatch.close();
    await closeDatabase(db);
    await infra?.cleanup();
  });

  /** Submits and claims `n` jobs (attempt 1 each). */
  async function claimed(n: number, extra: Record<string, unknown> = {}): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      ids.push((await jobs.submit(validateSubmission({ backend: 'batch', payload: { i }, backoff: { type: 'fixed', baseMs: 60_000, jitter: 0 }, ...extra }), `h${i}`)).job.id);
    }
    const batch = await dispatch.claimForDispatch(1000);
    expect(batch.jobs.map((j) => j.id).sort()).toEqual([...ids].sort());
    return ids;
  }

  const started = (jobId: string, attempt = 1, workerId = 'w1'): ReportMessage => ({ type: 'started', jobId, attempt, workerId, at: at() });
  const completed = (jobId: string, output: unknown, workerId = 'w1'): ReportMessage => ({ type: 'completed', jobId, attempt: 1, workerId, at: at(), durationMs: 5, output, exitCode: 0 });
  const failed = (jobId: string, reason: 'error' | 'cancelled', retryable: boolean): ReportMessage =>
    ({ type: 'failed', jobId, attempt: 1, workerId: 'w1', at: at(), durationMs: 7, reason, errorCode: reason === 'cancelled' ? 'cancelled' : 'boom', message: `it went ${reason}`, retryable, exitCode: 3, stderrTail: 'err' }) as ReportMessage;

  const eventsOf = async (ids: string[]) => {
    const rows = await db.$queryRawUnsafe<{ subject: string; job: string }[]>(`SELECT subject, event->>'subject' AS job FROM outbox_events WHERE event->>'subject' = ANY($1::text[]) ORDER BY id`, ids);
    return rows.map((r) => `${r.job}:${r.subject.split('.').pop()}`);
  };

  it('decides every kind of report in one batch as it would one by one', async () => {
    const [a, b, c, d, e, f] = await claimed(6, { maxAttempts: 2 });
    // Start all but f; a second start of a is stale (not CLAIMED any more).
    const first = await jobs.applyReports([a, b, c, d, e].map((id) => started(id)));
    expect(first.map((r) => r.applied)).toEqual([true, true, true, true, true]);
    expect(first.every((r) => r.applied && r.job.status === 'RUNNING' && r.job.workerId === 'w1' && r.job.leaseExpiresAt !== null)).toBe(true);

    const unknown = '00000000-0000-7000-8000-000000000000';
    const results = await jobs.applyReports([
      completed(a, { answer: 42 }),
      failed(b, 'error', true), // attempts remain: retried after the backoff
      failed(c, 'error', false), // not retryable: FAILED
      failed(d, 'cancelled', false),
      completed(e, 'not mine', 'w2'), // another worker's report: fenced
      completed(unknown, null),
      completed(f, 'before its start'), // a completion may arrive before the start
    ]);
    expect(results.map((r) => (r.applied ? r.job.status : r.reason))).toEqual(['COMPLETED', 'SCHEDULED', 'FAILED', 'CANCELLED', 'stale', 'unknown_job', 'COMPLETED']);

    const byId = new Map((await db.job.findMany({ where: { id: { in: [a, b, c, d, e, f] } } })).map((j) => [j.id, j]));
    expect(byId.get(a)).toMatchObject({ status: 'COMPLETED', result: { answer: 42 }, exitCode: 0, leaseExpiresAt: null, error: null });
    expect(byId.get(b)).toMatchObject({ status: 'SCHEDULED', errorCode: 'boom', workerId: null, startedAt: null, exitCode: 3, stderrTail: 'err' });
    expect(byId.get(b)!.runAt.getTime()).toBeGreaterThan(Date.now() + 50_000);
    expect(byId.get(c)).toMatchObject({ status: 'FAILED', errorCode: 'boom', finishedAt: expect.any(Date) });
    expect(byId.get(d)).toMatchObject({ status: 'CANCELLED', error: 'it went cancelled' });
    expect(byId.get(e)).toMatchObject({ status: 'RUNNING', result: null });
    expect(byId.get(f)).toMatchObject({ status: 'COMPLETED', result: 'before its start', workerId: 'w1', startedAt: expect.any(Date) });

    const attempts = new Map((await db.jobAttempt.findMany({ where: { jobId: { in: [a, b, c, d, e, f] } } })).map((t) => [t.jobId, t]));
    expect(attempts.get(a)).toMatchObject({ outcome: 'COMPLETED', result: { answer: 42 }, durationMs: 5, workerId: 'w1' });
    expect(attempts.get(b)).toMatchObject({ outcome: 'FAILED', errorCode: 'boom', exitCode: 3, durationMs: 7 });
    expect(attempts.get(c)).toMatchObject({ outcome: 'FAILED' });
    expect(attempts.get(d)).toMatchObject({ outcome: 'CANCELLED' });
    expect(attempts.get(e)).toMatchObject({ outcome: 'RUNNING', finishedAt: null });
    expect(attempts.get(f)).toMatchObject({ outcome: 'COMPLETED', startedAt: expect.any(Date) });

    // One event per applied transition, none for the fenced ones.
    const events = await eventsOf([a, b, c, d, e, f]);
    expect(events.filter((x) => !/:(created|claimed)$/.test(x)).sort()).toEqual(
      [`${a}:started`, `${b}:started`, `${c}:started`, `${d}:started`, `${e}:started`, `${a}:completed`, `${b}:retrying`, `${c}:failed`, `${d}:cancelled`, `${f}:completed`].sort(),
    );
  });

  it('refuses two reports of one job in one batch (their order is the caller’s to keep)', async () => {
    const [a] = await claimed(1);
    await expect(jobs.applyReports([started(a), completed(a, 1)])).rejects.toThrow(/at most one report per job/);
    expect((await db.job.findUniqueOrThrow({ where: { id: a } })).status).toBe('CLAIMED');
  });

  it('writes a batch of a hundred with six statements, not six per report', async () => {
    // The same store on a pool of its own whose statements are counted (real Postgres underneath).
    const pool = createPool(infra.databaseUrl, 1);
    let statements = 0;
    pool.on('connect', (client: PoolClient) => {
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
        statements++;
        return query(...args);
      };
    });
    const counted = new JobStore(db, { subjects: subjects(infra.prefix), source: '/test', claimLeaseMs: 60_000, runLeaseMs: 60_000 }, pool);
    try {
      const ids = await claimed(100);
      await counted.applyReports(ids.map((id) => started(id)));
      statements = 0;
      const results = await counted.applyReports(ids.map((id, i) => completed(id, { i })));
      expect(results.every((r) => r.applied && r.job.status === 'COMPLETED')).toBe(true);
      // BEGIN, lock the hundred, UPDATE jobs, UPDATE job_attempts, INSERT outbox, COMMIT.
      expect(statements).toBe(6);
      expect(await db.jobAttempt.count({ where: { jobId: { in: ids }, outcome: 'COMPLETED' } })).toBe(100);
      expect((await eventsOf(ids)).filter((x) => x.endsWith(':completed'))).toHaveLength(100);
    } finally {
      await pool.end();
    }
  });
});
