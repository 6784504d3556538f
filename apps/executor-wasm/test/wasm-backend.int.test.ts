import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AbortReason, ExecutionContext, ExecutionFailure, ExecutionJob, ExecutionResult } from '@blixard/executor-sdk';
import { waitFor } from '@blixard/testing';
import { WasmPayload } from '../src/payload';
import { WasmBackend } from '../src/wasm-backend';
import { compileFixture, compileWat } from './wat';

// The backend on its own, with real worker threads and files: every WASI feature and limit.
describe('the wasm backend runs WASI modules', () => {
  let root: string;
  let moduleDir: string;
  let scratchDir: string;
  let backend: WasmBackend;
  const modules: Record<string, Buffer> = {};
  let attempt = 0;

  beforeAll(async () => {
    root = mkdtempSync(path.join(tmpdir(), 'blixard-wasm-test-'));
    moduleDir = path.join(root, 'modules');
    scratchDir = path.join(root, 'scratch');
    mkdirSync(moduleDir);
    for (const name of ['hello', 'fail', 'echo', 'scratch', 'loop', 'grow', 'big-memory', 'result']) {
      modules[name] = await compileFixture(name);
      writeFileSync(path.join(moduleDir, `${name}.wasm`), modules[name]!);
    }
    writeFileSync(path.join(root, 'outside.wasm'), modules.hello!);
    symlinkSync(path.join(root, 'outside.wasm'), path.join(moduleDir, 'escape.wasm'));
    backend = new WasmBackend({ moduleDir, scratchDir, memoryLimitMb: 8, outputPollMs: 20 });
  });

  afterAll(() => rmSync(root, { recursive: true, force: true }));

  function inline(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
    return { module: { base64: modules[name]!.toString('base64') }, ...extra };
  }

  function run(payload: unknown, options: { controller?: AbortController; outputTailBytes?: number } = {}): Promise<ExecutionResult> {
    const validated = backend.validate(payload);
    const job: ExecutionJob<WasmPayload> = {
      id: `job-${++attempt}`, attempt: 1, maxAttempts: 1, queue: 'default', labels: {}, timeoutMs: null, payload: validated, parents: [],
    };
    const ctx: ExecutionContext = {
      workerId: 'test-worker', attempt: 1, signal: (options.controller ?? new AbortController()).signal, outputTailBytes: options.outputTailBytes ?? 65_536, killGraceMs: 100,
    };
    return backend.execute(job, ctx);
  }

  async function failure(promise: Promise<unknown>): Promise<ExecutionFailure> {
    const err = await promise.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ExecutionFailure);
    return err as ExecutionFailure;
  }

  it('completes a module that prints to stdout with exit code 0 and its stdout tail', async () => {
    await expect(run(inline('hello'))).resolves.toEqual({ exitCode: 0, output: null, stdoutTail: 'hello from wasm\n', stderrTail: '' });
  });

  it('fails a module that exits non-zero with its exit code and both tails', async () => {
    const f = await failure(run(inline('fail')));
    expect(f).toMatchObject({ code: 'exit_code', message: 'exited with code 3', exitCode: 3, retryable: true, stdoutTail: 'partial\n', stderrTail: 'something broke\n' });
  });

  it('gives the module its args after argv[0], exactly its env plus BLIXARD_*, and stdin', async () => {
    const result = await run({ module: { path: 'echo.wasm' }, args: ['one', 'two words'], env: { GREETING: 'hi there' }, stdin: 'line 1\nline 2\n' });
    expect(result.stdoutTail).toBe(
      ['echo.wasm', 'one', 'two words', '--', 'BLIXARD_JOB_ID=job-' + attempt, 'BLIXARD_ATTEMPT=1', 'BLIXARD_SCRATCH_DIR=/scratch', 'GREETING=hi there', '--', 'line 1', 'line 2', ''].join('\n'),
    );
    expect(result.stderrTail).toBe('to stderr\n');
  });

  it('keeps only the last outputTailBytes of stdout and marks the truncation', async () => {
    const stdin = 'x'.repeat(5000) + 'THE END\n';
    const result = await run(inline('echo', { stdin }), { outputTailBytes: 100 });
    expect(result.stdoutTail).toMatch(/^\[\.\.\. \d+ earlier bytes truncated \.\.\.\]\nx+THE END\n$/);
    expect(Buffer.byteLength(result.stdoutTail!.split('\n').slice(1).join('\n'))).toBe(100);
  });

  it('preopens a scratch directory at /scratch that the module can write and read, and removes it afterwards', async () => {
    const result = await run(inline('scratch'));
    expect(result.stdoutTail).toBe('scratch note\n');
    expect(readdirSync(scratchDir)).toEqual([]);
  });

  it('shows the scratch file on the host only while the attempt runs, and a sleeping module stops at once on cancel', async () => {
    const controller = new AbortController();
    const running = run(inline('scratch', { args: ['hold'] }), { controller });
    const note = await waitFor('the module to write its note', () => {
      const dirs = readdirSync(scratchDir);
      const file = dirs.length === 1 ? path.join(scratchDir, dirs[0]!, 'scratch', 'note.txt') : '';
      return file && existsSync(file) && readFileSync(file, 'utf8') === 'scratch note\n' ? file : undefined;
    }, 10_000, 10);
    expect(backend.liveWorkers).toBe(1);
    const abortedAt = Date.now();
    controller.abort('cancelled' satisfies AbortReason);
    const f = await failure(running);
    expect(Date.now() - abortedAt).toBeLessThan(1_000);
    expect(f).toMatchObject({ code: 'aborted', stdoutTail: 'scratch note\n' });
    expect(existsSync(note)).toBe(false);
    expect(readdirSync(scratchDir)).toEqual([]);
    expect(backend.liveWorkers).toBe(0);
  });

  it('terminates a module spinning in an infinite loop when the attempt times out, and keeps working', async () => {
    const controller = new AbortController();
    const running = run(inline('loop'), { controller });
    await waitFor('the worker thread to start', () => backend.liveWorkers === 1, 10_000, 10);
    setTimeout(() => controller.abort('timed_out' satisfies AbortReason), 200);
    const f = await failure(running);
    expect(f.code).toBe('aborted');
    expect(backend.liveWorkers).toBe(0);
    await expect(run(inline('hello'))).resolves.toMatchObject({ exitCode: 0, stdoutTail: 'hello from wasm\n' });
  });

  it('caps linear memory: a module growing past its limit fails with memory_limit_exceeded', async () => {
    const f = await failure(run(inline('grow', { memoryLimitMb: 2 })));
    expect(f.code).toBe('memory_limit_exceeded');
    expect(f.retryable).toBe(false);
    expect(f.message).toMatch(/^the module reached its memory limit of 2 MiB \(32 pages\) \(memory\.grow refused\) and then trapped: unreachable/);
  });

  it('refuses a module whose initial memory is over the limit before running it', async () => {
    const f = await failure(run(inline('big-memory')));
    expect(f).toMatchObject({ code: 'memory_limit_exceeded', retryable: false });
    expect(f.message).toBe('the module declares 12.5 MiB (200 pages) of initial memory, over its memory limit of 8 MiB (128 pages)');
    expect(readdirSync(scratchDir)).toEqual([]);
  });

  it('returns the JSON the module left in /scratch/result.json as the output', async () => {
    await expect(run(inline('result'))).resolves.toMatchObject({ exitCode: 0, output: { answer: 42, from: 'wasm' } });
  });

  it('reads modules only from inside the module directory, symlinks included', async () => {
    await expect(run({ module: { path: 'hello.wasm' } })).resolves.toMatchObject({ stdoutTail: 'hello from wasm\n' });
    expect(await failure(run({ module: { path: 'escape.wasm' } }))).toMatchObject({ code: 'invalid_module', retryable: false, message: 'module.path "escape.wasm" leads outside the module directory' });
    expect(await failure(run({ module: { path: 'missing.wasm' } }))).toMatchObject({ code: 'module_not_found', retryable: false });
  });

  it('fails a module that is not valid WebAssembly, or not a WASI command, without retrying', async () => {
    const garbage = Buffer.concat([modules.hello!.subarray(0, 8), Buffer.from([0x01, 0xff, 0xff])]).toString('base64');
    expect(await failure(run({ module: { base64: garbage } }))).toMatchObject({ code: 'invalid_module', retryable: false });
    const noStart = await compileWat('(module (memory (export "memory") 1))');
    const f = await failure(run({ module: { base64: noStart.toString('base64') } }));
    expect(f).toMatchObject({ code: 'invalid_module', retryable: false });
    expect(f.message).toContain('_start');
  });
});
