import { Module } from '@nestjs/common';
import { createPool, LogStore, ProgressStore } from '@blixard/db';
import { createServiceContext, HealthModule, startHttpService } from '@blixard/service';
import { Scheduler } from './scheduler';
import { LogArchiver } from './log-archiver';
import { ProgressRecorder } from './progress-recorder';

export interface RunningScheduler {
  scheduler: Scheduler;
  port: number;
  stop(): Promise<void>;
}

/** Starts the scheduler service: its loops plus /healthz, /readyz, /metrics. */
export async function startScheduler(env: Record<string, string | undefined> = process.env): Promise<RunningScheduler> {
  const ctx = await createServiceContext(
    'scheduler',
    ['schedulerPort', 'dispatchBatchSize', 'dispatchIntervalMs', 'reconcileIntervalMs', 'claimLeaseMs', 'runLeaseMs', 'timeoutGraceMs', 'idempotencyWindowMs', 'reportAckWaitMs', 'dispatchFairness', 'fairnessReservePercent', 'logMaxBytesPerAttempt'] as const,
    env,
  );
  const { config } = ctx;
  // One connection holds the dispatch lock while this replica leads; the others promote and release.
  const dispatchPool = createPool(config.databaseUrl, 3);
  const scheduler = new Scheduler({
    dispatchPool,
    db: ctx.db,
    bus: ctx.bus,
    logger: ctx.logger,
    metrics: ctx.metrics,
    dispatchBatchSize: config.dispatchBatchSize,
    dispatchIntervalMs: config.dispatchIntervalMs,
    reconcileIntervalMs: config.reconcileIntervalMs,
    claimLeaseMs: config.claimLeaseMs,
    runLeaseMs: config.runLeaseMs,
    timeoutGraceMs: config.timeoutGraceMs,
    idempotencyWindowMs: config.idempotencyWindowMs,
    reportAckWaitMs: config.reportAckWaitMs,
    fairness: config.dispatchFairness,
    fairnessReservePercent: config.fairnessReservePercent,
  });

  // Live jobs: executors' progress onto the job (with its event), output lines into Postgres.
  const progress = new ProgressRecorder({
    bus: ctx.bus,
    store: new ProgressStore(ctx.db, { subjects: ctx.bus.subjects, source: '/blixard/scheduler' }),
    logger: ctx.logger,
    metrics: ctx.metrics,
    // The event waits in the outbox: publish it now.
    onStored: () => ctx.bus.nc.publish(ctx.bus.subjects.wakeDispatch),
  });
  const logs = new LogArchiver({
    bus: ctx.bus,
    store: new LogStore(ctx.db, { maxBytesPerAttempt: config.logMaxBytesPerAttempt }),
    logger: ctx.logger,
    metrics: ctx.metrics,
    ackWaitMs: config.reportAckWaitMs,
  });

  @Module({ imports: [HealthModule.forRoot(ctx.readiness, ctx.metrics)] })
  class SchedulerModule {}

  const { app, port } = await startHttpService({ module: SchedulerModule, port: config.schedulerPort, logger: ctx.logger });
  await scheduler.start();
  progress.start();
  await logs.start();
  ctx.logger.info({ port }, 'scheduler listening');
  return {
    scheduler,
    port,
    async stop() {
      await progress.stop();
      await logs.stop();
      await scheduler.stop();
      await dispatchPool.end().catch(() => undefined);
      await app.close();
      await ctx.close();
    },
  };
}
