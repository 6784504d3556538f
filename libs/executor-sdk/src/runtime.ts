import {
  attemptKey,
  CompletedReport,
  FailedReport,
  controlMessageSchema,
  dispatchMessageSchema,
  DispatchMessage,
  FailureReason,
  HeartbeatMessage,
  ReportMessage,
} from '@blixard/contracts';
import { Bus, decodeJson, encodeJson, ensurePullConsumer, ensureStreams, JsMsg, PullLoop, sleep, Subscription } from '@blixard/messaging';
import type { Logger, Metrics } from '@blixard/telemetry';
import { AbortReason, ExecutionBackend, ExecutionFailure, ExecutionResult, PayloadError } from './backend';

export interface ExecutorRuntimeOptions {
  backend: ExecutionBackend;
  bus: Bus;
  logger: Logger;
  metrics: Metrics;
  workerId: string;
  host: string;
  version: string;
  concurrency: number;
  labels: Record<string, string>;
  heartbeatIntervalMs: number;
  drainTimeoutMs: number;
  ackWaitMs: number;
  outputTailBytes: number;
  killGraceMs: number;
  /** Called when a drain was asked for over NATS (`POST /v1/workers/:id/drain`): stop the process. */
  onDrainRequested?: () => void;
}

interface RunningAttempt {
  jobId: string;
  attempt: number;
  controller: AbortController;
}

type WorkerState = 'ONLINE' | 'DRAINING' | 'OFFLINE';

/**
 * Runs one executor: pulls dispatches of its backend with bounded concurrency, runs each attempt
 * through the backend, and reports what happened. The contract with the scheduler:
 * - a dispatch is acknowledged only after its `started` report is in the reports stream; if the
 *   executor dies before that, JetStream delivers the dispatch again;
 * - after that, the attempt's run lease (renewed by heartbeats) owns recovery: if this executor
 *   dies, the lease expires and the scheduler retries the job as a new attempt;
 * - every started attempt gets exactly one final report (completed or failed), published durably
 *   and retried until NATS takes it; the message id `<jobId>:<attempt>:<type>` deduplicates.
 */
export class ExecutorRuntime {
  private readonly running = new Map<string, RunningAttempt>();
  private state: WorkerState = 'ONLINE';
  private loop: PullLoop | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private controlSub: Subscription | undefined;
  private closed = false;
  private draining: Promise<void> | undefined;
  private readonly counters;

  constructor(private readonly o: ExecutorRuntimeOptions) {
    const m = o.metrics;
    this.counters = {
      attempts: m.counter('blixard_executor_attempts_total', 'Attempts finished by this executor, by outcome', ['backend', 'outcome'] as const),
      rejected: m.counter('blixard_executor_rejected_messages_total', 'Messages that did not parse and were rejected', ['kind'] as const),
      duration: m.histogram('blixard_executor_attempt_duration_seconds', 'Attempt run time', ['backend', 'outcome'] as const, [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300]),
    };
    m.gauge('blixard_executor_running_attempts', 'Attempts running now', ['backend'] as const, (g) => g.set({ backend: o.backend.name }, this.running.size));
  }

  get workerId(): string {
    return this.o.workerId;
  }

  get runningAttempts(): number {
    return this.running.size;
  }

