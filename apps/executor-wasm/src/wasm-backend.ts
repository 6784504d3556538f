import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { loadConfig } from '@blixard/config';
import type { JsonValue } from '@blixard/domain';
import {
  ExecutionBackend,
  ExecutionContext,
  ExecutionFailure,
  ExecutionJob,
  ExecutionResult,
  MAX_OUTPUT_BYTES,
} from '@blixard/executor-sdk';
import { capModuleMemory, formatPages, MemoryLimitError, ModuleFormatError, WASM_PAGE_BYTES } from './module-memory';
import { OutputFile } from './output-file';
import { parseWasmPayload, WasmPayload, WasmPayloadLimits } from './payload';
import { CompiledModule, webAssembly } from './wasm-api';
import { WORKER_SOURCE, WorkerInput, WorkerOutcome } from './worker-source';

export interface WasmBackendOptions {
  /** Directory `module.path` is resolved in; null or '' refuses module paths. */
  moduleDir?: string | null;
  maxInlineModuleBytes?: number;
  memoryLimitMb?: number;
  /** Parent of each attempt's directory; default: the OS temp directory. */
  scratchDir?: string | null;
  /** How often a running module's stdout/stderr files are read back. */
  outputPollMs?: number;
}

/** Where the module finds its scratch directory, and the file it may leave its result in. */
export const GUEST_SCRATCH_DIR = '/scratch';
export const RESULT_FILE = 'result.json';
const PARENTS_FILE = '.blixard-parents.json';

/** The worker's own JavaScript heap (the WASI glue); linear memory is capped in the module. */
const WORKER_RESOURCE_LIMITS = { maxOldGenerationSizeMb: 48, maxYoungGenerationSizeMb: 8, stackSizeMb: 4 };

const WASM_CONFIG_KEYS = ['wasmModuleDir', 'wasmMaxInlineModuleBytes', 'wasmMemoryLimitMb', 'wasmScratchDir'] as const;

/**
 * The `wasm` backend: each attempt runs a WASI preview1 command (`node:wasi`) in a fresh instance
 * inside its own worker thread. Before it runs, the module's memory maximum is lowered to the
 * memory limit (see module-memory.ts); the worker gets a scratch directory preopened at
 * `/scratch`, stdin/stdout/stderr as files in the attempt's directory, and is terminated when
 * `ctx.signal` aborts (timeout, cancel, drain). The attempt directory is removed afterwards.
 *
 * Outcome: exit code 0 (`_start` returns or `proc_exit(0)`) completes the attempt, with
 * `/scratch/result.json` (if the module wrote one) as its output; any other exit code, a trap, or
 * hitting the memory limit fails it.
 */
export class WasmBackend implements ExecutionBackend<WasmPayload> {
  readonly name = 'wasm';
  private readonly limits: WasmPayloadLimits;
  private readonly scratchDir: string;
  private readonly outputPollMs: number;
  private readonly workers = new Set<Worker>();

  constructor(options: WasmBackendOptions = {}) {
    this.limits = {
      moduleDir: options.moduleDir ? path.resolve(options.moduleDir) : null,
      maxInlineModuleBytes: options.maxInlineModuleBytes ?? 1_048_576,
      memoryLimitMb: options.memoryLimitMb ?? 256,
    };
    this.scratchDir = path.resolve(options.scratchDir || tmpdir());
    this.outputPollMs = options.outputPollMs ?? 200;
  }

  /** The backend as configured by WASM_* variables (validated; throws ConfigError). */
  static fromEnv(env: Record<string, string | undefined> = process.env): WasmBackend {
    const c = loadConfig(WASM_CONFIG_KEYS, env);
    return new WasmBackend({
      moduleDir: c.wasmModuleDir,
      maxInlineModuleBytes: c.wasmMaxInlineModuleBytes,
      memoryLimitMb: c.wasmMemoryLimitMb,
      scratchDir: c.wasmScratchDir,
    });
  }

  /** Worker threads alive now (each attempt's ends when its module does or is terminated). */
  get liveWorkers(): number {
    return this.workers.size;
  }

  /**
   * No `resources`: capacity is what the whole executor offers to jobs that state `resources`
   * (EXECUTOR_RESOURCES, e.g. memoryMb = EXECUTOR_CONCURRENCY x WASM_MEMORY_LIMIT_MB), not the
   * limit of one module.
   */
  capabilities() {
    return {
      features: ['wasi-preview1', 'args', 'env', 'stdin', 'scratch-dir', 'memory-limit', 'inline-module', ...(this.limits.moduleDir ? ['module-dir'] : [])],
    };
  }

  validate(payload: unknown): WasmPayload {
    return parseWasmPayload(payload, this.limits);
  }

