import { BlixardApiError, BlixardClient } from '@blixard/client';
import { subjects } from '@blixard/contracts';
import { closeDatabase, createPrisma, JobStore } from '@blixard/db';
import { validateSubmission } from '@blixard/domain';
import { createTestInfra, TestInfra, waitFor } from '../src';
import { InProcessStack, ProcessBackend, RunningExecutor, startStack } from './stack';

describe('a process job travels submit → dispatch → run → result', () => {
  let infra: TestInfra;
  let stack: InProcessStack;
  let executor: RunningExecutor;
  let client: BlixardClient;

  beforeAll(async () => {
    infra = await createTestInfra('submit');
    stack = await startStack(infra.env({ EXECUTOR_CONCURRENCY: '4', EXECUTOR_LABELS: 'zone=a' }), { executors: [new ProcessBackend()] });
    executor = stack.executors[0]!;
    client = stack.client;
  });

  afterAll(async () => {
    await stack?.stop();
    await infra?.cleanup();
  });

  it('runs a command to COMPLETED with exit code 0 and its stdout on the job and the attempt', async () => {
    const submitted = await client.submit({
      backend: 'process',
      payload: { command: ['sh', '-c', 'echo "hello $WHO"; cat; echo err >&2'], env: { WHO: 'blixard' }, stdin: 'from stdin' },
      labels: { team: 'core' },
    });
    expect(submitted.status).toBe('PENDING');
    expect(submitted.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);

    const job = await client.waitForTerminal(submitted.id);
    expect(job.status).toBe('COMPLETED');
    expect(job.exitCode).toBe(0);
    expect(job.stdoutTail).toBe('hello blixard\nfrom stdin');
    expect(job.stderrTail).toBe('err\n');
    expect(job.attempts).toHaveLength(1);
    expect(job.attempts![0]).toMatchObject({ attempt: 1, outcome: 'COMPLETED', exitCode: 0, workerId: executor.runtime.workerId, stdoutTail: 'hello blixard\nfrom stdin' });
    expect(job.attempts![0]!.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('ends a failing command FAILED with its exit code and stderr', async () => {
    const submitted = await client.submit({
      backend: 'process',
      payload: { command: ['sh', '-c', 'echo partial; echo "something broke" >&2; exit 3'] },
      maxAttempts: 1,
    });
    const job = await client.waitForTerminal(submitted.id);
    expect(job.status).toBe('FAILED');
    expect(job.exitCode).toBe(3);
    expect(job.errorCode).toBe('exit_code');
    expect(job.error).toBe('exited with code 3');
    expect(job.stderrTail).toBe('something broke\n');
    expect(job.attempts).toEqual([expect.objectContaining({ attempt: 1, outcome: 'FAILED', exitCode: 3, stderrTail: 'something broke\n', stdoutTail: 'partial\n' })]);
  });

  it('refuses a payload the backend cannot run at submit, naming the field', async () => {
    const err = await client.submit({ backend: 'process', payload: { command: [] }, maxAttempts: 5 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BlixardApiError);
    expect((err as BlixardApiError).problem).toMatchObject({ status: 400, errors: [{ field: 'payload', message: expect.stringContaining('command') }] });
  });

  it('fails a payload that reached the executor anyway (a cron template, an old gateway) without retrying it', async () => {
    const db = createPrisma(infra.databaseUrl, 1);
    try {
      const store = new JobStore(db, { subjects: subjects(infra.prefix), source: '/test', claimLeaseMs: 5_000, runLeaseMs: 5_000, idempotencyWindowMs: 60_000 });
      const { job: written } = await store.submit(validateSubmission({ backend: 'process', payload: { command: [] }, maxAttempts: 5 }), 'x');
      const job = await client.waitForTerminal(written.id);
      expect(job.status).toBe('FAILED');
      expect(job.errorCode).toBe('invalid_payload');
      expect(job.error).toContain('command');
      expect(job.attempts).toHaveLength(1);
    } finally {
      await closeDatabase(db);
    }
  });

  it('lists the executor as a worker with backend, status, capacity and heartbeat', async () => {
    const workers = await waitFor('the executor to register', async () => {
      const list = await client.workers();
      return list.find((w) => w.id === executor.runtime.workerId);
    });
    expect(workers).toMatchObject({ backend: 'process', status: 'ONLINE', concurrency: 4, capacity: { slots: 4 }, labels: { zone: 'a' } });
    expect(Date.now() - Date.parse(workers.lastHeartbeatAt)).toBeLessThan(5_000);
  });

  it('counts jobs by status and backend', async () => {
    const stats = await client.stats();
    expect(stats.byStatus.COMPLETED).toBeGreaterThanOrEqual(1);
    expect(stats.byBackend.process?.FAILED).toBeGreaterThanOrEqual(2);
    expect(stats.total).toBe(Object.values(stats.byStatus).reduce((a, b) => a + b, 0));
  });
});
