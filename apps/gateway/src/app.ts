import { Module } from '@nestjs/common';
import { ApiKeyStore, AuditStore, JobQueries, JobStore, LogStore, QueueStore, ScheduleStore, WebhookStore, WorkerStore } from '@blixard/db';
import { jsonDepth, MAX_JSON_DEPTH, payloadLimits, type JobSubmissionInput, type Validator } from '@blixard/domain';
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
import { KeysController } from './keys.controller';
import { DocsController } from './docs.controller';
import { AuthGuard } from './auth';
import { RateLimiter, TenantQuota } from './limits';
import { DiscoveryModule } from '@nestjs/core';
import type { NextFunction, Request, Response } from 'express';
import { problem, sendProblem } from './problem';

export interface RunningGateway {
  port: number;
  url: string;
  stop(): Promise<void>;
}

export async function startGateway(
  env: Record<string, string | undefined> = process.env,
  extraValidators: Validator<JobSubmissionInput>[] = [],
): Promise<RunningGateway> {
  const ctx = await createServiceContext('gateway', ['gatewayPort', 'maxBodyBytes', 'claimLeaseMs', 'runLeaseMs', 'idempotencyWindowMs', 'payloadValidateTimeoutMs', 'sseHeartbeatMs', 'webhookAllowPrivate', 'logMaxBytesPerAttempt', 'authDisabled', 'rateLimitPerSecond', 'rateLimitBurst', 'tenantMaxWaitingJobs', 'maxPayloadBytes', 'publicDocs'] as const, env);
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
  if (config.authDisabled) {
    ctx.logger.warn(
      '!!! AUTH_DISABLED=true: this gateway answers EVERY request WITHOUT an API key, as tenant "default" with every scope (admin). ' +
        'For local development only: never expose it. Unset AUTH_DISABLED and create keys with `blixard keys create`. !!!',
    );
  }
  if (config.publicDocs) {
    ctx.logger.info('PUBLIC_DOCS=true: /docs and /openapi.json answer without an API key (every other route but health and metrics still needs one)');
  }
  const queries = new JobQueries(ctx.db);
  const keys = new ApiKeyStore(ctx.db);
  const deps: GatewayDeps = {
    store,
    schedules: new ScheduleStore(ctx.db, store),
    queues: new QueueStore(ctx.db),
    queries,
    workers: new WorkerStore(ctx.db, { subjects: s, source: '/blixard/gateway', runLeaseMs: config.runLeaseMs }),
    // Third parties' validators run after the built-in ones, with the payload's size and depth limit.
    extraValidators: [payloadLimits(config.maxPayloadBytes, MAX_JSON_DEPTH), ...extraValidators],
    keys,
    quota: new TenantQuota(config.tenantMaxWaitingJobs, (tenant, upTo) => queries.waitingCount(tenant, upTo)),
    authDisabled: config.authDisabled,
    publicDocs: config.publicDocs,
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
    // Discovery: the OpenAPI document is built from every controller the app routes.
    imports: [HealthModule.forRoot(ctx.readiness, ctx.metrics), DiscoveryModule],
    controllers: [JobsController, WorkersController, SchedulesController, QueuesController, OpenApiController, EventsController, LogsController, WebhooksController, AuditController, KeysController, DocsController],
    providers: [{ provide: GATEWAY, useValue: deps }, AuditLog],
  })
  class GatewayModule {}

  const { app, port } = await startHttpService({
    module: GatewayModule,
    port: config.gatewayPort,
    logger: ctx.logger,
    bodyLimitBytes: config.maxBodyBytes,
    configure: (app) => {
      // A body nested deeper than anything the API takes is refused before any code walks it
      // (recursive walkers, hashing, JSON columns): a hostile one must not exhaust the stack.
      app.use((req: Request, res: Response, next: NextFunction) => {
        if (req.body !== null && typeof req.body === 'object' && jsonDepth(req.body, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
          sendProblem(res, problem(400, 'validation_failed', `the request body nests deeper than ${MAX_JSON_DEPTH} levels`, req.originalUrl, [{ field: '', message: `nests deeper than ${MAX_JSON_DEPTH} levels` }]));
          return;
        }
        // Postgres text and jsonb cannot hold U+0000 or a lone UTF-16 surrogate: refused here, by
        // name, rather than failing deep in a query.
        const bad = unstorableText(req);
        if (bad !== null) {
          sendProblem(res, problem(400, 'validation_failed', `${bad || 'the request'} holds a NUL character or an unpaired surrogate`, req.originalUrl, [{ field: bad, message: 'holds a NUL character or an unpaired surrogate' }]));
          return;
        }
        next();
      });
      app.use(problemMiddleware(ctx.logger));
      app.useGlobalFilters(new ProblemFilter(ctx.logger));
      app.useGlobalGuards(new AuthGuard({ disabled: config.authDisabled, publicDocs: config.publicDocs, keys, rateLimiter: new RateLimiter(config.rateLimitPerSecond, config.rateLimitBurst) }));
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

const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Where the path, query or JSON body holds text Postgres cannot store (`''`: the path); null when nowhere. */
export function unstorableText(req: Request): string | null {
  let path: string;
  try {
    path = decodeURIComponent(req.path);
  } catch {
    return null; // Express answers a malformed path itself (400)
  }
  if (UNSTORABLE.test(path)) return '';
  const stack: [unknown, string][] = [[req.query, 'query'], [req.body, 'body']];
  while (stack.length > 0) {
    const [v, at] = stack.pop()!;
    if (typeof v === 'string') {
      if (UNSTORABLE.test(v)) return at;
    } else if (v !== null && typeof v === 'object') {
      for (const [k, child] of Object.entries(v)) {
        if (UNSTORABLE.test(k)) return `${at}.${k.replace(UNSTORABLE, '?')}`;
        stack.push([child, at === 'body' ? k : `${at}.${k}`]);
      }
    }
  }
  return null;
}
