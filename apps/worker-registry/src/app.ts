import { Module } from '@nestjs/common';
import { createServiceContext, HealthModule, startHttpService } from '@blixard/service';
import { Registry } from './registry';

export interface RunningRegistry {
  registry: Registry;
  port: number;
  stop(): Promise<void>;
}

export async function startRegistry(env: Record<string, string | undefined> = process.env): Promise<RunningRegistry> {
  const ctx = await createServiceContext('worker-registry', ['registryPort', 'heartbeatIntervalMs', 'workerLostAfterMissed', 'runLeaseMs'] as const, env);
  const { config } = ctx;
  const registry = new Registry({
    db: ctx.db,
    bus: ctx.bus,
    logger: ctx.logger,
    metrics: ctx.metrics,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    workerLostAfterMissed: config.workerLostAfterMissed,
    runLeaseMs: config.runLeaseMs,
  });

  @Module({ imports: [HealthModule.forRoot(ctx.readiness, ctx.metrics)] })
  class RegistryModule {}

  const { app, port } = await startHttpService({ module: RegistryModule, port: config.registryPort, logger: ctx.logger });
  registry.start();
  ctx.logger.info({ port }, 'worker registry listening');
  return {
    registry,
    port,
    async stop() {
      await registry.stop();
      await app.close();
      await ctx.close();
    },
  };
}
