import { Module } from '@nestjs/common';
import { AuditStore, JobQueries, JobStore, LogStore, QueueStore, ScheduleStore, WebhookStore, WorkerStore } from '@blixard/db';
import type { JobSubmissionInput, Validator } from '@blixard/domain';
import { encodeJson } from '@blixard/messaging';
import { createServiceContext, HealthModule, startHttpService } from '@blixard/service';
import { GATEWAY, GatewayDeps } from './deps';
import { JobsController } from './jobs.controller';
import { problemMiddleware, ProblemFilter } from './problem';
import { WorkersController } from './workers.controller';
import { SchedulesController } from './schedules.controller';
import { QueuesController } from './queues.controller';
import { OpenApiController } from './openapi.controller';
import { AuditLog } from './audit-log';
import { AuditController } from './audit.controller';
import { EventsController } from './events.controller';
import { LogsController } from './logs.controller';
import { WebhooksController } from './webhooks.controller';

export interface RunningGateway {
  port: number;
  url: string;
  stop(): Promise<void>;
}

export async function startGateway(
  env: Record<string, string | undefined> = process.env,
  extraValidators: Validator<JobSubmissionInput>[] = [],
): Promise<RunningGateway> {
  const ctx = await createServiceContext('gateway', ['gatewayPort', 'maxBodyBytes', 'claimLeaseMs', 'runLeaseMs', 'idempotencyWindowMs', 'payloadValidateTimeoutMs', 'sseHeartbeatMs', 'webhookAllowPrivate', 'logMaxBytesPerAttempt'] as const, env);
  const { config, bus } = ctx;
  const s = bus.subjects;
  const store = new JobStore(ctx.db, {
    subjects: s,
    source: '/blixard/gateway',
    claimLeaseMs: config.claimLeaseMs,
    runLeaseMs: config.runLeaseMs,
    idempotencyWindowMs: config.idempotencyWindowMs,
  });
  const submitted = ctx.metrics.counter('blixard_jobs_submitted_total', 'Jobs submitted (idempotent replays not counted)', ['backend', 'queue'] as const);
  const deps: GatewayDeps = {
    store,
    schedules: new ScheduleStore(ctx.db, store),
    queues: new QueueStore(ctx.db),
    queries: new JobQueries(ctx.db),
    workers: new WorkerStore(ctx.db, { subjects: s, source: '/blixard/gateway', runLeaseMs: config.runLeaseMs }),
    extraValidators,
    wakeScheduler: (what = 'dispatch') => bus.nc.publish(what === 'dispatch' ? s.wakeDispatch : s.wakeReconcile),
    jobSubmitted: (job) => {
      submitted.inc({ backend: job.backend, queue: job.queue });
      ctx.logger.info({ jobId: job.id, backend: job.backend, queue: job.queue }, 'job submitted');
    },
    validatePayload: async (backend, payload) => {
      try {
        const reply = await bus.nc.request(s.validate(backend), encodeJson(payload), { timeout: config.payloadValidateTimeoutMs });
        const answer = JSON.parse(new TextDecoder().decode(reply.data)) as { ok: boolean; message?: string };
        return answer.ok ? null : (answer.message ?? 'the backend rejected the payload');
      } catch {
        // No executor of the backend online, or none answered in time.
        return null;
      }
    },
    drainWorker: (workerId) => bus.nc.publish(s.control(workerId), encodeJson({ type: 'drain' })),
    cancelOnWorker: (workerId, jobId, attempt) => bus.nc.publish(s.control(workerId), encodeJson({ type: 'cancel', jobId, attempt })),
    live: {
      bus,
      logs: new LogStore(ctx.db, { maxBytesPerAttempt: config.logMaxBytesPerAttempt }),
      webhooks: new WebhookStore(ctx.db, { subjects: s, source: '/blixard/gateway' }),
      audit: new AuditStore(ctx.db),
      logger: ctx.logger,
      sseHeartbeatMs: config.sseHeartbeatMs,
      webhookAllowPrivate: config.webhookAllowPrivate,
      openStreams: new Set(),
    },
  };

  @Module({
    imports: [HealthModule.forRoot(ctx.readiness, ctx.metrics)],
    controllers: [JobsController, WorkersController, SchedulesController, QueuesController, OpenApiController, EventsController, LogsController, WebhooksController, AuditController],
    providers: [{ provide: GATEWAY, useValue: deps }, AuditLog],
  })
  class GatewayModule {}

  const { app, port } = await startHttpService({
    module: GatewayModule,
    port: config.gatewayPort,
    logger: ctx.logger,
    bodyLimitBytes: config.maxBodyBytes,
    configure: (app) => {
      app.use(problemMiddleware(ctx.logger));
      app.useGlobalFilters(new ProblemFilter(ctx.logger));
    },
  });
  ctx.logger.info({ port }, 'gateway listening');
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    async stop() {
      for (const stream of [...deps.live.openStreams]) stream.end();
      await app.close();
      await ctx.close();
    },
  };
}
