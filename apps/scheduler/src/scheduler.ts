import { attemptKey, DispatchMessage, ReportMessage, reportMessageSchema } from '@blixard/contracts';
import { ApplyResult, Db, DispatchStore, Job, JobStore, OutboxRelay, ParentResult, ScheduleStore } from '@blixard/db';
import type { Pool } from 'pg';
import { Bus, decodeJson, encodeJson, ensurePullConsumer, ensureStreams, JsMsg, PullLoop, Subscription } from '@blixard/messaging';
import { Trigger } from '@blixard/service';
import { annotateActiveSpan, SpanAttr, traceDispatch, traceReport, type Logger, type Metrics } from '@blixard/telemetry';
import { JobMetrics } from './job-metrics';
import { KeyedBatcher } from './keyed-batcher';

export interface SchedulerOptions {
  db: Db;
  bus: Bus;
  logger: Logger;
  metrics: Metrics;
  dispatchBatchSize: number;
  dispatchIntervalMs: number;
  reconcileIntervalMs: number;
  claimLeaseMs: number;
  runLeaseMs: number;
  timeoutGraceMs: number;
  /** JetStream redelivers a report no scheduler acknowledged within this time. */
  reportAckWaitMs: number;
  /** How long an idempotency key keeps returning its job; after that it may be used again. */
  idempotencyWindowMs: number;
  /** Share dispatch round-robin across fairness keys. */
  fairness: boolean;
  /** Percent of each backend's slots kept for fairness keys with nothing running. */
  fairnessReservePercent: number;
  /**
   * Connections of the dispatcher's own: with a busy report stream, dispatch rounds would
   * otherwise wait for a connection behind dozens of report transactions (measured: most of a
   * newly submitted job's wait under load).
   */
  dispatchPool?: Pool;
  /** Reports fetched and not yet acknowledged (waiting for a batch or being applied). */
  reportConcurrency?: number;
  /** Most reports applied in one transaction. */
  reportBatchSize?: number;
  /** Report batches applied at once (reports of one job are always applied in arrival order). */
  reportBatches?: number;
}

/** How long published outbox rows are kept (they live on in the events stream). */
const OUTBOX_RETENTION_MS = 3_600_000;

/**
 * The job lifecycle engine. Several replicas may run: every step claims its rows with
 * `FOR UPDATE SKIP LOCKED` or applies a fenced transition, so they share the work and never
 * apply anything twice.
 * - dispatcher: promotes due jobs, releases or cancels dependents, and claims ready jobs as far
 *   as capacity, queue limits and fairness allow, then publishes each attempt to
 *   `dispatch.<backend>` (id `<jobId>:<attempt>`); one replica leads dispatch at a time (it holds
 *   a session advisory lock) and the others take over when it goes;
 * - report handler: applies executors' reports through the transition table; a stale or
 *   duplicate report changes nothing and is counted;
 * - reconciler: re-dispatches claims NATS lost, expires attempts whose lease or deadline passed,
 *   requeues the attempts of lost workers, and keeps the outbox flowing;
 * - outbox relay: publishes the events written with each transition;
 * - cron: fires due schedules, one job per fire time.
 */
export class Scheduler {
  readonly store: JobStore;
  readonly dispatch: DispatchStore;
  /** The job store on the dispatcher's connections (promotions and dependency releases). */
  private readonly dispatchJobs: JobStore;
  readonly schedules: ScheduleStore;
  private readonly cron: Trigger;
  /** Fires the cron loop at the next schedule's fire time. */
  private cronTimer: NodeJS.Timeout | undefined;
  private readonly relay: OutboxRelay;
  /** Fires the dispatcher when the earliest SCHEDULED job becomes due (run-at precision). */
  private dueTimer: NodeJS.Timeout | undefined;
  private readonly dispatcher: Trigger;
  /** Dispatches of finished rounds still being published (stop waits for them). */
  private readonly publishing = new Set<Promise<void>>();
  private readonly reconciler: Trigger;
  private readonly outbox: Trigger;
  private reports: PullLoop | undefined;
  /** A wake-up for the dispatch leader is queued (slotFreed). */
  private wakeQueued = false;
  private readonly subs: Subscription[] = [];
  /** Applies reports in batches, each job's in arrival order. */
  private readonly reportBatcher: KeyedBatcher<ReportMessage, ApplyResult | Error>;
  readonly counters;
  /** Jobs completed and failed by backend and queue; queue depth by status. */
  private readonly jobMetrics: JobMetrics;

