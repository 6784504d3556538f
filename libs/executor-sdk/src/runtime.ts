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
import { traceExecution, type Logger, type Metrics } from '@blixard/telemetry';
import { AbortReason, ExecutionBackend, ExecutionContext, ExecutionFailure, ExecutionResult, PayloadError } from './backend';
import { AttemptLog, AttemptProgress } from './attempt-output';

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
  /** What this executor offers to jobs with `resources` (cpuMillis, memoryMb, gpu, ...); slots are `concurrency`. */
  resources?: Record<string, number>;
  heartbeatIntervalMs: number;
  drainTimeoutMs: number;
  ackWaitMs: number;
  outputTailBytes: number;
  killGraceMs: number;
  /** LOG_MAX_BYTES_PER_ATTEMPT (default 10 MiB): output past it is dropped and marked. */
  logMaxBytesPerAttempt?: number;
  /** PROGRESS_MIN_INTERVAL_MS (default 250). */
  progressMinIntervalMs?: number;
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
  /** Attempts adopted from an earlier process with this worker id (`backend.recover`), until reported. */
  private readonly adopted = new Set<Promise<void>>();
  /** End-of-log markers still being published. */
  private readonly endMarkers = new Set<Promise<void>>();
  private state: WorkerState = 'ONLINE';
  private loop: PullLoop | undefined;
  /** Attempts the scheduler placed on this worker (jobs with requirements): its own consumer. */
  private placedLoop: PullLoop | undefined;
  private validateSub: Subscription | undefined;
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
      pickup: m.histogram('blixard_executor_pickup_latency_seconds', 'Dispatch (claim) to start on this executor', ['backend', 'queue'] as const, [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30]),
    };
    m.gauge('blixard_executor_running_attempts', 'Attempts running now', ['backend', 'worker'] as const, (g) => g.set({ backend: o.backend.name, worker: o.workerId }, this.running.size));
    m.gauge('blixard_executor_free_slots', 'Slots free for another attempt now', ['backend', 'worker'] as const, (g) => g.set({ backend: o.backend.name, worker: o.workerId }, Math.max(0, o.concurrency - this.running.size)));
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
    // The gateway asks one executor of the backend whether a payload is valid before accepting a job.
    this.validateSub = bus.nc.subscribe(s.validate(backend.name), { queue: 'validate', callback: (_err, msg) => void msg.respond(encodeJson(this.validatePayload(msg.data))) });
    const own = s.consumers.worker(this.o.workerId);
    // Removed by NATS an hour after this worker stops pulling (a worker that died keeps no consumer).
    await ensurePullConsumer(bus, s.streams.dispatch, own, s.dispatchTo(backend.name, this.o.workerId), this.o.ackWaitMs, 3_600_000);
    // Before the first heartbeat: it then renews the adopted attempts' leases at once.
    await this.adoptRecovered();
    await this.heartbeat();
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.o.heartbeatIntervalMs);
    const consumer = await bus.js.consumers.get(s.streams.dispatch, durable);
    this.loop = new PullLoop({
      consumer,
      concurrency: this.o.concurrency,
      logger: this.o.logger,
      metrics: this.o.metrics,
      // Adopted and placed attempts hold slots too.
      accepting: () => this.state === 'ONLINE' && this.running.size < this.o.concurrency,
      free: () => this.o.concurrency - this.running.size,
      handle: (msg) => {
        // Placed work took the slot since this message was pulled: another executor can run it now.
        if (this.running.size >= this.o.concurrency) {
          msg.nak(50);
          return Promise.resolve();
        }
        return this.handleDispatch(msg);
      },
    });
    this.loop.start();
    // Placed attempts were reserved a slot here by the scheduler: they wait for one to free up
    // (a shared attempt may hold it a little longer) rather than go back.
    this.placedLoop = new PullLoop({
      consumer: await bus.js.consumers.get(s.streams.dispatch, own),
      concurrency: this.o.concurrency,
      logger: this.o.logger,
      metrics: this.o.metrics,
      accepting: () => this.state === 'ONLINE',
      handle: async (msg) => {
        while (this.running.size >= this.o.concurrency && this.state === 'ONLINE') {
          msg.working();
          await sleep(20);
        }
        if (this.state !== 'ONLINE') return void msg.nak(1000);
        return this.handleDispatch(msg);
      },
    });
    this.placedLoop.start();
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
      this.counters.pickup.observe({ backend: this.o.backend.name, queue: d.queue }, Math.max(0, startedAt - Date.parse(d.dispatchedAt)) / 1000 || 0);
      // The attempt's span: job id, attempt, backend, worker and outcome, for Jaeger.
      const report = await traceExecution({ jobId: d.jobId, attempt: d.attempt, backend: this.o.backend.name, queue: d.queue, workerId: this.o.workerId }, () => this.execute(d, controller, startedAt), (r) =>
        r.type === 'completed' ? { outcome: 'completed' } : { outcome: r.reason, message: r.message },
      );
      const outcome = report.type === 'completed' ? 'completed' : report.reason;
      this.counters.attempts.inc({ backend: this.o.backend.name, outcome });
      this.counters.duration.observe({ backend: this.o.backend.name, outcome }, (Date.now() - startedAt) / 1000);
      this.o.logger.info({ jobId: d.jobId, attempt: d.attempt, outcome, durationMs: Date.now() - startedAt }, 'attempt finished');
      await this.publishReportReliably(report);
    } finally {
      this.running.delete(key);
    }
  }

  private execute(d: DispatchMessage, controller: AbortController, startedAt: number): Promise<CompletedReport | FailedReport> {
    const { backend } = this.o;
    return this.runAttempt(d, controller, startedAt, (ctx) =>
      backend.execute(
        { id: d.jobId, attempt: d.attempt, maxAttempts: d.maxAttempts, queue: d.queue, labels: d.labels, timeoutMs: d.timeoutMs, resources: d.resources ?? {}, payload: backend.validate(d.payload), parents: d.parents.map((x) => ({ jobId: x.jobId, status: x.status, result: x.result ?? null })) },
        ctx,
      ),
    );
  }

  /** Runs `work` under the attempt's timeout (counted from `startedAt`) and turns how it ended into the final report. */
  private async runAttempt(
    d: { jobId: string; attempt: number; timeoutMs: number | null },
    controller: AbortController,
    startedAt: number,
    work: (ctx: ExecutionContext) => Promise<ExecutionResult>,
  ): Promise<CompletedReport | FailedReport> {
    const { workerId } = this.o;
    const base = { jobId: d.jobId, attempt: d.attempt, workerId };
    const timer =
      d.timeoutMs === null ? undefined : setTimeout(() => controller.abort('timed_out' satisfies AbortReason), Math.max(0, d.timeoutMs - (Date.now() - startedAt)));
    let result: ExecutionResult | undefined;
    let error: unknown;
    // The attempt's output lines and progress, streamed while it runs (attempt-output.ts).
    const outputOptions = {
      bus: this.o.bus,
      logger: this.o.logger,
      jobId: d.jobId,
      attempt: d.attempt,
      workerId,
      logMaxBytes: this.o.logMaxBytesPerAttempt ?? 10 * 1024 * 1024,
      progressMinIntervalMs: this.o.progressMinIntervalMs ?? 250,
    };
    const log = new AttemptLog(outputOptions);
    const progress = new AttemptProgress(outputOptions);
    try {
      result = await work({
        workerId,
        attempt: d.attempt,
        signal: controller.signal,
        outputTailBytes: this.o.outputTailBytes,
        killGraceMs: this.o.killGraceMs,
        log: (stream, line) => log.line(stream, line),
        progress: (fraction, note) => progress.report(fraction, note),
      });
    } catch (err) {
      error = err;
    } finally {
      clearTimeout(timer);
    }
    const durationMs = Date.now() - startedAt;
    // Before the final report: followers see every line, and the last progress, before the job ends.
    progress.end();
    const { marker } = await log.end();
    // The end-of-log marker goes out beside the report, not before it (drain waits for it).
    this.endMarkers.add(marker);
    void marker.finally(() => this.endMarkers.delete(marker));
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

  /**
   * Adopts what `backend.recover` finds (attempts an earlier process with this worker id left
   * running) and reports each one's outcome. They are fenced like any report: one the scheduler
   * has meanwhile given up on is dropped there, and the heartbeat names it an orphan to abort.
   */
  private async adoptRecovered(): Promise<void> {
    const { backend } = this.o;
    const recovered = (await backend.recover?.({ workerId: this.o.workerId, logger: this.o.logger })) ?? [];
    for (const r of recovered) {
      const key = attemptKey(r.jobId, r.attempt);
      if (this.running.has(key)) continue;
      const controller = new AbortController();
      this.running.set(key, { jobId: r.jobId, attempt: r.attempt, controller });
      const startedAt = r.startedAt.getTime();
      const adoption: Promise<void> = this.runAttempt(r, controller, startedAt, (ctx) => r.resume(ctx))
        .then(async (report) => {
          const outcome = report.type === 'completed' ? 'completed' : report.reason;
          this.counters.attempts.inc({ backend: backend.name, outcome });
          this.counters.duration.observe({ backend: backend.name, outcome }, (Date.now() - startedAt) / 1000);
          await this.publishReportReliably(report);
        })
        .catch((err) => this.o.logger.error({ jobId: r.jobId, attempt: r.attempt, err: String(err) }, 'adopted attempt failed to report'))
        .finally(() => {
          this.running.delete(key);
          this.adopted.delete(adoption);
        });
      this.adopted.add(adoption);
    }
    if (recovered.length > 0) {
      this.o.logger.info({ attempts: recovered.map((r) => attemptKey(r.jobId, r.attempt)) }, 'adopted attempts left running by an earlier process');
    }
  }

  private validatePayload(data: Uint8Array): { ok: true } | { ok: false; message: string } {
    try {
      this.o.backend.validate(JSON.parse(new TextDecoder().decode(data)));
      return { ok: true };
    } catch (err) {
      if (err instanceof PayloadError) return { ok: false, message: err.message };
      // Not the payload's fault: say nothing, the executor judges it at run time.
      this.o.logger.warn({ err: String(err) }, 'validate threw an unexpected error');
      return { ok: true };
    }
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
      capacity: { ...(this.o.backend.capabilities().resources ?? {}), ...(this.o.resources ?? {}), slots: this.o.concurrency },
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
    this.validateSub?.unsubscribe();
    const stopped = Promise.all([this.loop?.stop(), this.placedLoop?.stop(), Promise.allSettled([...this.adopted])]);
    let deadline: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      stopped.then(() => false),
      new Promise<boolean>((resolve) => (deadline = setTimeout(() => resolve(true), this.o.drainTimeoutMs))),
    ]);
    clearTimeout(deadline);
    if (timedOut) {
      for (const run of this.running.values()) this.abortAttempt(run.jobId, run.attempt, 'worker_shutdown');
      await stopped;
    }
    await Promise.allSettled([...this.endMarkers]);
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
