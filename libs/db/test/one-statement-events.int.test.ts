import { closeDatabase, createPrisma, Db, DispatchStore, jobEventRow, JobStore, WorkerStore } from '@blixard/db';
import { subjects, type Subjects } from '@blixard/contracts';
import { validateSubmission } from '@blixard/domain';
import { createTestInfra, TestInfra } from '@blixard/testing';

/**
 * The hottest writes put a job's row and its outbox event in one statement, with the event built
 * before the row is written: a submit without parents (no transaction at all) and the dispatch
 * claim. Each event must still be exactly the one built from the row as stored.
 */
describe('events written in the same statement as their job', () => {
  let infra: TestInfra;
  let db: Db;
  let s: Subjects;
  let jobs: JobStore;
  let dispatch: DispatchStore;

  /** The outbox rows of one job's `name` transition, oldest first. */
  const eventsOf = (id: string, name: string) =>
    db.$queryRawUnsafe<{ subject: string; event: Record<string, unknown> }[]>(
      `SELECT subject, event FROM outbox_events WHERE event->>'subject' = $1 AND event->>'type' LIKE '%.' || $2 ORDER BY id`,
      id,
      name,
    );
  /** The event as built from the stored row (the CloudEvent id is random). */
  const expectBuiltFromRow = async (stored: { subject: string; event: Record<string, unknown> }, name: 'created' | 'claimed', previous: 'PENDING' | null, id: string) => {
    const job = (await db.job.findUnique({ where: { id } }))!;
    const expected = jobEventRow(s, '/test', name, job, previous);
    expect(stored.subject).toBe(expected.subject);
    expect({ ...stored.event, id: undefined }).toEqual({ ...(expected.event as object), id: undefined });
  };

  beforeAll(async () => {
    infra = await createTestInfra('one_statement');
    db = createPrisma(infra.databaseUrl, 4);
    s = subjects(infra.prefix);
    jobs = new JobStore(db, { subjects: s, source: '/test', claimLeaseMs: 60_000, runLeaseMs: 60_000 });
    dispatch = new DispatchStore(db, { subjects: s, source: '/test', claimLeaseMs: 60_000, fairness: true, reservePercent: 0 });
    await new WorkerStore(db, { subjects: s, source: '/test', runLeaseMs: 60_000 }).heartbeat({
      workerId: 'w1', backend: 'one', host: 'h', version: 't', labels: {}, capacity: {}, concurrency: 100, status: 'ONLINE', running: [], at: new Date().toISOString(),
    });
  });

  afterAll(async () => {
    await dispatch.close();
    await closeDatabase(db);
    await infra?.cleanup();
  });

  it('writes a submitted job\'s created event as the stored row reads, with and without parents', async () => {
    const { job: parent } = await jobs.submit(validateSubmission({ backend: 'one', payload: { a: 1 }, labels: { team: 'x' }, priority: 3, maxAttempts: 4, timeoutMs: 9_000 }), 'h1', new Date(), { tenant: 'acme' });
    const { job: child } = await jobs.submit(validateSubmission({ backend: 'one', payload: {}, dependsOn: [parent.id] }), 'h2', new Date(), { tenant: 'acme' });
    const { job: later } = await jobs.submit(validateSubmission({ backend: 'one', payload: {}, delayMs: 60_000 }), 'h3');
    for (const job of [parent, child, later]) {
      const events = await eventsOf(job.id, 'created');
      expect(events).toHaveLength(1);
      await expectBuiltFromRow(events[0]!, 'created', null, job.id);
    }
    expect((await eventsOf(child.id, 'created'))[0]!.event).toMatchObject({ data: { status: 'BLOCKED', attempt: 0, tenant: 'acme' } });
    expect((await eventsOf(later.id, 'created'))[0]!.event).toMatchObject({ data: { status: 'SCHEDULED' } });
  });

  it('writes each claimed event as the job reads after its claim, a retry included', async () => {
    const [id] = [(await jobs.submit(validateSubmission({ backend: 'one', payload: {}, maxAttempts: 3, backoff: { type: 'fixed', baseMs: 1, jitter: 0 } }), 'h4')).job.id];
    const first = await dispatch.claimForDispatch(100);
    expect(first.jobs.map((j) => j.id)).toContain(id);
    const at = new Date().toISOString();
    await jobs.applyReports([{ type: 'started', jobId: id!, attempt: 1, workerId: 'w1', at }]);
    await jobs.applyReports([
      { type: 'failed', jobId: id!, attempt: 1, workerId: 'w1', at, durationMs: 3, reason: 'error', errorCode: 'boom', message: 'first try failed', retryable: true, exitCode: 2, stderrTail: '' },
    ]);
    await new Promise((r) => setTimeout(r, 5));
    await jobs.promoteDue(10);
    const round = await dispatch.claimForDispatch(100);
    expect(round.jobs.map((j) => [j.id, j.attempt, j.status])).toEqual([[id, 2, 'CLAIMED']]);

    const events = await eventsOf(id!, 'claimed');
    expect(events).toHaveLength(2);
    for (const e of events.slice(1)) await expectBuiltFromRow(e, 'claimed', 'PENDING', id!);
    // The previous attempt's error travels with the retry's claim, as the row has it.
    expect(events[1]!.event).toMatchObject({ data: { attempt: 2, status: 'CLAIMED', previousStatus: 'PENDING', error: { code: 'boom', message: 'first try failed' } } });
    // The round returns the row as claimed, and a claim never looks earlier than the run-at.
    const job = (await db.job.findUnique({ where: { id: id! } }))!;
    expect(round.jobs[0]!.dispatchedAt).toEqual(job.dispatchedAt);
    expect(job.dispatchedAt!.getTime()).toBeGreaterThanOrEqual(job.runAt.getTime());
  });
});
