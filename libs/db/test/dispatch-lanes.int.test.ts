import { CANDIDATES_SQL, closeDatabase, createPool, createPrisma, Db, DispatchStore, WorkerStore } from '@blixard/db';
import { subjects } from '@blixard/contracts';
import { newJobId } from '@blixard/domain';
import { createTestInfra, TestInfra } from '@blixard/testing';
import { Client, Pool } from 'pg';

/**
 * A tenant's backlog that cannot be dispatched now (its queue is paused, full or rate-limited, or
 * its backend has no free slot) must not slow the rounds that dispatch everyone else's jobs. The
 * candidates query finds lanes (fairness key, queue, backend) by a skip scan and passes over a
 * closed one with one index probe; read per key with those conditions as filters, it walked the
 * whole backlog every round. Bounded here by the buffers Postgres touches, which do not depend on
 * the machine's speed.
 */
describe('dispatch candidates with a closed backlog', () => {
  let infra: TestInfra;
  let db: Db;
  let sql: Client;
  let dispatchPool: Pool;
  let dispatch: DispatchStore;
  let bJob: string;

  /** `n` ready jobs (with requirements when given), inserted in bulk. */
  async function flood(n: number, job: { fairnessKey: string; queue: string; backend: string; requirements?: unknown }): Promise<string[]> {
    const ids = Array.from({ length: n }, () => newJobId());
    await sql.query(
      `INSERT INTO jobs (id, queue, backend, payload, status, fairness_key, requirements, created_at, updated_at, run_at)
       SELECT id, $2, $3, '{}'::jsonb, 'PENDING', $4, $5::jsonb, now(), now(), now() FROM unnest($1::uuid[]) AS id`,
      [ids, job.queue, job.backend, job.fairnessKey, job.requirements === undefined ? null : JSON.stringify(job.requirements)],
    );
    return ids;
  }

  beforeAll(async () => {
    infra = await createTestInfra('dispatch_lanes');
    db = createPrisma(infra.databaseUrl, 2);
    sql = new Client({ connectionString: infra.databaseUrl });
    await sql.connect();
    dispatchPool = createPool(infra.databaseUrl, 1);
    const s = subjects(infra.prefix);
    dispatch = new DispatchStore(db, { subjects: s, source: '/test', claimLeaseMs: 60_000, fairness: true, reservePercent: 0 }, dispatchPool);
    // Backend x has room; backend full has a worker with no free slot (it runs one of a's jobs).
    const workers = new WorkerStore(db, { subjects: s, source: '/test', runLeaseMs: 60_000 });
    await workers.heartbeat({ workerId: 'wx', backend: 'x', host: 'h', version: 't', labels: {}, capacity: {}, concurrency: 10, status: 'ONLINE', running: [], at: new Date().toISOString() });
    await workers.heartbeat({ workerId: 'wf', backend: 'full', host: 'h', version: 't', labels: {}, capacity: {}, concurrency: 1, status: 'ONLINE', running: [], at: new Date().toISOString() });
    const [busy] = await flood(1, { fairnessKey: 'a', queue: 'other', backend: 'full' });
    await sql.query(`UPDATE jobs SET status = 'CLAIMED', attempt = 1 WHERE id = $1`, [busy]);
    // Tenant a: 20,000 jobs in a paused queue (5,000 of them with requirements), 5,000 more on
    // the full backend.
    await flood(15_000, { fairnessKey: 'a', queue: 'held', backend: 'x' });
    await flood(5_000, { fairnessKey: 'a', queue: 'held', backend: 'x', requirements: { resources: { cpuMillis: 100 } } });
    await flood(5_000, { fairnessKey: 'a', queue: 'other', backend: 'full' });
    await sql.query(`INSERT INTO queues (name, paused) VALUES ('held', true)`);
    // Tenant b: one job it can run.
    [bJob] = await flood(1, { fairnessKey: 'b', queue: 'open', backend: 'x' });
    await sql.query('ANALYZE jobs');
  });

  afterAll(async () => {
    await dispatch.close();
    await dispatchPool.end();
    await sql.end();
    await closeDatabase(db);
    await infra?.cleanup();
  });

  it('reads the one job it can claim, touching a bounded number of buffers', async () => {
    // What a round passes: backends with free slots, closed queues, saturated keys, limits.
    const params = [['x'], ['held'], [], [], 16, 64];
    const { rows } = await sql.query(CANDIDATES_SQL, params);
    expect(rows.map((r) => r.id)).toEqual([bJob]);
    const { rows: [explained] } = await sql.query(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${CANDIDATES_SQL}`, params);
    const plan = (explained['QUERY PLAN'] as { Plan: Record<string, number> }[])[0]!.Plan;
    const buffers = plan['Shared Hit Blocks']! + plan['Shared Read Blocks']!;
    process.stdout.write(`candidates query with 25,000 closed jobs: ${buffers} buffers\n`);
    // A handful of index probes per lane; walking a's 25,000 jobs touched 655 (read per key).
    expect(buffers).toBeLessThan(200);
  });

  it('dispatches the other tenant in the next round', async () => {
    const batch = await dispatch.claimForDispatch(100);
    expect(batch.jobs.map((j) => j.id)).toEqual([bJob]);
  });

  it('reads a closed lane again once it opens', async () => {
    await sql.query(`UPDATE queues SET paused = false WHERE name = 'held'`);
    const batch = await dispatch.claimForDispatch(100);
    // Backend x's 9 free slots (b's job holds the tenth), all to tenant a's jobs in the queue
    // that opened (its jobs with requirements fit no worker here and wait).
    expect(batch.jobs).toHaveLength(9);
    expect(new Set(batch.jobs.map((j) => `${j.fairnessKey}/${j.queue}/${j.backend}`))).toEqual(new Set(['a/held/x']));
  });
});
