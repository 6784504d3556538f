import { Module } from '@nestjs/common';
import { JobQueries, JobStore, QueueStore, ScheduleStore, WorkerStore } from '@blixard/db';
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

export interface RunningGateway {
  port: number;
  url: string;
  stop(): Promise<void>;
}

export async function startGateway(
  env: Record<string, string | undefined> = process.env,
  extraValidators: Validator<JobSubmissionInput>[] = [],
): Promise<RunningGateway> {
  const ctx = await createServiceContext('gateway', ['gatewayPort', 'maxBodyBytes', 'claimLeaseMs', 'runLeaseMs', 'idempotencyWindowMs'] as const, env);
  const { config, bus } = ctx;
  const s = bus.subjects;
  const store = new JobStore(ctx.db, {
    subjects: s,
    source: '/blixard/gateway',
    claimLeaseMs: config.claimLeaseMs,
    runLeaseMs: config.runLeaseMs,
    idempotencyWindowMs: config.idempotencyWindowMs,
  });
  const deps: GatewayDeps = {
    store,
    schedules: new ScheduleStore(ctx.db, store),
    queues: new QueueStore(ctx.db),
    queries: new JobQueries(ctx.db),
    workers: new WorkerStore(ctx.db, { subjects: s, source: '/blixard/gateway', runLeaseMs: config.runLeaseMs }),
    extraValidators,
    wakeScheduler: (what = 'dispatch') => bus.nc.publish(what === 'dispatch' ? s.wakeDispatch : s.wakeReconcile),
    drainWorker: (workerId) => bus.nc.publish(s.control(workerId), encodeJson({ type: 'drain' })),
    cancelOnWorker: (workerId, jobId, attempt) => bus.nc.publish(s.control(workerId), encodeJson({ type: 'cancel', jobId, attempt })),
  };

  @Module({
    imports: [HealthModule.forRoot(ctx.readiness, ctx.metrics)],
    controllers: [JobsController, WorkersController, SchedulesController, QueuesController, OpenApiController],
    providers: [{ provide: GATEWAY, useValue: deps }],
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
      await app.close();
      await ctx.close();
    },
  };
}
