import { Module } from '@nestjs/common';
import { createPool } from '@blixard/db';
import { createServiceContext, HealthModule, startHttpService } from '@blixard/service';
import { Scheduler } from './scheduler';

export interface RunningScheduler {
  scheduler: Scheduler;
  port: number;
  stop(): Promise<void>;
}

/** Starts the scheduler service: its loops plus /healthz, /readyz, /metrics. */
export async function startScheduler(env: Record<string, string | undefined> = process.env): Promise<RunningScheduler> {
  const ctx = await createServiceContext(
    'scheduler',
    ['schedulerPort', 'dispatchBatchSize', 'dispatchIntervalMs', 'reconcileIntervalMs', 'claimLeaseMs', 'runLeaseMs', 'timeoutGraceMs', 'idempotencyWindowMs', 'reportAckWaitMs', 'dispatchFairness', 'fairnessReservePercent'] as const,
    env,
  );
  const { config } = ctx;
  const dispatchPool = createPool(config.databaseUrl, 2);
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

  @Module({ imports: [HealthModule.forRoot(ctx.readiness, ctx.metrics)] })
  class SchedulerModule {}

  const { app, port } = await startHttpService({ module: SchedulerModule, port: config.schedulerPort, logger: ctx.logger });
  await scheduler.start();
  ctx.logger.info({ port }, 'scheduler listening');
  return {
    scheduler,
    port,
    async stop() {
      await scheduler.stop();
      await dispatchPool.end().catch(() => undefined);
      await app.close();
      await ctx.close();
    },
  };
}