  async start(): Promise<void> {
    const { bus, backend } = this.o;
    const s = bus.subjects;
    await ensureStreams(bus);
    const durable = s.consumers.executor(backend.name);
    await ensurePullConsumer(bus, s.streams.dispatch, durable, s.dispatch(backend.name), this.o.ackWaitMs);
    this.controlSub = bus.nc.subscribe(s.control(this.o.workerId), { callback: (_err, msg) => this.onControl(msg.data) });
    await this.heartbeat();
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.o.heartbeatIntervalMs);
    const consumer = await bus.js.consumers.get(s.streams.dispatch, durable);
    this.loop = new PullLoop({
      consumer,
      concurrency: this.o.concurrency,
      logger: this.o.logger,
      accepting: () => this.state === 'ONLINE',
      handle: (msg) => this.handleDispatch(msg),
    });
    this.loop.start();
    this.o.logger.info({ workerId: this.o.workerId, backend: backend.name, concurrency: this.o.concurrency }, 'executor started');
  }

  // ---------------------------------------------------------------- one attempt

  private async handleDispatch(msg: JsMsg): Promise<void> {
    const decoded = decodeJson(msg.data, dispatchMessageSchema);
    if (!decoded.ok) {
      this.counters.rejected.inc({ kind: 'dispatch' });
      this.o.logger.warn({ subject: msg.subject, error: decoded.error }, 'rejected a malformed dispatch');
      msg.term();
      return;
    }
    const d = decoded.value;
    const key = attemptKey(d.jobId, d.attempt);
    if (this.running.has(key)) {
      // A redelivery of an attempt this executor already runs.
      msg.ack();
      return;
    }
    const controller = new AbortController();
    this.running.set(key, { jobId: d.jobId, attempt: d.attempt, controller });
    try {
      const startedAt = Date.now();
      try {
        await this.publishReport({ type: 'started', jobId: d.jobId, attempt: d.attempt, workerId: this.o.workerId, at: new Date(startedAt).toISOString() });
      } catch (err) {
        // Not recorded anywhere yet: let JetStream deliver the dispatch again, here or elsewhere.
        this.o.logger.warn({ jobId: d.jobId, attempt: d.attempt, err: String(err) }, 'could not report start; handing the dispatch back');
        msg.nak(1000);
        return;
      }
      msg.ack();
      const report = await this.execute(d, controller, startedAt);
      const outcome = report.type === 'completed' ? 'completed' : report.reason;
      this.counters.attempts.inc({ backend: this.o.backend.name, outcome });
      this.counters.duration.observe({ backend: this.o.backend.name, outcome }, (Date.now() - startedAt) / 1000);
      await this.publishReportReliably(report);
    } finally {
      this.running.delete(key);
    }
  }

  private async execute(d: DispatchMessage, controller: AbortController, startedAt: number): Promise<CompletedReport | FailedReport> {
    const { backend, workerId } = this.o;
    const base = { jobId: d.jobId, attempt: d.attempt, workerId };
    const timer =
      d.timeoutMs === null ? undefined : setTimeout(() => controller.abort('timed_out' satisfies AbortReason), d.timeoutMs);
    let result: ExecutionResult | undefined;
    let error: unknown;
    try {
      const payload = backend.validate(d.payload);
      result = await backend.execute(
        { id: d.jobId, attempt: d.attempt, maxAttempts: d.maxAttempts, queue: d.queue, labels: d.labels, timeoutMs: d.timeoutMs, payload, parents: d.parents.map((x) => ({ jobId: x.jobId, status: x.status, result: x.result ?? null })) },
        { workerId, attempt: d.attempt, signal: controller.signal, outputTailBytes: this.o.outputTailBytes, killGraceMs: this.o.killGraceMs },
      );
    } catch (err) {
      error = err;
    } finally {
      clearTimeout(timer);
    }
    const durationMs = Date.now() - startedAt;
    const at = new Date().toISOString();

    if (controller.signal.aborted) {
      // Whatever the backend returned, an aborted attempt did not succeed.
      const reason = controller.signal.reason as AbortReason;
      const f = error instanceof ExecutionFailure ? error : undefined;
      return {
        ...base,
        type: 'failed',
        at,
        reason: reason satisfies FailureReason,
        errorCode: reason,
        message: abortMessage(reason, d.timeoutMs),
        retryable: reason !== 'cancelled',
        exitCode: f?.exitCode ?? null,
        durationMs,
        stdoutTail: f?.stdoutTail,
        stderrTail: f?.stderrTail,
      };
    }
    if (error === undefined && result) {
      const size = result.output === undefined ? 0 : Buffer.byteLength(JSON.stringify(result.output));
      if (size > MAX_OUTPUT_BYTES) {
        error = new ExecutionFailure('output_too_large', `the output is ${size} bytes; at most ${MAX_OUTPUT_BYTES} are stored`, { retryable: false });
      } else {
        return { ...base, type: 'completed', at, output: result.output ?? null, exitCode: result.exitCode ?? null, durationMs, stdoutTail: result.stdoutTail, stderrTail: result.stderrTail };
      }
    }
    if (error instanceof PayloadError) {
      return { ...base, type: 'failed', at, reason: 'invalid_payload', errorCode: error.code, message: error.message, retryable: false, durationMs };
    }
    if (error instanceof ExecutionFailure) {
      return {
        ...base,
        type: 'failed',
        at,
        reason: 'error',
        errorCode: error.code,
        message: error.message,
        retryable: error.retryable,
        exitCode: error.exitCode,
        durationMs,
        stdoutTail: error.stdoutTail,
        stderrTail: error.stderrTail,
      };
    }
    this.o.logger.warn({ jobId: d.jobId, attempt: d.attempt, err: String(error) }, 'backend threw an unexpected error');
    return { ...base, type: 'failed', at, reason: 'error', errorCode: 'backend_error', message: String(error), retryable: true, durationMs };
  }

  // ---------------------------------------------------------------- reports

  private async publishReport(report: ReportMessage): Promise<void> {
    const s = this.o.bus.subjects;
    await this.o.bus.js.publish(s.report(report.jobId), encodeJson(report), {
      msgID: `${attemptKey(report.jobId, report.attempt)}:${report.type}`,
      timeout: 5_000,
    });
  }

  /** Retries until NATS takes the report; if this process dies first, the lease recovers the job. */
  private async publishReportReliably(report: ReportMessage): Promise<void> {
    for (let delay = 200; ; delay = Math.min(delay * 2, 5_000)) {
      try {
        await this.publishReport(report);
        return;
      } catch (err) {
        if (this.closed) {
          this.o.logger.error({ jobId: report.jobId, attempt: report.attempt }, 'closing with an unpublished report; the lease will recover the job');
          return;
        }
        this.o.logger.warn({ jobId: report.jobId, attempt: report.attempt, err: String(err) }, 'report not published; retrying');
        await sleep(delay);
      }
    }
  }

  // ---------------------------------------------------------------- control, heartbeats

  private onControl(data: Uint8Array): void {
    const decoded = decodeJson(data, controlMessageSchema);
    if (!decoded.ok) {
      this.counters.rejected.inc({ kind: 'control' });
      this.o.logger.warn({ error: decoded.error }, 'rejected a malformed control message');
      return;
    }
    const c = decoded.value;
    if (c.type === 'cancel') this.abortAttempt(c.jobId, c.attempt, 'cancelled');
    else if (this.o.onDrainRequested) this.o.onDrainRequested();
    else void this.drain();
  }

  private abortAttempt(jobId: string, attempt: number, reason: AbortReason): void {
    const run = this.running.get(attemptKey(jobId, attempt));
    if (run && !run.controller.signal.aborted) {
      this.o.logger.info({ jobId, attempt, reason }, 'aborting attempt');
      run.controller.abort(reason);
    }
  }

  private async heartbeat(): Promise<void> {
    const hb: HeartbeatMessage = {
      workerId: this.o.workerId,
      backend: this.o.backend.name,
      host: this.o.host,
      version: this.o.version,
      labels: this.o.labels,
      capacity: { slots: this.o.concurrency, ...(this.o.backend.capabilities().resources ?? {}) },
      concurrency: this.o.concurrency,
      status: this.state,
      running: [...this.running.values()].map((r) => ({ jobId: r.jobId, attempt: r.attempt })),
      at: new Date().toISOString(),
    };
    try {
      const reply = await this.o.bus.nc.request(this.o.bus.subjects.heartbeat, encodeJson(hb), { timeout: 2_000 });
      const body = JSON.parse(new TextDecoder().decode(reply.data)) as { orphans?: { jobId: string; attempt: number }[] };
      // Attempts Postgres no longer gives this worker (cancelled, or requeued while we were cut off).
      for (const o of body.orphans ?? []) this.abortAttempt(o.jobId, o.attempt, 'cancelled');
    } catch (err) {
      this.o.logger.debug({ err: String(err) }, 'heartbeat not answered (is the worker registry running?)');
    }
  }

  // ---------------------------------------------------------------- drain

  /**
   * Stops taking work, lets running attempts finish for up to DRAIN_TIMEOUT_MS, then hands the
   * rest back (reported failed with `worker_shutdown`, retryable) and goes offline.
   */
  drain(): Promise<void> {
    this.draining ??= this.doDrain();
    return this.draining;
  }

  private async doDrain(): Promise<void> {
    this.state = 'DRAINING';
    this.o.logger.info({ running: this.running.size }, 'draining');
    await this.heartbeat();
    const stopped = this.loop?.stop() ?? Promise.resolve();
    const timedOut = await Promise.race([stopped.then(() => false), sleep(this.o.drainTimeoutMs).then(() => true)]);
    if (timedOut) {
      for (const run of this.running.values()) this.abortAttempt(run.jobId, run.attempt, 'worker_shutdown');
      await stopped;
    }
    this.state = 'OFFLINE';
    clearInterval(this.heartbeatTimer);
    await this.heartbeat();
    this.closed = true;
    this.controlSub?.unsubscribe();
    this.o.logger.info('drained');
  }
}

/** Results are stored on the job row and sent in the completed event: keep them small. */
export const MAX_OUTPUT_BYTES = 1_048_576;

function abortMessage(reason: AbortReason, timeoutMs: number | null): string {
  switch (reason) {
    case 'timed_out':
      return `the attempt exceeded its timeout of ${timeoutMs} ms`;
    case 'cancelled':
      return 'the attempt was cancelled';
    case 'worker_shutdown':
      return 'the executor shut down before the attempt finished; handed back for retry';
  }
}
