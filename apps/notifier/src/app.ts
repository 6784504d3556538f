import { Module } from '@nestjs/common';
import { WebhookStore } from '@blixard/db';
import { createServiceContext, HealthModule, startHttpService } from '@blixard/service';
import { Notifier } from './notifier';

export interface RunningNotifier {
  notifier: Notifier;
  port: number;
  stop(): Promise<void>;
}

/** Starts the notifier service: webhook deliveries, plus /healthz, /readyz, /metrics. */
export async function startNotifier(env: Record<string, string | undefined> = process.env): Promise<RunningNotifier> {
  const ctx = await createServiceContext(
    'notifier',
    ['notifierPort', 'webhookAllowPrivate', 'webhookTimeoutMs', 'webhookRetryBaseMs', 'webhookRetryMaxMs', 'webhookRetryForMs', 'webhookDisableAfterMs', 'webhookConcurrency'] as const,
    env,
  );
  const { config } = ctx;
  const notifier = new Notifier({
    bus: ctx.bus,
    store: new WebhookStore(ctx.db, { subjects: ctx.bus.subjects, source: '/blixard/notifier' }),
    logger: ctx.logger,
    metrics: ctx.metrics,
    policy: {
      retryBaseMs: config.webhookRetryBaseMs,
      retryMaxMs: config.webhookRetryMaxMs,
      retryForMs: config.webhookRetryForMs,
      disableAfterMs: config.webhookDisableAfterMs,
    },
    timeoutMs: config.webhookTimeoutMs,
    allowPrivate: config.webhookAllowPrivate,
    concurrency: config.webhookConcurrency,
  });

  @Module({ imports: [HealthModule.forRoot(ctx.readiness, ctx.metrics)] })
  class NotifierModule {}

  const { app, port } = await startHttpService({ module: NotifierModule, port: config.notifierPort, logger: ctx.logger });
  await notifier.start();
  ctx.logger.info({ port }, 'notifier listening');
  return {
    notifier,
    port,
    async stop() {
      await notifier.stop();
      await app.close();
      await ctx.close();
    },
  };
}