  constructor(private readonly o: SchedulerOptions) {
    const s = o.bus.subjects;
    this.store = new JobStore(o.db, {
      subjects: s,
      source: '/blixard/scheduler',
      claimLeaseMs: o.claimLeaseMs,
      runLeaseMs: o.runLeaseMs,
      idempotencyWindowMs: o.idempotencyWindowMs,
    });
    this.dispatch = new DispatchStore(
      o.db,
      { subjects: s, source: '/blixard/scheduler', claimLeaseMs: o.claimLeaseMs, fairness: o.fairness, reservePercent: o.fairnessReservePercent },
      o.dispatchPool,
    );
    this.dispatchJobs = o.dispatchPool
      ? new JobStore(o.db, { subjects: s, source: '/blixard/scheduler', claimLeaseMs: o.claimLeaseMs, runLeaseMs: o.runLeaseMs }, o.dispatchPool)
      : this.store;
    // A fire time counts as due (not missed) for two reconcile periods: `catchUp: none` then
    // drops only fire times missed while no scheduler ran.
    this.schedules = new ScheduleStore(o.db, this.store, Math.max(1_000, 2 * o.reconcileIntervalMs));
    this.relay = new OutboxRelay(o.db, async (subject, event, messageId) => {
      await o.bus.js.publish(subject, encodeJson(event), { msgID: messageId, timeout: 5_000 });
    });
    const m = o.metrics;
    this.counters = {
      dispatched: m.counter('blixard_jobs_dispatched_total', 'Attempts dispatched to executors', ['backend', 'queue'] as const),
      reports: m.counter('blixard_reports_applied_total', 'Executor reports applied', ['type'] as const),
      dropped: m.counter('blixard_reports_dropped_total', 'Stale, duplicate or unknown reports that changed nothing', ['type', 'reason'] as const),
      rejected: m.counter('blixard_messages_rejected_total', 'Messages that did not parse, rejected', ['kind'] as const),
      reconciler: m.counter('blixard_reconciler_actions_total', 'Recoveries made by the reconciler', ['action'] as const),
      relayed: m.counter('blixard_outbox_published_total', 'Outbox events published'),
      cronFired: m.counter('blixard_cron_jobs_total', 'Jobs made by cron schedules'),
      cronSkipped: m.counter('blixard_cron_skipped_total', 'Cron fire times skipped because the previous job still ran'),
      errors: m.counter('blixard_scheduler_errors_total', 'Errors in the scheduler loops (database or NATS)', ['loop'] as const),
      dispatchRound: m.histogram('blixard_dispatch_round_seconds', 'One dispatch round: promote due jobs, release dependents, claim (publishing runs after it)', [], [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1]),
      reportBatch: m.histogram('blixard_report_batch_size', 'Reports applied in one transaction', [], [1, 2, 5, 10, 25, 50, 100]),
      leader: m.gauge('blixard_dispatch_leader', '1 while this scheduler replica leads dispatch (one replica at a time does)', [], (g) => g.set(this.dispatch.leading ? 1 : 0)),
    };
    this.jobMetrics = new JobMetrics(m, o.db);
    const onError = (loop: string) => (err: unknown) => {
      this.counters.errors.inc({ loop });
      m.countError(err, loop);
      o.logger.warn({ loop, err: String(err) }, 'scheduler loop error; will retry');
    };
    this.reportBatcher = new KeyedBatcher({
      key: (report) => report.jobId,
      apply: (reports) => this.applyReports(reports),
      maxBatch: o.reportBatchSize ?? 100,
      concurrency: o.reportBatches ?? 2,
    });
    this.dispatcher = new Trigger(() => this.dispatchRound(), o.dispatchIntervalMs, onError('dispatch'));
    this.reconciler = new Trigger(() => this.reconcile(), o.reconcileIntervalMs, onError('reconcile'));
    this.outbox = new Trigger(() => this.relayRound(), Math.min(o.dispatchIntervalMs, 500), onError('outbox'));
    this.cron = new Trigger(() => this.cronRound(), o.reconcileIntervalMs, onError('cron'));
  }