  async execute(job: ExecutionJob<WasmPayload>, ctx: ExecutionContext): Promise<ExecutionResult> {
    const p = job.payload;
    const limitPages = (p.memoryLimitMb ?? this.limits.memoryLimitMb) * (1_048_576 / WASM_PAGE_BYTES);
    const module = await this.compile(p, limitPages);
    throwIfAborted(ctx.signal);

    // The attempt's directory: `scratch/` is all the module sees; its stdio files sit beside it.
    await fs.mkdir(this.scratchDir, { recursive: true });
    const attemptDir = await fs.mkdtemp(path.join(this.scratchDir, `blixard-wasm-${job.id}-${job.attempt}-`));
    const scratch = path.join(attemptDir, 'scratch');
    const files: { stdin?: fs.FileHandle; stdout?: OutputFile; stderr?: OutputFile } = {};
    let worker: Worker | undefined;
    try {
      await fs.mkdir(scratch);
      const env: Record<string, string> = { BLIXARD_JOB_ID: job.id, BLIXARD_ATTEMPT: String(job.attempt), BLIXARD_SCRATCH_DIR: GUEST_SCRATCH_DIR };
      if (job.parents.length > 0) {
        // A dependent reads its parents' results from a file (results can exceed what env holds).
        await fs.writeFile(path.join(scratch, PARENTS_FILE), JSON.stringify(job.parents));
        env.BLIXARD_PARENTS_FILE = path.posix.join(GUEST_SCRATCH_DIR, PARENTS_FILE);
      }
      await fs.writeFile(path.join(attemptDir, 'stdin'), p.stdin ?? '');
      files.stdin = await fs.open(path.join(attemptDir, 'stdin'), 'r');
      files.stdout = await OutputFile.open(path.join(attemptDir, 'stdout'), ctx.outputTailBytes);
      files.stderr = await OutputFile.open(path.join(attemptDir, 'stderr'), ctx.outputTailBytes);
      throwIfAborted(ctx.signal);

      const input: WorkerInput = {
        module,
        args: [p.module.path ? path.posix.basename(p.module.path) : 'module.wasm', ...p.args],
        env: { ...env, ...p.env },
        preopens: { [GUEST_SCRATCH_DIR]: scratch },
        stdin: files.stdin.fd,
        stdout: files.stdout.fd,
        stderr: files.stderr.fd,
      };
      worker = new Worker(WORKER_SOURCE, { eval: true, workerData: input, resourceLimits: WORKER_RESOURCE_LIMITS });
      const outcome = await this.supervise(worker, ctx, [files.stdout, files.stderr]);
      const tails = { stdoutTail: await files.stdout.close(), stderrTail: await files.stderr.close() };
      files.stdout = files.stderr = undefined;
      return await toResult(outcome, tails, limitPages, scratch);
    } finally {
      // The worker has exited here (supervise waits for it); only then may its fds be closed.
      await files.stdin?.close().catch(() => undefined);
      await files.stdout?.close().catch(() => undefined);
      await files.stderr?.close().catch(() => undefined);
      await fs.rm(attemptDir, { recursive: true, force: true });
    }
  }

  /** Reads, caps and compiles the module (off the event loop); errors here are the module's fault. */
  private async compile(p: WasmPayload, limitPages: number): Promise<CompiledModule> {
    const bytes = p.module.base64 !== undefined ? Buffer.from(p.module.base64, 'base64') : await this.readModuleFile(p.module.path!);
    let capped: Uint8Array;
    try {
      capped = capModuleMemory(bytes, limitPages).bytes;
    } catch (err) {
      if (err instanceof MemoryLimitError) throw new ExecutionFailure('memory_limit_exceeded', err.message, { retryable: false });
      if (err instanceof ModuleFormatError) throw new ExecutionFailure('invalid_module', `invalid module: ${err.message}`, { retryable: false });
      throw err;
    }
    try {
      return await webAssembly.compile(capped);
    } catch (err) {
      throw new ExecutionFailure('invalid_module', `invalid module: ${(err as Error).message}`, { retryable: false });
    }
  }

  /** A file under the module directory; its real path (symlinks resolved) must stay inside. */
  private async readModuleFile(relative: string): Promise<Buffer> {
    const root = this.limits.moduleDir;
    if (!root) throw new ExecutionFailure('invalid_module', 'this executor runs no modules from files (WASM_MODULE_DIR is not set)', { retryable: false });
    let real: string;
    try {
      const realRoot = await fs.realpath(root);
      real = await fs.realpath(path.resolve(realRoot, relative));
      if (real !== realRoot && !real.startsWith(realRoot + path.sep)) {
        throw new ExecutionFailure('invalid_module', `module.path ${JSON.stringify(relative)} leads outside the module directory`, { retryable: false });
      }
      return await fs.readFile(real);
    } catch (err) {
      if (err instanceof ExecutionFailure) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      const missing = code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR';
      // A missing module stays missing; other I/O errors may pass (another attempt may succeed).
      throw new ExecutionFailure(missing ? 'module_not_found' : 'module_unreadable', `cannot read module ${JSON.stringify(relative)}: ${(err as Error).message}`, { retryable: !missing });
    }
  }

