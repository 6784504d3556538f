import { Client } from 'pg';
import { BlixardClient } from '@blixard/client';
import { createTestInfra, TestInfra, waitFor } from '../src';
import { InProcessStack, namedMock, startStack } from './stack';

/**
 * Priorities, queue and key limits, pause, rate limits and fairness — with two schedulers racing,
 * so each limit must hold across replicas.
 */
describe('dispatch controls', () => {
  let infra: TestInfra;
  let stack: InProcessStack;
  let client: BlixardClient;
  let db: Client;

  beforeAll(async () => {
    infra = await createTestInfra('sched_limits');
    stack = await startStack(infra.env(), { schedulers: 2 });
    client = stack.client;
    db = new Client({ connectionString: infra.databaseUrl });
    await db.connect();
  });

  afterAll(async () => {
    await stack?.stop();
    await db?.end();
    await infra?.cleanup();
  });

  async function executor(backend: string, concurrency: number) {
    const e = await stack.addExecutor(namedMock(backend), { EXECUTOR_CONCURRENCY: String(concurrency) });
    await waitFor(`${backend} online`, async () => (await client.workers()).some((w) => w.backend === backend && w.status === 'ONLINE'));
    return e;
  }

  const submitMany = (n: number, job: Parameters<BlixardClient['submit']>[0]) =>
    Promise.all(Array.from({ length: n }, () => client.submit(job)));

  /** Samples `sql` (a count) every few ms while `until` is false; returns the highest value seen. */
  async function sampleMax(sql: string, params: unknown[], until: () => Promise<boolean>, timeoutMs = 30_000): Promise<number> {
    let max = 0;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await db.query<{ n: number }>(sql, params);
      max = Math.max(max, ...r.rows.map((row) => Number(row.n)));
      if (await until()) return max;
      if (Date.now() > deadline) {
        const jobs = await db.query(`SELECT queue, status, count(*)::int n FROM jobs GROUP BY 1, 2 ORDER BY 1, 2`);
        const workers = await db.query(`SELECT backend, status, concurrency FROM workers`);
        throw new Error(`not done after ${timeoutMs} ms: ${JSON.stringify({ jobs: jobs.rows, workers: workers.rows })}`);
      }
      await new Promise((res) => setTimeout(res, 5));
    }
  }

  const allDone = (queue: string) => async () => {
    const r = await db.query<{ n: string }>(`SELECT count(*) n FROM jobs WHERE queue = $1 AND status <> 'COMPLETED'`, [queue]);
    return Number(r.rows[0]!.n) === 0;
  };

  it('dispatches a high-priority job ahead of a flood of low-priority ones within one cycle', async () => {
    await executor('prio', 2);
    await submitMany(60, { backend: 'prio', queue: 'prio', payload: { sleepMs: 40 }, priority: 0 });
    await waitFor('the flood to run', async () => (await db.query(`SELECT 1 FROM jobs WHERE queue = 'prio' AND status = 'COMPLETED'`)).rowCount! >= 4);
    const high = await client.submit({ backend: 'prio', queue: 'prio', payload: {}, priority: 10 });
    const done = await client.waitForTerminal(high.id);
    const overtook = await db.query<{ n: string }>(
      `SELECT count(*) n FROM job_attempts a JOIN jobs j ON j.id = a.job_id
       WHERE j.queue = 'prio' AND j.priority = 0 AND a.claimed_at > $1 AND a.claimed_at < $2`,
      [done.createdAt, done.attempts![0]!.claimedAt],
    );
    // At most the slots that freed while it was being submitted: one dispatch cycle.
    expect(Number(overtook.rows[0]!.n)).toBeLessThanOrEqual(2);
    const waiting = await db.query<{ n: string }>(`SELECT count(*) n FROM jobs WHERE queue = 'prio' AND priority = 0 AND status = 'PENDING' AND created_at < $1`, [done.createdAt]);
    expect(Number(waiting.rows[0]!.n)).toBeGreaterThan(20); // it really jumped a queue
  });

  it('holds a queue to maxConcurrency exactly, sampled throughout, across two schedulers', async () => {
    await executor('capped', 16);
    await client.setQueue('capped', { maxConcurrency: 3 });
    await submitMany(40, { backend: 'capped', queue: 'capped', payload: { sleepMs: 60 } });
    const max = await sampleMax(`SELECT count(*) n FROM jobs WHERE queue = 'capped' AND status IN ('CLAIMED', 'RUNNING')`, [], allDone('capped'));
    expect(max).toBe(3);
  });

  it('holds each concurrency key to its limit while other keys run', async () => {
    await executor('keyed', 16);
    await client.setQueue('keyed', { keyConcurrency: 2 });
    await Promise.all(['k1', 'k2', 'k3'].map((k) => submitMany(12, { backend: 'keyed', queue: 'keyed', concurrencyKey: k, payload: { sleepMs: 50 } })));
    const max = await sampleMax(
      `SELECT count(*) n FROM jobs WHERE queue = 'keyed' AND status IN ('CLAIMED', 'RUNNING') GROUP BY concurrency_key`,
      [],
      allDone('keyed'),
    );
    expect(max).toBe(2);
  });

  it('stops dispatch from a paused queue without touching running work, and resumes it', async () => {
    await executor('pausable', 4);
    const running = await client.submit({ backend: 'pausable', queue: 'pausable', payload: { sleepMs: 600 } });
    await waitFor('the first job to run', async () => (await client.get(running.id)).status === 'RUNNING');
    await client.setQueue('pausable', { paused: true });
    const waiting = await submitMany(3, { backend: 'pausable', queue: 'pausable', payload: {} });
    expect((await client.waitForTerminal(running.id)).status).toBe('COMPLETED');
    await new Promise((r) => setTimeout(r, 400));
    for (const w of waiting) expect((await client.get(w.id)).status).toBe('PENDING');
    expect(await client.queue('pausable')).toMatchObject({ paused: true, counts: { PENDING: 3, COMPLETED: 1 } });
    await client.setQueue('pausable', { paused: false });
    for (const w of waiting) expect((await client.waitForTerminal(w.id)).status).toBe('COMPLETED');
  });

  it('enforces a queue rate limit and a per-key rate limit at dispatch (sliding window)', async () => {
    await executor('rated', 16);
    await client.setQueue('rated', { rateLimit: { n: 4, intervalMs: 1000 } });
    await client.setQueue('keyrated', { keyRateLimit: { n: 2, intervalMs: 1000 } });
    await submitMany(10, { backend: 'rated', queue: 'rated', payload: {} });
    await submitMany(5, { backend: 'rated', queue: 'keyrated', concurrencyKey: 'acme', payload: {} });
    await submitMany(3, { backend: 'rated', queue: 'keyrated', concurrencyKey: 'other', payload: {} });
    await waitFor('rated jobs done', allDone('rated'), 20_000, 100);
    await waitFor('key-rated jobs done', allDone('keyrated'), 20_000, 100);
    const claims = async (where: string) =>
      (await db.query<{ t: Date }>(`SELECT claimed_at t FROM job_attempts WHERE ${where} ORDER BY claimed_at`)).rows.map((r) => r.t.getTime());
    const windowOk = (times: number[], n: number) => times.every((t, i) => i + n >= times.length || times[i + n]! - t >= 1000);
    expect(windowOk(await claims(`queue = 'rated'`), 4)).toBe(true);
    expect(windowOk(await claims(`queue = 'keyrated' AND concurrency_key = 'acme'`), 2)).toBe(true);
    // The limit is per key: another key is not held back by acme's.
    const other = await claims(`queue = 'keyrated' AND concurrency_key = 'other'`);
    const acme = await claims(`queue = 'keyrated' AND concurrency_key = 'acme'`);
    expect(other[2]! - other[0]!).toBeGreaterThanOrEqual(1000);
    expect(acme[4]! - acme[0]!).toBeGreaterThanOrEqual(2000);
  });

  it('does not let one fairness key’s flood delay another key’s single job beyond a few cycles', async () => {
    await executor('fair', 2);
    await submitMany(150, { backend: 'fair', queue: 'fair', fairnessKey: 'tenant-a', payload: { sleepMs: 20 } });
    await waitFor('tenant A to run', async () => (await db.query(`SELECT 1 FROM jobs WHERE queue = 'fair' AND status = 'COMPLETED'`)).rowCount! >= 4);
    const b = await client.submit({ backend: 'fair', queue: 'fair', fairnessKey: 'tenant-b', payload: {} });
    const done = await client.waitForTerminal(b.id);
    const aFirst = await db.query<{ n: string }>(
      `SELECT count(*) n FROM job_attempts a JOIN jobs j ON j.id = a.job_id WHERE j.fairness_key = 'tenant-a' AND a.claimed_at > $1 AND a.claimed_at < $2`,
      [done.createdAt, done.attempts![0]!.claimedAt],
    );
    expect(Number(aFirst.rows[0]!.n)).toBeLessThanOrEqual(4);
    const aWaiting = await db.query<{ n: string }>(`SELECT count(*) n FROM jobs WHERE fairness_key = 'tenant-a' AND status = 'PENDING'`);
    expect(Number(aWaiting.rows[0]!.n)).toBeGreaterThan(50);
  });

  it('shares dispatch by weight between keys with backlogs', async () => {
    await executor('weighted', 1);
    await client.setFairnessWeight('heavy', 3);
    await client.setQueue('weighted', { paused: true });
    await submitMany(40, { backend: 'weighted', queue: 'weighted', fairnessKey: 'heavy', payload: {} });
    await submitMany(40, { backend: 'weighted', queue: 'weighted', fairnessKey: 'light', payload: {} });
    await client.setQueue('weighted', { paused: false });
    await waitFor('40 claims', async () => (await db.query(`SELECT 1 FROM job_attempts WHERE queue = 'weighted'`)).rowCount! >= 40);
    const first = await db.query<{ k: string }>(`SELECT j.fairness_key k FROM job_attempts a JOIN jobs j ON j.id = a.job_id WHERE a.queue = 'weighted' ORDER BY a.claimed_at, a.id LIMIT 40`);
    const heavy = first.rows.filter((r) => r.k === 'heavy').length;
    expect(heavy).toBeGreaterThanOrEqual(27); // 3:1 is 30 of 40; allow for round boundaries
    expect(heavy).toBeLessThanOrEqual(33);
  });
});