  async start(): Promise<void> {
    const { bus } = this.o;
    const s = bus.subjects;
    await ensureStreams(bus);
    await ensurePullConsumer(bus, s.streams.reports, s.consumers.scheduler, s.reportAll, this.o.reportAckWaitMs);
    // Wake-ups are nudges; losing one only delays work until the next interval.
    this.subs.push(
      bus.nc.subscribe(s.wakeDispatch, {
        callback: () => {
          this.dispatcher.kick();
          this.outbox.kick();
        },
      }),
    );
    this.subs.push(
      bus.nc.subscribe(s.wakeReconcile, {
        callback: () => {
          this.reconciler.kick();
          this.cron.kick();
        },
      }),
    );
    this.subs.push(
      bus.nc.subscribe(s.rpc('scheduler', 'worker-lost'), {
        queue: 'scheduler',
        callback: (_err, msg) => {
          void this.onWorkerLost(msg.data).then((n) => msg.respond(encodeJson({ requeued: n })));
        },
      }),
    );
    const consumer = await bus.js.consumers.get(s.streams.reports, s.consumers.scheduler);
    this.reports = new PullLoop({
      consumer,
      concurrency: this.o.reportConcurrency ?? 256,
      logger: this.o.logger,
      expiresMs: 1000,
      handle: (msg) => this.handleReport(msg),
      metrics: this.o.metrics,
    });
    this.reports.start();
    this.dispatcher.start();
    this.reconciler.start();
    this.outbox.start();
    this.cron.start();
    this.o.logger.info('scheduler started');
  }

  async stop(): Promise<void> {
    clearTimeout(this.dueTimer);
    clearTimeout(this.cronTimer);
    for (const sub of this.subs) sub.unsubscribe();
    await this.reports?.stop();
    await Promise.all([this.dispatcher.stop(), this.reconciler.stop(), this.outbox.stop(), this.cron.stop()]);
    await Promise.all(this.publishing);
    // Hand the lead over now rather than when a standby next tries.
    if (this.dispatch.leading) {
      await this.dispatch.close();
      if (!this.o.bus.nc.isClosed()) this.o.bus.nc.publish(this.o.bus.subjects.wakeDispatch);
    }
  }

  // ---------------------------------------------------------------- dispatch

  /**
   * One round: due → ready, settled dependencies → released or cancelled, then ready → claimed →
   * published, as far as capacity, limits and fairness allow. True when more may be waiting.
   */
  private async dispatchRound(): Promise<boolean> {
    const end = this.counters.dispatchRound.startTimer();
    try {
      return await this.dispatchRoundOnce();
    } finally {
      end();
    }
  }