  /**
   * Waits for the worker's outcome and its exit, reading output meanwhile. On abort the worker is
   * terminated (V8 stops even a tight loop or an Atomics.wait sleep) and the attempt settles once
   * the thread is gone, so no module outlives its attempt.
   */
  private supervise(worker: Worker, ctx: ExecutionContext, outputs: OutputFile[]): Promise<WorkerOutcome | { type: 'aborted' } | { type: 'crashed'; error: Error }> {
    this.workers.add(worker);
    return new Promise((resolve) => {
      let outcome: WorkerOutcome | undefined;
      let crash: Error | undefined;
      const poll = setInterval(() => void Promise.all(outputs.map((o) => o.drain())).catch(() => undefined), this.outputPollMs);
      const onAbort = () => void worker.terminate();
      if (ctx.signal.aborted) onAbort();
      else ctx.signal.addEventListener('abort', onAbort, { once: true });
      worker.on('message', (m: WorkerOutcome) => (outcome ??= m));
      worker.on('error', (err) => (crash ??= err));
      worker.once('exit', () => {
        this.workers.delete(worker);
        clearInterval(poll);
        ctx.signal.removeEventListener('abort', onAbort);
        if (outcome) resolve(outcome);
        else if (ctx.signal.aborted) resolve({ type: 'aborted' });
        else resolve({ type: 'crashed', error: crash ?? new Error('the worker thread exited without a result') });
      });
    });
  }
}

function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw new ExecutionFailure('aborted', `aborted: ${String(signal.reason)}`);
}

async function toResult(
  outcome: WorkerOutcome | { type: 'aborted' } | { type: 'crashed'; error: Error },
  tails: { stdoutTail: string; stderrTail: string },
  limitPages: number,
  scratch: string,
): Promise<ExecutionResult> {
  switch (outcome.type) {
    case 'aborted':
      // The runtime reports the reason (timed out, cancelled, shut down); this keeps the output.
      throw new ExecutionFailure('aborted', 'the module was stopped', { ...tails });
    case 'crashed': {
      const oom = (outcome.error as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY';
      if (oom) throw new ExecutionFailure('memory_limit_exceeded', `the module's worker ran out of JavaScript heap: ${outcome.error.message}`, { retryable: false, ...tails });
      throw new ExecutionFailure('worker_crashed', `the worker thread failed: ${outcome.error.message}`, { ...tails });
    }
    case 'exit':
    case 'error':
      break;
  }
  // Memory is at the limit when not one more page fits: a memory.grow was (or would be) refused.
  const atLimit = outcome.memoryBytes + WASM_PAGE_BYTES > limitPages * WASM_PAGE_BYTES;
  const atLimitPrefix = `the module reached its memory limit of ${formatPages(limitPages)} (memory.grow refused) and then`;
  if (outcome.type === 'error') {
    if (outcome.kind === 'link') throw new ExecutionFailure('invalid_module', `cannot run the module as a WASI command: ${outcome.message}`, { retryable: false, ...tails });
    if (atLimit) throw new ExecutionFailure('memory_limit_exceeded', `${atLimitPrefix} trapped: ${outcome.message}`, { retryable: false, ...tails });
    if (outcome.kind === 'trap') throw new ExecutionFailure('wasm_trap', `the module trapped: ${outcome.message}`, { ...tails });
    throw new ExecutionFailure('wasm_error', `the module failed: ${outcome.message}`, { ...tails });
  }
  if (outcome.code !== 0) {
    if (atLimit) throw new ExecutionFailure('memory_limit_exceeded', `${atLimitPrefix} exited with code ${outcome.code}`, { exitCode: outcome.code, retryable: false, ...tails });
    throw new ExecutionFailure('exit_code', `exited with code ${outcome.code}`, { exitCode: outcome.code, ...tails });
  }
  return { exitCode: 0, output: await readResultFile(scratch, tails), ...tails };
}

/** `/scratch/result.json`, if the module wrote one, is the attempt's output. */
async function readResultFile(scratch: string, tails: { stdoutTail: string; stderrTail: string }): Promise<JsonValue> {
  const file = path.join(scratch, RESULT_FILE);
  const stat = await fs.stat(file).catch(() => undefined);
  if (!stat?.isFile()) return null;
  if (stat.size > MAX_OUTPUT_BYTES) {
    throw new ExecutionFailure('output_too_large', `${GUEST_SCRATCH_DIR}/${RESULT_FILE} is ${stat.size} bytes; at most ${MAX_OUTPUT_BYTES} are stored`, { exitCode: 0, retryable: false, ...tails });
  }
  const text = await fs.readFile(file, 'utf8');
  try {
    return JSON.parse(text) as JsonValue;
  } catch (err) {
    throw new ExecutionFailure('invalid_output', `${GUEST_SCRATCH_DIR}/${RESULT_FILE} is not JSON: ${(err as Error).message}`, { exitCode: 0, retryable: false, ...tails });
  }
}
