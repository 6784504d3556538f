import { Client } from 'pg';
import { BlixardApiError, BlixardClient } from '@blixard/client';
import { createTestInfra, TestInfra, waitFor } from '../src';
import { InProcessStack, namedMock, RunningExecutor, startExecutor, startStack } from './stack';

/**
 * Placement on a fleet of real mock executors that declare capacities and labels: fit and
 * no-fit with the reason shown, each policy's choice, reservations that never over-commit a
 * worker while 1,000 jobs race through two schedulers, placement deadlines, and payloads checked
 * by an executor of the backend at submit.
 */
describe('placement', () => {
  let infra: TestInfra;
  let stack: InProcessStack;
  let client: BlixardClient;
  let env: Record<string, string>;
  let db: Client;

  beforeAll(async () => {
    infra = await createTestInfra('placement');
    env = infra.env({ EXECUTOR_CONCURRENCY: '4', DISPATCH_INTERVAL_MS: '50' });
    stack = await startStack(env, { schedulers: 2 });
    client = stack.client;
    db = new Client({ connectionString: infra.databaseUrl });
    await db.connect();
  });

  afterAll(async () => {
    await db?.end();
    await stack?.stop();
    await infra?.cleanup();
  });

  const worker = (backend: string, id: string, resources: string, labels = ''): Promise<RunningExecutor> =>
    stack.addExecutor(namedMock(backend), { EXECUTOR_ID: id, EXECUTOR_RESOURCES: resources, EXECUTOR_LABELS: labels });

  const online = (ids: string[]) =>
    waitFor(`workers ${ids.join(', ')} online`, async () => {
      const ws = await client.workers();
      return ids.every((id) => ws.some((w) => w.id === id && w.status === 'ONLINE'));
    });

  it('waits in PENDING with the reason when no worker fits, and runs as soon as one registers', async () => {
    await worker('fit', 'fit-small', 'memoryMb=1024', 'zone=a');
    await online(['fit-small']);
    const job = await client.submit({ backend: 'fit', payload: { output: 'on the gpu' }, constraints: ['gpu=true'], resources: { memoryMb: 2048 } });
    const waiting = await waitFor('a wait reason', async () => {
      const j = await client.get(job.id);
      return j.waitReason ? j : undefined;
    });
    expect(waiting.status).toBe('PENDING');
    expect(waiting.waitReason).toBe('no worker with label gpu=true and 1 slot, 2048 MB free (1 online: 1 without the labels)');
    expect(waiting.requirements).toEqual({ resources: { memoryMb: 2048 }, constraints: ['gpu=true'], affinity: [], worker: null });

    await worker('fit', 'fit-gpu', 'memoryMb=4096,gpu=1', 'zone=b,gpu=true');
    const done = await client.waitForTerminal(job.id);
    expect(done).toMatchObject({ status: 'COMPLETED', workerId: 'fit-gpu', result: 'on the gpu', waitReason: null });

    // A job that fits runs where it fits; one without requirements runs anywhere.
    const fits = await client.submit({ backend: 'fit', payload: {}, constraints: ['zone=a'], resources: { memoryMb: 512 } });
    expect(await client.waitForTerminal(fits.id)).toMatchObject({ status: 'COMPLETED', workerId: 'fit-small' });
    const anywhere = await client.submit({ backend: 'fit', payload: {} });
    expect((await client.waitForTerminal(anywhere.id)).status).toBe('COMPLETED');
  });

  it('picks the worker each policy calls for', async () => {
    // Registered in the order c, a, b; a has the least room, b the most.
    await worker('pol', 'pol-c', 'cpuMillis=2000', 'zone=c');
    await online(['pol-c']);
    await worker('pol', 'pol-a', 'cpuMillis=1000', 'zone=a');
    await online(['pol-a']);
    await worker('pol', 'pol-b', 'cpuMillis=4000', 'zone=b');
    await online(['pol-b']);
    const placeOne = async (queue: string, extra: object = {}) => {
      const j = await client.submit({ backend: 'pol', queue, payload: {}, resources: { cpuMillis: 500 }, ...extra });
      return (await client.waitForTerminal(j.id)).workerId;
    };

    await client.setQueue('q-binpack', { placementPolicy: 'binpack' });
    expect(await placeOne('q-binpack')).toBe('pol-a');
    await client.setQueue('q-spread', { placementPolicy: 'spread' });
    expect(await placeOne('q-spread')).toBe('pol-b');
    await client.setQueue('q-first', { placementPolicy: 'first-fit' });
    expect(await placeOne('q-first')).toBe('pol-c');
    await client.setQueue('q-rr', { placementPolicy: 'round-robin' });
    const rr = [];
    for (let i = 0; i < 4; i++) rr.push(await placeOne('q-rr'));
    expect(rr).toEqual(['pol-a', 'pol-b', 'pol-c', 'pol-a']);
    expect((await client.queue('q-rr')).placementPolicy).toBe('round-robin');

    await client.setQueue('q-explicit', { placementPolicy: 'explicit' });
    expect(await placeOne('q-explicit', { worker: 'pol-b' })).toBe('pol-b');
    const unnamed = await client.submit({ backend: 'pol', queue: 'q-explicit', payload: {}, resources: { cpuMillis: 1 } });
    await waitFor('the explicit queue to explain itself', async () => (await client.get(unnamed.id)).waitReason?.includes('name a worker'));
    await client.cancel(unnamed.id);

    // Label constraints with negation, and affinity over the policy.
    expect(await placeOne('q-binpack', { constraints: ['zone notin (a,b)'] })).toBe('pol-c');
    expect(await placeOne('q-binpack', { constraints: ['zone!=a'], affinity: [{ constraint: 'zone=b', weight: 50 }] })).toBe('pol-b');
    expect(await placeOne('q-spread', { affinity: [{ constraint: 'zone=b', weight: -50 }] })).toBe('pol-c');
    await expect(client.setQueue('q-bad', { placementPolicy: 'random' as 'spread' })).rejects.toMatchObject({ problem: { status: 400 } });
  });

  it('never over-commits a worker while 1,000 jobs race through two schedulers', async () => {
    const ids = ['res-1', 'res-2', 'res-3', 'res-4'];
    const executors: RunningExecutor[] = [];
    // 8 slots each, but 1000 MB: at most three 300 MB jobs fit on a worker at once.
    for (const id of ids) executors.push(await stack.addExecutor(namedMock('res'), { EXECUTOR_ID: id, EXECUTOR_RESOURCES: 'memoryMb=1000', EXECUTOR_CONCURRENCY: '8' }));
    await online(ids);
    const jobs = [];
    for (let i = 0; i < 1000; i += 50) {
      jobs.push(
        ...(await Promise.all(
          Array.from({ length: 50 }, (_, k) =>
            client.submit({ backend: 'res', payload: { sleepMs: 10 + ((i + k) % 7) }, resources: { memoryMb: 300 }, queue: (i + k) % 2 ? 'res-odd' : 'res-even' }),
          ),
        )),
      );
    }

    let maxReserved = 0;
    let maxRunning = 0;
    let samples = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const { rows } = await db.query<{ worker_id: string; mb: number }>(
          `SELECT worker_id, sum((requirements -> 'resources' ->> 'memoryMb')::int)::int AS mb FROM jobs
           WHERE status IN ('CLAIMED', 'RUNNING') AND worker_id IS NOT NULL GROUP BY worker_id`);
        for (const r of rows) maxReserved = Math.max(maxReserved, r.mb);
        for (const e of executors) maxRunning = Math.max(maxRunning, e.runtime.runningAttempts);
        samples++;
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await waitFor(
      'all 1,000 jobs to complete',
      async () => {
        const { rows: [r] } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM jobs WHERE backend = 'res' AND status = 'COMPLETED'`);
        return r!.n === 1000;
      },
      170_000,
      200,
    );
    sampling = false;
    await sampler;

    expect(samples).toBeGreaterThan(50);
    expect(maxReserved).toBeGreaterThan(0);
    expect(maxReserved).toBeLessThanOrEqual(900);
    expect(maxRunning).toBeLessThanOrEqual(3);
    // Every job ran exactly once, on a worker of the fleet.
    const { rows } = await db.query<{ worker_id: string; n: number }>(
      `SELECT worker_id, count(*)::int AS n FROM job_attempts WHERE job_id = ANY($1::uuid[]) GROUP BY worker_id`, [jobs.map((j) => j.id)]);
    expect(rows.reduce((s, r) => s + r.n, 0)).toBe(1000);
    expect(rows.every((r) => ids.includes(r.worker_id))).toBe(true);
    // What a worker holds is visible, and released at the end of each attempt.
    const w = await client.worker('res-1');
    expect(w.capacity).toMatchObject({ memoryMb: 1000, slots: 8 });
    expect(w.used).toEqual({ slots: 0 });
  }, 180_000);

  it('fails a job that no worker took before its placement deadline, with the reason', async () => {
    const job = await client.submit({ backend: 'fit', payload: {}, constraints: ['gpu=true'], resources: { gpu: 8 }, placementDeadlineMs: 2_000 });
    await waitFor('the wait reason', async () => (await client.get(job.id)).waitReason);
    const failed = await client.waitForTerminal(job.id, { timeoutMs: 15_000 });
    expect(failed).toMatchObject({ status: 'FAILED', errorCode: 'placement_timeout' });
    expect(failed.error).toContain('no worker with label gpu=true and 1 slot, 8 gpu free');
  });

  it('drains a worker with placed work: it finishes, exits, and jobs naming it wait with the reason', async () => {
    let stopped = false;
    const w = await startExecutor(namedMock('drn'), { ...env, EXECUTOR_ID: 'drn-1', EXECUTOR_RESOURCES: 'memoryMb=1000' }, 'test', () => (stopped = true));
    stack.executors.push(w);
    await online(['drn-1']);
    const running = await client.submit({ backend: 'drn', payload: { sleepMs: 800, output: 'done' }, worker: 'drn-1' });
    await waitFor('the placed job to run', async () => (await client.get(running.id)).status === 'RUNNING');
    await client.drainWorker('drn-1');
    expect(await client.waitForTerminal(running.id)).toMatchObject({ status: 'COMPLETED', result: 'done', workerId: 'drn-1' });
    await waitFor('the drained executor to exit', () => stopped, 15_000);
    const later = await client.submit({ backend: 'drn', payload: {}, worker: 'drn-1' });
    await waitFor('the reason', async () => (await client.get(later.id)).waitReason === 'no online worker for backend "drn"');
    await client.cancel(later.id);
  });

  it('fails an attempt placed on a worker that left before starting it, and places the job again', async () => {
    await worker('ghostly', 'ghostly-1', 'memoryMb=10');
    await online(['ghostly-1']);
    const job = await client.submit({ backend: 'ghostly', payload: {}, worker: 'ghost', resources: { memoryMb: 1 }, backoff: { type: 'fixed', baseMs: 10_000 } });
    await waitFor('the job to wait for its worker', async () => (await client.get(job.id)).waitReason === 'worker "ghost" is not online');
    // As if the ghost had been online when the job was placed, and vanished before pulling it.
    await db.query(`INSERT INTO workers (id, backend, host, version, concurrency, status) VALUES ('ghost', 'ghostly', 'h', 'v', 1, 'LOST')`);
    await db.query(
      `WITH j AS (UPDATE jobs SET status = 'CLAIMED', attempt = 1, worker_id = 'ghost', dispatched_at = now(), lease_expires_at = now() - interval '1 second'
                  WHERE id = $1 RETURNING id, queue)
       INSERT INTO job_attempts (job_id, attempt, queue) SELECT id, 1, queue FROM j`,
      [job.id],
    );
    const retried = await waitFor('the attempt to fail as worker_lost', async () => {
      const j = await client.get(job.id);
      return j.status === 'SCHEDULED' ? j : undefined;
    });
    expect(retried.attempts).toEqual([expect.objectContaining({ attempt: 1, outcome: 'WORKER_LOST', errorCode: 'worker_lost', workerId: 'ghost' })]);
    await client.cancel(job.id);
  });

  it('checks the payload with an executor of the backend at submit: a bad one is a 400 naming the field', async () => {
    const err = await client.submit({ backend: 'fit', payload: { sleepMs: 'soon' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BlixardApiError);
    const problem = (err as BlixardApiError).problem as { status: number; errors: { field: string; message: string }[] };
    expect(problem.status).toBe(400);
    expect(problem.errors).toEqual([{ field: 'payload', message: expect.stringContaining('sleepMs') }]);
    // Requirements are checked too, each field named.
    const bad = await client.submit({ backend: 'fit', payload: {}, constraints: ['zone in a'], resources: { memoryMb: -1 } }).catch((e: unknown) => e);
    expect(((bad as BlixardApiError).problem as { errors: { field: string }[] }).errors.map((e) => e.field).sort()).toEqual(['constraints[0]', 'resources.memoryMb']);
  });
});
