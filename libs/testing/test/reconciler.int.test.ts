import { BlixardClient } from '@blixard/client';
import { ExecutionBackend, ExecutionResult } from '@blixard/executor-sdk';
import { connectBus, Bus, encodeJson } from '@blixard/messaging';
import { createLogger } from '@blixard/telemetry';
import { createTestInfra, TestInfra, waitFor } from '../src';
import { InProcessStack, MockBackend, RunningScheduler, startStack } from './stack';

/** A backend that ignores its abort signal: only the scheduler's deadline can stop its attempts. */
class StubbornBackend implements ExecutionBackend<{ ms: number }> {
  readonly name = 'stubborn';
  capabilities() {
    return {};
  }
  validate(payload: unknown) {
    return payload as { ms: number };
  }
  async execute(job: { payload: { ms: number } }): Promise<ExecutionResult> {
    await new Promise((r) => setTimeout(r, job.payload.ms));
    return { output: 'finished anyway' };
  }
}

class LostMockBackend extends MockBackend {
  override readonly name = 'lostmock';
}

describe('the reconciler recovers what executors and NATS lose', () => {
  let infra: TestInfra;
  let stack: InProcessStack;
  let scheduler: RunningScheduler;
  let client: BlixardClient;
  let bus: Bus;
  let env: Record<string, string>;

  beforeAll(async () => {
    infra = await createTestInfra('reconciler');
    env = infra.env({ CLAIM_LEASE_MS: '1000', TIMEOUT_GRACE_MS: '200', RECONCILE_INTERVAL_MS: '100', IDEMPOTENCY_WINDOW_MS: '1500' });
    stack = await startStack(env, { executors: [new StubbornBackend()] });
    [scheduler] = stack.schedulers as [RunningScheduler];
    client = stack.client;
    bus = await connectBus({ servers: [infra.natsUrl], prefix: infra.prefix, name: 'test', logger: createLogger({ service: 'test', level: 'silent' }) });
  });

  afterAll(async () => {
    await stack?.stop();
    await bus?.close();
    await infra?.cleanup();
  });

  const reconcilerActions = async (action: string) =>
    (await scheduler.scheduler.counters.reconciler.get()).values.filter((v) => v.labels.action === action).reduce((s, v) => s + v.value, 0);

  it('times out an attempt at its deadline when the executor does not', async () => {
    const t0 = Date.now();
    const job = await client.submit({ backend: 'stubborn', payload: { ms: 4_000 }, timeoutMs: 300, maxAttempts: 1 });
    const done = await client.waitForTerminal(job.id, { timeoutMs: 10_000, intervalMs: 20 });
    expect(done).toMatchObject({ status: 'FAILED', errorCode: 'timed_out', error: 'the attempt outlived its timeout and its executor did not report' });
    expect(done.attempts![0]).toMatchObject({ outcome: 'TIMED_OUT' });
    expect(Date.parse(done.finishedAt!) - t0).toBeLessThan(2_000); // long before the backend returns
    expect(await reconcilerActions('timed_out')).toBeGreaterThanOrEqual(1);
  });

  it('dispatches an attempt again when NATS lost its dispatch', async () => {
    // A worker announces capacity for `lostmock` but never pulls: the dispatch waits in the
    // stream, where NATS "loses" it. Then a real executor comes.
    const heartbeat = { workerId: 'phantom-1', backend: 'lostmock', host: 'nowhere', version: 'test', labels: {}, capacity: { slots: 1 }, concurrency: 1, status: 'ONLINE', running: [], at: new Date().toISOString() };
    await bus.nc.request(bus.subjects.heartbeat, encodeJson(heartbeat), { timeout: 5_000 });
    const job = await client.submit({ backend: 'lostmock', payload: { output: 'recovered' } });
    await waitFor('the job to be claimed', async () => (await client.get(job.id)).status === 'CLAIMED');
    await bus.jsm.streams.purge(bus.subjects.streams.dispatch, { filter: bus.subjects.dispatch('lostmock') });
    await stack.addExecutor(new LostMockBackend());
    const done = await client.waitForTerminal(job.id, { timeoutMs: 15_000 });
    expect(done).toMatchObject({ status: 'COMPLETED', result: 'recovered', attempt: 1 });
    expect(await reconcilerActions('redispatched')).toBeGreaterThanOrEqual(1);
  });

  it('lets an idempotency key be used again once its window has passed', async () => {
    const first = await client.submit({ backend: 'mock', payload: 1, allowUnknownBackend: true }, { idempotencyKey: 'nightly-2026-11-27' });
    const replay = await client.submit({ backend: 'mock', payload: 1, allowUnknownBackend: true }, { idempotencyKey: 'nightly-2026-11-27' });
    expect(replay.id).toBe(first.id);
    await new Promise((r) => setTimeout(r, 1_700));
    const fresh = await client.submit({ backend: 'mock', payload: 2, allowUnknownBackend: true }, { idempotencyKey: 'nightly-2026-11-27' });
    expect(fresh.id).not.toBe(first.id);
    expect((await client.get(first.id)).idempotencyKey).toBeNull();
  });
});
