import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BlixardApiError, BlixardClient } from '@blixard/client';
import { createTestInfra, TestInfra, waitFor } from '@blixard/testing';
import { InProcessStack, RunningExecutor, startStack } from '../../../libs/testing/test/stack';
import { WasmBackend } from '../src/wasm-backend';
import { compileFixture } from './wat';

// Real jobs through the real stack: gateway → scheduler → NATS → the wasm executor → results.
describe('wasm jobs travel submit → dispatch → run → result', () => {
  let infra: TestInfra;
  let stack: InProcessStack;
  let executor: RunningExecutor;
  let client: BlixardClient;
  let backend: WasmBackend;
  let root: string;
  let scratchDir: string;
  const base64: Record<string, string> = {};

  beforeAll(async () => {
    root = mkdtempSync(path.join(tmpdir(), 'blixard-wasm-jobs-'));
    const moduleDir = path.join(root, 'modules');
    scratchDir = path.join(root, 'scratch');
    mkdirSync(moduleDir);
    for (const name of ['hello', 'fail', 'echo', 'loop', 'grow', 'result']) {
      const bytes = await compileFixture(name);
      writeFileSync(path.join(moduleDir, `${name}.wasm`), bytes);
      base64[name] = bytes.toString('base64');
    }
    backend = new WasmBackend({ moduleDir, scratchDir, memoryLimitMb: 8, maxInlineModuleBytes: 4096 });
    infra = await createTestInfra('wasm_jobs');
    stack = await startStack(infra.env({ EXECUTOR_CONCURRENCY: '2', DRAIN_TIMEOUT_MS: '1000' }), { executors: [backend] });
    executor = stack.executors[0]!;
    client = stack.client;
  });

  afterAll(async () => {
    await stack?.stop();
    await infra?.cleanup();
    rmSync(root, { recursive: true, force: true });
  });

  it('runs an inline module to COMPLETED with exit code 0 and its stdout on the job and the attempt', async () => {
    const submitted = await client.submit({ backend: 'wasm', payload: { module: { base64: base64.hello } } });
    const job = await client.waitForTerminal(submitted.id);
    expect(job).toMatchObject({ status: 'COMPLETED', exitCode: 0, stdoutTail: 'hello from wasm\n', stderrTail: '' });
    expect(job.attempts).toEqual([expect.objectContaining({ attempt: 1, outcome: 'COMPLETED', exitCode: 0, workerId: executor.runtime.workerId })]);
  });

  it('runs a module from the module directory with args, env and stdin', async () => {
    const submitted = await client.submit({
      backend: 'wasm',
      payload: { module: { path: 'echo.wasm' }, args: ['--name', 'blixard'], env: { WHO: 'wasm' }, stdin: 'from stdin\n' },
    });
    const job = await client.waitForTerminal(submitted.id);
    expect(job.status).toBe('COMPLETED');
    expect(job.stdoutTail).toBe(
      `echo.wasm\n--name\nblixard\n--\nBLIXARD_JOB_ID=${job.id}\nBLIXARD_ATTEMPT=1\nBLIXARD_SCRATCH_DIR=/scratch\nWHO=wasm\n--\nfrom stdin\n`,
    );
    expect(job.stderrTail).toBe('to stderr\n');
  });

  it('ends a module that exits non-zero FAILED with its exit code and stderr', async () => {
    const submitted = await client.submit({ backend: 'wasm', payload: { module: { base64: base64.fail } }, maxAttempts: 1 });
    const job = await client.waitForTerminal(submitted.id);
    expect(job).toMatchObject({ status: 'FAILED', exitCode: 3, errorCode: 'exit_code', error: 'exited with code 3', stderrTail: 'something broke\n' });
    expect(job.attempts).toEqual([expect.objectContaining({ outcome: 'FAILED', exitCode: 3, stdoutTail: 'partial\n' })]);
  });

  it('stores the JSON a module leaves in /scratch/result.json as the job result', async () => {
    const submitted = await client.submit({ backend: 'wasm', payload: { module: { path: 'result.wasm' } } });
    const job = await client.waitForTerminal(submitted.id);
    expect(job).toMatchObject({ status: 'COMPLETED', result: { answer: 42, from: 'wasm' } });
  });

  it('times out an infinite loop: the attempt is TIMED_OUT, its thread terminated, and the executor runs the next job', async () => {
    const submitted = await client.submit({ backend: 'wasm', payload: { module: { base64: base64.loop } }, timeoutMs: 500, maxAttempts: 1 });
    const job = await client.waitForTerminal(submitted.id);
    expect(job).toMatchObject({ status: 'FAILED', errorCode: 'timed_out' });
    expect(job.attempts).toEqual([expect.objectContaining({ outcome: 'TIMED_OUT', errorCode: 'timed_out' })]);
    await waitFor('the worker thread to be gone', () => backend.liveWorkers === 0, 5_000);
    expect(executor.runtime.runningAttempts).toBe(0);
    const next = await client.waitForTerminal((await client.submit({ backend: 'wasm', payload: { module: { base64: base64.hello } } })).id);
    expect(next.status).toBe('COMPLETED');
  });

  it('cancels a running loop: the job is CANCELLED, the thread terminated and the scratch directory removed', async () => {
    const submitted = await client.submit({ backend: 'wasm', payload: { module: { path: 'loop.wasm' } } });
    await waitFor('the job to run', async () => (await client.get(submitted.id)).status === 'RUNNING');
    await waitFor('the worker thread to start', () => backend.liveWorkers === 1, 5_000);
    await client.cancel(submitted.id);
    const job = await client.waitForTerminal(submitted.id);
    expect(job.status).toBe('CANCELLED');
    await waitFor('the worker thread to be gone', () => backend.liveWorkers === 0, 5_000);
    await waitFor('the scratch directory to be removed', () => readdirSync(scratchDir).length === 0, 5_000);
  });

  it('fails a module that outgrows its memory limit with memory_limit_exceeded, without retrying it', async () => {
    const submitted = await client.submit({ backend: 'wasm', payload: { module: { base64: base64.grow }, memoryLimitMb: 2 }, maxAttempts: 3 });
    const job = await client.waitForTerminal(submitted.id);
    expect(job).toMatchObject({ status: 'FAILED', errorCode: 'memory_limit_exceeded' });
    expect(job.error).toContain('reached its memory limit of 2 MiB');
    expect(job.attempts).toHaveLength(1);
  });

  it('refuses an inline module over the size cap with an error naming module.base64, never running it', async () => {
    const oversize = Buffer.concat([Buffer.from(base64.hello!, 'base64'), Buffer.alloc(8192)]).toString('base64');
    const submit = client.submit({ backend: 'wasm', payload: { module: { base64: oversize } }, maxAttempts: 3 });
    // At submit (400) once the gateway asks the backend to validate; otherwise at dispatch.
    const outcome = await submit.then(
      async (s) => client.waitForTerminal(s.id),
      (err: unknown) => err,
    );
    if (outcome instanceof BlixardApiError) {
      expect(outcome.problem.status).toBe(400);
      expect(outcome.message).toContain('module.base64');
    } else {
      expect(outcome).toMatchObject({ status: 'FAILED', errorCode: 'invalid_payload' });
      expect((outcome as { error: string }).error).toContain('module.base64: the module is 8336 bytes');
      expect((outcome as { attempts: unknown[] }).attempts).toHaveLength(1);
    }
  });

  it('lists the executor as a wasm worker with its slots', async () => {
    const worker = await waitFor('the executor to register', async () => (await client.workers()).find((w) => w.id === executor.runtime.workerId));
    expect(worker).toMatchObject({ backend: 'wasm', status: 'ONLINE', concurrency: 2, capacity: { slots: 2 } });
  });

  // Last: it stops the executor.
  it('drains: a module still running past DRAIN_TIMEOUT_MS is terminated and its job handed back for retry', async () => {
    const submitted = await client.submit({ backend: 'wasm', payload: { module: { base64: base64.loop } }, maxAttempts: 3 });
    await waitFor('the job to run', async () => (await client.get(submitted.id)).status === 'RUNNING');
    await executor.stop();
    expect(backend.liveWorkers).toBe(0);
    expect(readdirSync(scratchDir)).toEqual([]);
    const job = await waitFor('the attempt to be handed back', async () => {
      const j = await client.get(submitted.id);
      return j.attempts?.[0]?.errorCode === 'worker_shutdown' ? j : undefined;
    });
    expect(['SCHEDULED', 'PENDING']).toContain(job.status);
    const worker = (await client.workers()).find((w) => w.id === executor.runtime.workerId);
    expect(worker?.status).toBe('OFFLINE');
  });
});
