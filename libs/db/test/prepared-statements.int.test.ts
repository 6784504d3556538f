import { closeDatabase, createPool, createPrisma, Db, DispatchStore, JobStore, OutboxRelay, WorkerStore } from '@blixard/db';
import type { Pool } from 'pg';
import { subjects, type ReportMessage } from '@blixard/contracts';
import { validateSubmission } from '@blixard/domain';
import { createTestInfra, TestInfra } from '@blixard/testing';

/**
 * The hot statements (a dispatch round, a report batch, the outbox relay) are named prepared
 * statements, parsed once per connection and planned once where a generic plan does. They must
 * keep working when a migration adds a column while the services run: a prepared `RETURNING *`
 * would then fail on every call with "cached plan must not change result type".
 */
describe('prepared hot statements', () => {
  let infra: TestInfra;
  let db: Db;
  let jobs: JobStore;
  let dispatch: DispatchStore;
  let relay: OutboxRelay;
  let dispatchPool: Pool;
  const at = () => new Date().toISOString();

  beforeAll(async () => {
    infra = await createTestInfra('prepared');
    // One connection: the report batches, the relay and this test's look at pg_prepared_statements
    // share it. The dispatch leader holds a connection of its own, as in the scheduler.
    db = createPrisma(infra.databaseUrl, 1);
    dispatchPool = createPool(infra.databaseUrl, 1);
    const s = subjects(infra.prefix);
    jobs = new JobStore(db, { subjects: s, source: '/test', claimLeaseMs: 60_000, runLeaseMs: 60_000 });
    dispatch = new DispatchStore(db, { subjects: s, source: '/test', claimLeaseMs: 60_000, fairness: true, reservePercent: 0 }, dispatchPool);
    relay = new OutboxRelay(db, async () => undefined);
    await new WorkerStore(db, { subjects: s, source: '/test', runLeaseMs: 60_000 }).heartbeat({
      workerId: 'w1', backend: 'prep', host: 'h', version: 't', labels: {}, capacity: {}, concurrency: 100, status: 'ONLINE', running: [], at: at(),
    });
    // The worker's own event.
    while ((await relay.relayOnce(1000)) > 0);
  });

  afterAll(async () => {
    await dispatch.close();
    await dispatchPool.end();
    await closeDatabase(db);
    await infra?.cleanup();
  });

  /** Submits `n` jobs, claims them, then starts and completes them through report batches. */
  async function runJobs(n: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push((await jobs.submit(validateSubmission({ backend: 'prep', payload: { i } }), `h${i}`)).job.id);
    const batch = await dispatch.claimForDispatch(100);
    expect(batch.jobs.map((j) => j.id).sort()).toEqual([...ids].sort());
    const started = await jobs.applyReports(ids.map((jobId): ReportMessage => ({ type: 'started', jobId, attempt: 1, workerId: 'w1', at: at() })));
    expect(started.every((r) => r.applied && r.job.status === 'RUNNING')).toBe(true);
    const done = await jobs.applyReports(ids.map((jobId): ReportMessage => ({ type: 'completed', jobId, attempt: 1, workerId: 'w1', at: at(), durationMs: 1, output: { jobId } })));
    expect(done.map((r) => r.applied && r.job.status === 'COMPLETED' && (r.job.result as { jobId: string }).jobId)).toEqual(ids);
    // created, claimed, started and completed of each job.
    let relayed = 0;
    for (let n2 = await relay.relayOnce(1000); n2 > 0; n2 = await relay.relayOnce(1000)) relayed += n2;
    expect(relayed).toBe(4 * n);
    return ids;
  }

  it('prepares the report batch and relay statements on the connection that runs them', async () => {
    await runJobs(3);
    // The pool's only connection: what it has prepared.
    const names = (await db.$queryRawUnsafe<{ name: string }[]>(`SELECT name FROM pg_prepared_statements`)).map((r) => r.name);
    const ours = names.filter((n) => n.startsWith('blx_'));
    // The report batch's lock, job and attempt updates (one per patch shape), outbox insert, the
    // relay's read and mark.
    expect(ours.length).toBeGreaterThanOrEqual(6);
  });

  it('keeps working after a migration adds a column to jobs and job_attempts', async () => {
    await runJobs(2);
    await db.$executeRawUnsafe(`ALTER TABLE jobs ADD COLUMN later_migration int`);
    await db.$executeRawUnsafe(`ALTER TABLE job_attempts ADD COLUMN later_migration int`);
    try {
      // The same statements on the same connections (the pool's and the dispatch leader's).
      await runJobs(2);
    } finally {
      await db.$executeRawUnsafe(`ALTER TABLE jobs DROP COLUMN later_migration`);
      await db.$executeRawUnsafe(`ALTER TABLE job_attempts DROP COLUMN later_migration`);
    }
  });
});
