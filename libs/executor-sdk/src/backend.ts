import type { JsonValue } from '@blixard/domain';
import type { Logger } from '@blixard/telemetry';

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
  /**
   * Optional, for backends whose work outlives the executor process (a Kubernetes Job, a
   * container): the attempts an earlier process with this worker id left running. The runtime
   * adopts each one before its first heartbeat (so its run lease never lapses), enforces what is
   * left of its timeout, and reports its outcome as if it had started it. Throwing stops the start.
   */
  recover?(ctx: RecoveryContext): Promise<RecoveredAttempt[]>;
}

export interface RecoveryContext {
  /** The worker id this process runs as (EXECUTOR_ID): the earlier process's, after a restart. */
  readonly workerId: string;
  /** The executor's logger, for the backend to keep. */
  readonly logger: Logger;
}

/** An attempt found still under way (or finished but unreported) after the executor restarted. */
export interface RecoveredAttempt {
  jobId: string;
  attempt: number;
  /** When the attempt started: its duration and the rest of its timeout count from here. */
  startedAt: Date;
  timeoutMs: number | null;
  /** Follows the attempt to its end, as `execute` would (same `ctx` contract). */
  resume(ctx: ExecutionContext): Promise<ExecutionResult>;
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
  /** What the job reserved on this worker (`resources` at submit: cpuMillis, memoryMb, ...); enforce it as limits where you can. */
  resources: Record<string, number>;
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
  /**
   * Streams one line of the attempt's output (without its newline) to live followers
   * (`GET /v1/jobs/:id/logs?follow=true`) and to storage, in order, bounded by
   * LOG_MAX_BYTES_PER_ATTEMPT. Call it as lines arrive (`lineSplitter` turns chunks into lines).
   * The runtime always provides it; it is optional so that a context made by hand (a test) need
   * not, and a backend calls it as `ctx.log?.(stream, line)`. It never throws and never blocks.
   */
  log?(stream: 'stdout' | 'stderr', line: string): void;
  /**
   * Reports how far the attempt is (0..1) with an optional note: stored on the job and published
   * as `dev.blixard.job.progress`. Sent at most every PROGRESS_MIN_INTERVAL_MS; the latest wins.
   * Throws a RangeError for a fraction outside 0..1. Optional for the same reason as `log`.
   */
  progress?(fraction: number, note?: string): void;
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
