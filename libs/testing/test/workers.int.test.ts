import { BlixardClient } from '@blixard/client';
import { createTestInfra, TestInfra, waitFor } from '../src';
import { InProcessStack, namedMock, startExecutor, startStack } from './stack';

describe('the fleet: drain and stats', () => {
  let infra: TestInfra;
  let stack: InProcessStack;
  let client: BlixardClient;
  let env: Record<string, string>;

  beforeAll(async () => {
    infra = await createTestInfra('workers');
    env = infra.env({ EXECUTOR_CONCURRENCY: '2' });
    stack = await startStack(env);
    client = stack.client;
  });

  afterAll(async () => {
    await stack?.stop();
    await infra?.cleanup();
  });

  it('drains a worker on request: it takes no new work, finishes what it runs, goes OFFLINE and stops', async () => {
    let stopped = false;
    const drainee = await startExecutor(namedMock('drainee'), env, 'test', () => (stopped = true));
    stack.executors.push(drainee);
    const id = drainee.runtime.workerId;
    await waitFor('the worker online', async () => (await client.workers()).some((w) => w.id === id && w.status === 'ONLINE'));

    const running = await client.submit({ backend: 'drainee', payload: { sleepMs: 800, output: 'finished during drain' } });
    await waitFor('the job to run', async () => (await client.get(running.id)).status === 'RUNNING');
    const answer = await fetch(`${stack.gateway.url}/v1/workers/${id}/drain`, { method: 'POST' });
    expect(answer.status).toBe(202);
    await waitFor('the worker to be DRAINING', async () => (await client.workers()).some((w) => w.id === id && w.status === 'DRAINING'), 5_000, 20);
    const late = await client.submit({ backend: 'drainee', payload: {} });

    expect(await client.waitForTerminal(running.id)).toMatchObject({ status: 'COMPLETED', result: 'finished during drain', workerId: id });
    await waitFor('the executor to stop', () => stopped, 10_000);
    await waitFor('the worker OFFLINE', async () => (await client.workers()).some((w) => w.id === id && w.status === 'OFFLINE'));
    // Work that arrives meanwhile waits for capacity; it is never failed for the lack of it.
    await new Promise((r) => setTimeout(r, 500));
    expect((await client.get(late.id)).status).toBe('PENDING');
    await expect(client.drainWorker(id)).rejects.toMatchObject({ problem: { status: 409 } });
    await expect(client.drainWorker('no-such-worker')).rejects.toMatchObject({ problem: { status: 404 } });

    // A worker that registers later picks it up.
    await stack.addExecutor(namedMock('drainee'));
    expect((await client.waitForTerminal(late.id)).status).toBe('COMPLETED');
  });

  it('counts workers and slots per backend', async () => {
    await stack.addExecutor(namedMock('counted'));
    await waitFor('the worker online', async () => (await client.workers()).some((w) => w.backend === 'counted' && w.status === 'ONLINE'));
    const stats = await client.workerStats();
    expect(stats.byBackend.counted).toEqual({ workers: { ONLINE: 1 }, slots: 2, busySlots: 0 });
    expect(stats.byBackend.drainee?.workers).toMatchObject({ OFFLINE: 1, ONLINE: 1 });
    expect(stats.totals.online).toBeGreaterThanOrEqual(2);
  });
});