  private async dispatchRoundOnce(): Promise<boolean> {
    const size = this.o.dispatchBatchSize;
    let promoted = 0;
    let resolved = 0;
    const claimStartedAt = new Date();
    // The round reads what else waits with its state: promotion and dependency resolution run only
    // when there is something for them, which is most rounds of a busy queue.
    const batch = await this.dispatch.claimForDispatch(size, async (work) => {
      if (work.due) promoted = await this.dispatchJobs.promoteDue(size);
      if (work.blocked) resolved = await this.dispatchJobs.resolveBlocked(size);
    });
    // Another replica leads dispatch.
    if (!batch.work) return false;
    if (promoted + resolved + batch.jobs.length > 0) this.outbox.kick();
    // A span per dispatch, from the claim on: the first attempt continues the submit's trace. The
    // claims are committed, so the next round need not wait for JetStream's acks (a job submitted
    // meanwhile would wait behind them); a publish that fails is retried by the reconciler.
    const published = Promise.all(batch.jobs.map((job) => traceDispatch(job, { startTime: claimStartedAt }, () => this.publishDispatch(job, false, batch.parents.get(job.id))))).then(() => undefined);
    this.publishing.add(published);
    void published.finally(() => this.publishing.delete(published));
    // After a promotion the earliest run-at is a later one: read it again (rare: delays and retries).
    this.armDueTimer(promoted > 0 && promoted < size ? (await this.dispatch.pendingWork()).nextRunAt : batch.work.nextRunAt);
    return batch.more || promoted === size || resolved === size;
  }

  /** Fires due cron schedules (exactly one job per fire time), then arms the timer for the next. */
  private async cronRound(): Promise<boolean> {
    const outcome = await this.schedules.fireDue(20);
    if (outcome.fired > 0) {
      this.counters.cronFired.inc(outcome.fired);
      this.dispatcher.kick();
      this.outbox.kick();
    }
    if (outcome.skipped > 0) this.counters.cronSkipped.inc(outcome.skipped);
    for (const c of outcome.cancelled) this.sendCancel(c.workerId, c.jobId, c.attempt);
    const next = await this.schedules.nextFireAt();
    clearTimeout(this.cronTimer);
    if (next) {
      const wait = next.getTime() - Date.now();
      if (wait <= 0) return true;
      if (wait < this.o.reconcileIntervalMs) this.cronTimer = setTimeout(() => this.cron.kick(), wait);
    }
    return false;
  }

  /** Sets a timer for the earliest SCHEDULED run-at, so delayed jobs and retries start on time. */
  private armDueTimer(at: Date | null): void {
    clearTimeout(this.dueTimer);
    if (!at) return;
    const wait = at.getTime() - Date.now();
    if (wait <= 0) {
      this.dispatcher.kick();
      return;
    }
    if (wait < this.o.dispatchIntervalMs) this.dueTimer = setTimeout(() => this.dispatcher.kick(), wait);
  }

  /**
   * Publishes attempt `job.attempt`. The first dispatch uses the message id `<jobId>:<attempt>`;
   * a re-dispatch (the claim lease ran out) gets its own id, because JetStream may still remember
   * the first id in its duplicate window after losing the message itself. Executors run an
   * attempt at most once each, and fencing by attempt number drops the reports of any duplicate.
   */
  private async publishDispatch(job: Job, redispatch = false, parents: ParentResult[] = []): Promise<void> {
    const s = this.o.bus.subjects;
    const message: DispatchMessage = {
      jobId: job.id,
      attempt: job.attempt,
      backend: job.backend,
      queue: job.queue,
      payload: job.payload,
      timeoutMs: job.timeoutMs,
      labels: job.labels as Record<string, string>,
      maxAttempts: job.maxAttempts,
      dispatchedAt: (job.dispatchedAt ?? new Date()).toISOString(),
      parents,
      resources: (job.requirements as { resources?: Record<string, number> } | null)?.resources ?? {},
    };
    try {
      const msgID = redispatch ? `${attemptKey(job.id, job.attempt)}:re:${Date.now()}` : attemptKey(job.id, job.attempt);
      // A placed attempt goes to its worker's own consumer; the rest to the backend's shared one.
      const subject = job.workerId ? s.dispatchTo(job.backend, job.workerId) : s.dispatch(job.backend);
      await this.o.bus.js.publish(subject, encodeJson(message), { msgID, timeout: 5_000 });
      this.counters.dispatched.inc({ backend: job.backend, queue: job.queue });
    } catch (err) {
      // The claim is in Postgres; the reconciler dispatches it again when its claim lease ends.
      this.counters.errors.inc({ loop: 'dispatch' });
      this.o.logger.warn({ jobId: job.id, attempt: job.attempt, err: String(err) }, 'dispatch not published; the reconciler will retry');
    }
  }

