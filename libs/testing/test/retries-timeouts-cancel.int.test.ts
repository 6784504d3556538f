import { execFileSync } from 'node:child_process';
import { BlixardClient } from '@blixard/client';
import { createTestInfra, TestInfra, waitFor } from '../src';
import { InProcessStack, MockBackend, ProcessBackend, startStack } from './stack';

/** Processes whose command line starts with `command` (to prove a killed job left nothing behind). */
function processesWith(command: string): string[] {
  const out = execFileSync('ps', ['-eo', 'args='], { encoding: 'utf8' });
  return out.split('\n').filter((args) => args.startsWith(command));
}

describe('retries, timeouts, cancellation and redrive', () => {
  let infra: TestInfra;
  let stack: InProcessStack;
  let client: BlixardClient;

  beforeAll(async () => {
    infra = await createTestInfra('retries');
    stack = await startStack(infra.env({ KILL_GRACE_MS: '300' }), { executors: [new ProcessBackend(), new MockBackend()] });
    client = stack.client;
  });

  afterAll(async () => {
    await stack?.stop();
    await infra?.cleanup();
  });

  it('ends an always-failing job FAILED after exactly maxAttempts attempts, with growing backoff gaps', async () => {
    const job = await client.submit({
      backend: 'mock',
      payload: { fail: true, message: 'always broken' },
      maxAttempts: 4,
      backoff: { type: 'exponential', baseMs: 200, maxMs: 10_000, jitter: 0 },
    });
    const done = await client.waitForTerminal(job.id, { timeoutMs: 30_000 });
    expect(done).toMatchObject({ status: 'FAILED', attempt: 4, errorCode: 'mock_failure', error: 'always broken' });
    const attempts = done.attempts!;
    expect(attempts.map((a) => [a.attempt, a.outcome])).toEqual([[1, 'FAILED'], [2, 'FAILED'], [3, 'FAILED'], [4, 'FAILED']]);
    // The gap between one attempt's end and the next one's claim is at least its backoff.
    const gaps = attempts.slice(1).map((a, i) => Date.parse(a.claimedAt) - Date.parse(attempts[i]!.finishedAt!));
    expect(gaps[0]).toBeGreaterThanOrEqual(200);
    expect(gaps[1]).toBeGreaterThanOrEqual(400);
    expect(gaps[2]).toBeGreaterThanOrEqual(800);
    expect(gaps[1]!).toBeGreaterThan(gaps[0]!);
    expect(gaps[2]!).toBeGreaterThan(gaps[1]!);
  });

  it('fails a non-retryable error at once, whatever the budget', async () => {
    const job = await client.submit({ backend: 'mock', payload: { fail: true, retryable: false }, maxAttempts: 5 });
    const done = await client.waitForTerminal(job.id);
    expect(done.status).toBe('FAILED');
    expect(done.attempts).toHaveLength(1);
  });

  it('times out `sleep 60` with timeoutMs 500 within 2 s and leaves no process behind', async () => {
    const marker = `60.${Date.now() % 100000}`; // a unique argument to find our sleep by
    const t0 = Date.now();
    const job = await client.submit({ backend: 'process', payload: { command: ['sh', '-c', `sleep ${marker} & sleep ${marker}; wait`] }, timeoutMs: 500, maxAttempts: 1 });
    await waitFor('the sleep to start', () => processesWith(`sleep ${marker}`).length === 2, 5_000, 20);
    const done = await client.waitForTerminal(job.id, { timeoutMs: 10_000, intervalMs: 20 });
    const elapsed = Date.parse(done.finishedAt!) - t0;
    expect(done).toMatchObject({ status: 'FAILED', errorCode: 'timed_out' });
    expect(done.attempts![0]).toMatchObject({ outcome: 'TIMED_OUT', errorCode: 'timed_out' });
    expect(elapsed).toBeLessThan(2_000);
    await waitFor('every sleep of the job to be gone', () => processesWith(`sleep ${marker}`).length === 0, 3_000, 50);
  });

  it('cancels a running process job: the executor kills it and the job ends CANCELLED', async () => {
    const marker = `61.${Date.now() % 100000}`;
    const job = await client.submit({ backend: 'process', payload: { command: ['sleep', marker] } });
    await waitFor('the job to run', async () => (await client.get(job.id)).status === 'RUNNING');
    await waitFor('the sleep to start', () => processesWith(`sleep ${marker}`).length === 1, 5_000, 20);
    const cancelled = await client.cancel(job.id);
    expect(cancelled.status).toBe('CANCELLED');
    await waitFor('the process to be killed', () => processesWith(`sleep ${marker}`).length === 0, 5_000, 50);
    const after = await client.get(job.id);
    expect(after.status).toBe('CANCELLED');
    expect(after.attempts![0]).toMatchObject({ outcome: 'CANCELLED' });
  });

  it('redrives a FAILED job with a new budget, and many by filter', async () => {
    const job = await client.submit({ backend: 'mock', queue: 'redrive', payload: { fail: true, failAttempts: 1 }, maxAttempts: 1 });
    expect((await client.waitForTerminal(job.id)).status).toBe('FAILED');
    const redriven = await client.retry(job.id);
    expect(redriven).toMatchObject({ status: 'PENDING', maxAttempts: 2 });
    const done = await client.waitForTerminal(job.id);
    expect(done.status).toBe('COMPLETED');
    expect(done.attempts!.map((a) => a.outcome)).toEqual(['FAILED', 'COMPLETED']);

    const others = await Promise.all([1, 2, 3].map(() => client.submit({ backend: 'mock', queue: 'redrive-many', payload: { fail: true, failAttempts: 1 }, maxAttempts: 1 })));
    for (const o of others) expect((await client.waitForTerminal(o.id)).status).toBe('FAILED');
    const { redriven: ids } = await client.retryMany({ status: ['FAILED'], queue: 'redrive-many' });
    expect(ids.sort()).toEqual(others.map((o) => o.id).sort());
    for (const o of others) expect((await client.waitForTerminal(o.id)).status).toBe('COMPLETED');
    await expect(client.retry(job.id)).rejects.toMatchObject({ problem: { status: 409, code: 'invalid_transition' } });
  });
});
