import type { JsonValue } from '@blixard/domain';

/**
 * The contract a backend implements (ARCHITECTURE.md "Executors"). A new backend is one class
 * plus a `main.ts` that calls `runExecutor`; the runtime around it does the rest (registration,
 * heartbeats, bounded concurrency, timeouts, cancellation, reports, drain).
 */
export interface ExecutionBackend<P = unknown> {
  /** The backend name jobs are submitted to (`process`, `mock`, `wasm`, ...). */
  readonly name: string;
  capabilities(): BackendCapabilities;
  /** Parses the job payload; throws PayloadError when this backend cannot run it (never retried). */
  validate(payload: unknown): P;
  /**
   * Runs one attempt. Resolve with the result, or throw ExecutionFailure. When `ctx.signal`
   * aborts (timeout, cancel, drain past its deadline) stop the work and settle promptly.
   */
  execute(job: ExecutionJob<P>, ctx: ExecutionContext): Promise<ExecutionResult>;
}

export interface BackendCapabilities {
  /** Resources one executor offers: slots (= concurrency) and optionally cpuMillis, memoryMb, gpu... */
  resources?: Record<string, number>;
  /** What the backend supports, for the registry and placement. */
  features?: string[];
}

export interface ExecutionJob<P> {
  id: string;
  attempt: number;
  maxAttempts: number;
  queue: string;
  labels: Record<string, string>;
  timeoutMs: number | null;
  payload: P;
  /** For a job with dependencies: its parents, with their status and result. */
  parents: { jobId: string; status: string; result: unknown }[];
}

/** Why the runtime aborted an attempt; `ctx.signal.reason` is one of these. */
export type AbortReason = 'timed_out' | 'cancelled' | 'worker_shutdown';

export interface ExecutionContext {
  readonly workerId: string;
  /** The attempt number: at-least-once delivery means a job should use it to stay idempotent. */
  readonly attempt: number;
  readonly signal: AbortSignal;
  /** Bytes of stdout/stderr a backend should keep (the end of the stream). */
  readonly outputTailBytes: number;
  /** How long a backend waits between a polite stop and a kill. */
  readonly killGraceMs: number;
}

export interface ExecutionResult {
  output?: JsonValue;
  exitCode?: number | null;
  stdoutTail?: string;
  stderrTail?: string;
}

/** The work failed. `retryable: false` says another attempt cannot help. */
export class ExecutionFailure extends Error {
  readonly code: string;
  readonly retryable: boolean;
  readonly exitCode: number | null;
  readonly stdoutTail?: string;
  readonly stderrTail?: string;

  constructor(
    code: string,
    message: string,
    options: { retryable?: boolean; exitCode?: number | null; stdoutTail?: string; stderrTail?: string } = {},
  ) {
    super(message);
    this.name = 'ExecutionFailure';
    this.code = code;
    this.retryable = options.retryable ?? true;
    this.exitCode = options.exitCode ?? null;
    this.stdoutTail = options.stdoutTail;
    this.stderrTail = options.stderrTail;
  }
}

/** The payload is not something this backend can run: the job fails without retries. */
export class PayloadError extends Error {
  readonly code = 'invalid_payload';
  constructor(message: string) {
    super(message);
    this.name = 'PayloadError';
  }
}

/** Resolves after `ms`, or rejects as soon as `signal` aborts. */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