  // ---------------------------------------------------------------- reports

  private handleReport(msg: JsMsg): Promise<void> {
    const decoded = decodeJson(msg.data, reportMessageSchema);
    if (!decoded.ok) {
      this.counters.rejected.inc({ kind: 'report' });
      this.o.logger.warn({ subject: msg.subject, error: decoded.error }, 'rejected a malformed report');
      msg.term();
      return Promise.resolve();
    }
    const report = decoded.value;
    return traceReport(report, async () => this.afterReport(report, msg, await this.reportBatcher.submit(report)));
  }

  /**
   * One transaction for the whole batch; if it fails, each report is tried on its own, so one
   * report that cannot be applied does not hold back the others.
   */
  private async applyReports(reports: ReportMessage[]): Promise<(ApplyResult | Error)[]> {
    this.counters.reportBatch.observe(reports.length);
    try {
      return await this.store.applyReports(reports);
    } catch (err) {
      if (reports.length === 1) return [asError(err)];
      return Promise.all(reports.map((r) => this.store.applyReports([r]).then((results) => results[0], asError)));
    }
  }

  private afterReport(report: ReportMessage, msg: JsMsg, result: ApplyResult | Error): void {
    if (result instanceof Error) {
      // Postgres is unreachable or the transaction failed: JetStream delivers the report again.
      this.counters.errors.inc({ loop: 'report' });
      this.o.metrics.countError(result, 'report');
      this.o.logger.warn({ jobId: report.jobId, type: report.type, err: String(result) }, 'report not applied; will be redelivered');
      msg.nak(1000);
      return;
    }
    msg.ack();
    annotateActiveSpan({ [SpanAttr.reportApplied]: result.applied, ...(result.applied ? { 'job.status': result.job.status } : { [SpanAttr.reportDropped]: result.reason }) });
    if (result.applied) {
      this.counters.reports.inc({ type: report.type });
      this.jobMetrics.finished([result.job]);
      if (report.type !== 'started') {
        this.o.logger.info({ jobId: report.jobId, attempt: report.attempt, report: report.type, status: result.job.status, errorCode: result.job.errorCode ?? undefined }, 'attempt finished');
      }
      this.outbox.kick();
      // A finished attempt frees an executor slot, and a retry may be due at once.
      if (report.type !== 'started') this.slotFreed();
      return;
    }
    this.counters.dropped.inc({ type: report.type, reason: result.reason });
    this.o.logger.info(
      { jobId: report.jobId, attempt: report.attempt, type: report.type, reason: result.reason, status: result.job?.status, currentAttempt: result.job?.attempt },
      'dropped a stale report',
    );
    // An executor started an attempt the job no longer has (cancelled, duplicate delivery,
    // superseded): tell it to stop rather than let it run for nothing.
    if (report.type === 'started') this.sendCancel(report.workerId, report.jobId, report.attempt);
  }

  /**
   * Dispatch runs again: here when this scheduler leads it, else the leader is woken (one wake-up
   * per tick however many reports this replica applied in it).
   */
  private slotFreed(): void {
    if (this.dispatch.leading) return this.dispatcher.kick();
    if (this.wakeQueued) return;
    this.wakeQueued = true;
    setImmediate(() => {
      this.wakeQueued = false;
      this.o.bus.nc.publish(this.o.bus.subjects.wakeDispatch);
    });
  }

  private sendCancel(workerId: string, jobId: string, attempt: number): void {
    const s = this.o.bus.subjects;
    this.o.bus.nc.publish(s.control(workerId), encodeJson({ type: 'cancel', jobId, attempt }));
  }

