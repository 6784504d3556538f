import { closeDatabase, createPool, createPrisma, Db, DispatchStore, JobStore, WorkerStore } from '@blixard/db';
import type { Pool } from 'pg';
import { subjects, type Subjects } from '@blixard/contracts';
import { validateSubmission } from '@blixard/domain';
import { createTestInfra, TestInfra } from '@blixard/testing';

/**
 * One scheduler leads dispatch at a time: its DispatchStore holds a session advisory lock on a
 * connection of its own and claims on it without a transaction (one-statement-events tests the
 * claim statement's events).
 */
describe('dispatch leadership', () => {
  let infra: TestInfra;
  let db: Db;
  let s: Subjects;
  let jobs: JobStore;
  const pools: Pool[] = [];
  const stores: DispatchStore[] = [];

  /** A dispatcher with a pool of its own, as each scheduler replica has. */
  function dispatcher(): DispatchStore {
    const pool = createPool(infra.databaseUrl, 2);
    pools.push(pool);
    const store = new DispatchStore(db, { subjects: s, source: '/test', claimLeaseMs: 60_000, fairness: true, reservePercent: 0 }, pool);
    stores.push(store);
    return store;
  }

  const submit = async (n: number, extra: Record<string, unknown> = {}) => {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push((await jobs.submit(validateSubmission({ backend: 'lead', payload: { i }, ...extra }), `h${i}`)).job.id);
    return ids;
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  /** The backend of the session holding the dispatch lock, if any. */
  // This database's holder: other test files' schedulers hold the same lock in their own databases.
  const lockHolder = async () =>
    (await db.$queryRawUnsafe<{ pid: number }[]>(
      `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = 727275 AND granted
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    ))[0]?.pid ?? null;

  beforeAll(async () => {
    infra = await createTestInfra('dispatch_leader');
    db = createPrisma(infra.databaseUrl, 4);
    s = subjects(infra.prefix);
    jobs = new JobStore(db, { subjects: s, source: '/test', claimLeaseMs: 60_000, runLeaseMs: 60_000 });
    await new WorkerStore(db, { subjects: s, source: '/test', runLeaseMs: 60_000 }).heartbeat({
      workerId: 'w1', backend: 'lead', host: 'h', version: 't', labels: {}, capacity: {}, concurrency: 1000, status: 'ONLINE', running: [], at: new Date().toISOString(),
    });
  });

  afterAll(async () => {
    for (const store of stores) await store.close();
    for (const pool of pools) await pool.end();
    await closeDatabase(db);
    await infra?.cleanup();
  });

  it('lets one store lead and hands the lead over when it closes', async () => {
    const a = dispatcher();
    const b = dispatcher();
    const [first] = await submit(1);
    const round = await a.claimForDispatch(100);
    expect(round.locked).toBe(true);
    expect(round.jobs.map((j) => j.id)).toEqual([first]);
    expect(a.leading).toBe(true);

    const [second] = await submit(1);
    const standby = await b.claimForDispatch(100);
    expect(standby).toMatchObject({ locked: false, jobs: [], work: null });
    expect(b.leading).toBe(false);
    expect((await a.claimForDispatch(100)).jobs.map((j) => j.id)).toEqual([second]);

    await a.close();
    expect(a.leading).toBe(false);
    expect(await lockHolder()).toBeNull();
    const [third] = await submit(1);
    await sleep(120); // a standby tries at most every 100 ms
    const taken = await b.claimForDispatch(100);
    expect(taken.locked).toBe(true);
    expect(taken.jobs.map((j) => j.id)).toEqual([third]);
    await b.close();
  });

  it('moves the lead when the leader\'s connection dies, and claims nothing twice', async () => {
    const a = dispatcher();
    const b = dispatcher();
    await a.claimForDispatch(100);
    expect(a.leading).toBe(true);
    const ids = await submit(20);
    // The leader's connection dies between rounds (a crashed host, a failover, an admin).
    const pid = await lockHolder();
    expect(pid).not.toBeNull();
    await db.$queryRawUnsafe(`SELECT pg_terminate_backend($1)`, pid);
    await expect(a.claimForDispatch(100)).rejects.toThrow();
    expect(a.leading).toBe(false);

    await sleep(120);
    const taken = await b.claimForDispatch(100);
    expect(taken.locked).toBe(true);
    expect(taken.jobs.map((j) => j.id).sort()).toEqual([...ids].sort());
    await sleep(120);
    expect(await a.claimForDispatch(100)).toMatchObject({ locked: false, jobs: [] });
    const attempts = await db.$queryRawUnsafe<{ n: number }[]>(`SELECT count(*)::int AS n FROM job_attempts WHERE job_id = ANY($1::uuid[])`, ids);
    expect(attempts[0]!.n).toBe(20);
    await b.close();
  });
});
