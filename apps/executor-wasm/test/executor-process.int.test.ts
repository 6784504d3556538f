import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BlixardClient } from '@blixard/client';
import { percentile, waitFor } from '@blixard/testing';
import { BenchStack, startBenchStack } from '../../../libs/testing/src/bench/stack';
import { compileFixture } from './wat';

// The built executor as its own process (dist/main.js, configured from WASM_* variables) beside a
// gateway, scheduler and registry with production intervals: the README's job, and the overhead
// from dispatch to start of a trivial module.
describe('executor-wasm as a process', () => {
  let stack: BenchStack;
  let client: BlixardClient;
  let root: string;

  beforeAll(async () => {
    root = mkdtempSync(path.join(tmpdir(), 'blixard-wasm-proc-'));
    mkdirSync(path.join(root, 'modules'));
    writeFileSync(path.join(root, 'modules', 'echo.wasm'), await compileFixture('echo'));
    stack = await startBenchStack('wasm_proc', {
      env: { WASM_MODULE_DIR: path.join(root, 'modules'), WASM_SCRATCH_DIR: path.join(root, 'scratch'), LOG_LEVEL: 'info' },
      executors: [{ app: 'executor-wasm', concurrency: 2, count: 1 }],
    });
    client = new BlixardClient(stack.gatewayUrl);
    await waitFor('the executor to register', async () => (await client.workers()).some((w) => w.backend === 'wasm' && w.status === 'ONLINE'));
  });

  afterAll(async () => {
    await stack?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  /** The job body of the README's copy-paste `curl -d '...'`. */
  function readmeJob(): { backend: string; payload: unknown; timeoutMs: number } {
    const readme = readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');
    const body = /curl -s localhost:8080\/v1\/jobs -H 'content-type: application\/json' -d '(\{\n {2}"backend": "wasm"[\s\S]*?\n\})'/.exec(readme);
    expect(body).not.toBeNull();
    return JSON.parse(body![1]!) as { backend: string; payload: unknown; timeoutMs: number };
  }

  it('runs the README\'s job', async () => {
    const job = await client.waitForTerminal((await client.submit(readmeJob())).id);
    expect(job).toMatchObject({ status: 'COMPLETED', exitCode: 0, stdoutTail: 'hello from wasm\n' });
  });

  it('runs a module from WASM_MODULE_DIR and leaves no scratch directory behind', async () => {
    const job = await client.waitForTerminal((await client.submit({ backend: 'wasm', payload: { module: { path: 'echo.wasm' }, args: ['x'], stdin: 'in\n' } })).id);
    expect(job.status).toBe('COMPLETED');
    expect(job.stdoutTail).toMatch(/^echo\.wasm\nx\n--\n[\s\S]*\n--\nin\n$/);
    expect(readdirSync(path.join(root, 'scratch'))).toEqual([]);
  });

  it('measures dispatch → start for a trivial module (p50 over 50 jobs), and logs no WASI warning', async () => {
    const dispatchToStart: number[] = [];
    const attemptDuration: number[] = [];
    const submitToFinish: number[] = [];
    for (let i = 0; i < 50; i++) {
      const job = await client.waitForTerminal((await client.submit(readmeJob())).id, { intervalMs: 10 });
      expect(job.status).toBe('COMPLETED');
      const attempt = job.attempts![0]!;
      dispatchToStart.push(Date.parse(attempt.startedAt!) - Date.parse(job.dispatchedAt!));
      attemptDuration.push(attempt.durationMs!);
      submitToFinish.push(Date.parse(job.finishedAt!) - Date.parse(job.createdAt));
    }
    const line = (name: string, v: number[]) => `${name}: p50 ${percentile(v, 50)} ms, p90 ${percentile(v, 90)} ms, max ${Math.max(...v)} ms`;
    console.log(
      [
        'wasm backend, trivial module (README job), 50 sequential jobs, services as processes:',
        line('dispatch → start (attempt startedAt - job dispatchedAt)', dispatchToStart),
        line('attempt (worker thread, instantiate, run, teardown)', attemptDuration),
        line('submit → finished', submitToFinish),
      ].join('\n  '),
    );
    expect(Math.min(...dispatchToStart)).toBeGreaterThanOrEqual(0);

    const logDir = path.join(tmpdir(), 'blixard-test-logs');
    const logs = readdirSync(logDir).filter((f) => f.startsWith(`${stack.infra.prefix}-executor-wasm-`));
    expect(logs).toHaveLength(1);
    const log = readFileSync(path.join(logDir, logs[0]!), 'utf8');
    expect(log).toContain('executor started');
    expect(log).not.toMatch(/ExperimentalWarning|WASI is an experimental/);
  });
});