  // ---------------------------------------------------------------- recovery

  private async reconcile(): Promise<void> {
    const batch = this.o.dispatchBatchSize;
    const due = await this.store.promoteDue(batch);
    if (due > 0) {
      this.counters.reconciler.inc({ action: 'promoted_due' }, due);
      this.dispatcher.kick();
    }
    const overdue = await this.store.expireOverdueAttempts(batch, this.o.timeoutGraceMs);
    this.jobMetrics.finished(overdue);
    for (const job of overdue) {
      this.counters.reconciler.inc({ action: job.errorCode === 'timed_out' ? 'timed_out' : 'lease_expired' });
      this.o.logger.info({ jobId: job.id, attempt: job.attempt, status: job.status, reason: job.errorCode }, 'recovered an abandoned attempt');
    }
    const replaced = await this.store.failPlacedOnGoneWorkers(batch);
    for (const job of replaced) {
      this.counters.reconciler.inc({ action: 'placement_worker_gone' });
      this.o.logger.info({ jobId: job.id, attempt: job.attempt, status: job.status }, 'the worker of a placed attempt left before starting it');
    }
    const unplaced = await this.store.failUnplaced(batch);
    for (const job of unplaced) {
      this.counters.reconciler.inc({ action: 'placement_deadline' });
      this.o.logger.info({ jobId: job.id, error: job.error }, 'no worker took the job before its placement deadline');
    }
    await this.store.explainUnservedBackends(batch * 10);
    const stale = await this.store.reclaimStaleClaims(batch);
    const parents = await this.store.parentsOf(stale.map((j) => j.id));
    for (const job of stale) {
      this.counters.reconciler.inc({ action: 'redispatched' });
      await traceDispatch(job, { redispatch: true }, () => this.publishDispatch(job, true, parents.get(job.id)));
    }
    if (overdue.length > 0 || replaced.length > 0) this.dispatcher.kick();
    this.outbox.kick();
    const pruned = await this.relayPrune();
    if (pruned > 0) this.counters.reconciler.inc({ action: 'outbox_pruned' }, pruned);
    const expiredKeys = await this.store.expireIdempotencyKeys(this.o.idempotencyWindowMs, batch);
    if (expiredKeys > 0) this.counters.reconciler.inc({ action: 'idempotency_keys_expired' }, expiredKeys);
  }

  private lastPrune = 0;
  private async relayPrune(): Promise<number> {
    if (Date.now() - this.lastPrune < 60_000) return 0;
    this.lastPrune = Date.now();
    return this.relay.prune(OUTBOX_RETENTION_MS);
  }

  private async relayRound(): Promise<boolean> {
    const n = await this.relay.relayOnce(200);
    if (n > 0) this.counters.relayed.inc(n);
    return n === 200;
  }

  /** The registry declared a worker lost: fail its attempts now rather than at lease expiry. */
  async onWorkerLost(data: Uint8Array): Promise<number> {
    let workerId: string;
    try {
      workerId = (JSON.parse(new TextDecoder().decode(data)) as { workerId: string }).workerId;
      if (typeof workerId !== 'string' || workerId.length === 0) throw new Error('no workerId');
    } catch {
      this.counters.rejected.inc({ kind: 'worker_lost' });
      return 0;
    }
    try {
      const moved = await this.store.requeueWorkerAttempts(workerId);
      this.jobMetrics.finished(moved);
      if (moved.length > 0) {
        this.counters.reconciler.inc({ action: 'worker_lost' }, moved.length);
        this.o.logger.info({ workerId, attempts: moved.length }, 'requeued the attempts of a lost worker');
        this.dispatcher.kick();
        this.outbox.kick();
      }
      return moved.length;
    } catch (err) {
      this.counters.errors.inc({ loop: 'worker_lost' });
      this.o.logger.warn({ workerId, err: String(err) }, 'could not requeue a lost worker; lease expiry will');
      return 0;
    }
  }
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
