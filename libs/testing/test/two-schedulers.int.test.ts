import { closeDatabase, createPrisma, JobStore, requestHash } from '@blixard/db';
import { subjects, validateSubmission } from './deps';
import { createTestInfra, TestInfra, waitFor } from '../src';
import { MockBackend, RunningExecutor, RunningRegistry, RunningScheduler, startExecutor, startRegistry, startScheduler } from './stack';

describe('two schedulers over one database', () => {
  let infra: TestInfra;
  const schedulers: RunningScheduler[] = [];
  let executor: RunningExecutor;
  let registry: RunningRegistry;

  beforeAll(async () => {
    infra = await createTestInfra('two_sched');
  });

  afterAll(async () => {
    await executor?.stop();
    await registry?.stop();
    for (const s of schedulers) await s.stop();
    await infra?.cleanup();
  });

  it('dispatch each of 500 attempts exactly once', async () => {
    const env = infra.env({ DISPATCH_BATCH_SIZE: '7', EXECUTOR_CONCURRENCY: '64' });
    const db = createPrisma(infra.databaseUrl, 4);
    const store = new JobStore(db, { subjects: subjects(infra.prefix), source: '/test', claimLeaseMs: 30_000, runLeaseMs: 30_000 });
    // The backlog exists before either scheduler starts, so both race for the same rows.
    for (let i = 0; i < 500; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, j) => {
          const body = { backend: 'mock', payload: { n: i + j } };
          return store.submit(validateSubmission({ ...body, payload: {} }), requestHash(body));
        }),
      );
    }
    const [a, b] = await Promise.all([startScheduler(env), startScheduler(env)]);
    schedulers.push(a!, b!);
    registry = await startRegistry(env);
    executor = await startExecutor(new MockBackend(), env);

    await waitFor('all 500 jobs to complete', async () => (await db.job.count({ where: { status: 'COMPLETED' } })) === 500, 60_000, 200);

    const attempts = await db.jobAttempt.groupBy({ by: ['jobId'], _count: { _all: true } });
    expect(attempts).toHaveLength(500);
    expect(attempts.every((g) => g._count._all === 1)).toBe(true);
    const dispatched = (await a!.scheduler.counters.dispatched.get()).values.reduce((s, v) => s + v.value, 0) +
      (await b!.scheduler.counters.dispatched.get()).values.reduce((s, v) => s + v.value, 0);
    expect(dispatched).toBe(500);
    const claimedEvents = await db.outboxEvent.count({ where: { subject: { endsWith: '.events.job.claimed' } } });
    expect(claimedEvents).toBe(500);
    await closeDatabase(db);
  });
});
