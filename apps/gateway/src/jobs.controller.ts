import { Body, Controller, Get, Headers, HttpCode, Inject, Param, Post, Query, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import type { JobPage, JobView, StatsView } from '@blixard/contracts';
import { JobQueries, JobStore, requestHash, toJobView } from '@blixard/db';
import { FieldError, isUuid, JOB_STATUSES, JobStatus, NotFoundError, validateSubmission, ValidationError, MAX_PAGE } from './validation';
import { GATEWAY, GatewayDeps } from './deps';
import { AuditLog } from './audit-log';
import { principalOf, RequireScope, requireScope } from './auth';
import { ApiOperation, badEncoding, body, json, param, problem, ref, tooLarge } from './openapi/index';
import { LIMITS } from '@blixard/domain';

@Controller('v1')
export class JobsController {
  private readonly store: JobStore;
  private readonly queries: JobQueries;

  constructor(
    @Inject(GATEWAY) private readonly deps: GatewayDeps,
    private readonly audit: AuditLog,
  ) {
    this.store = deps.store;
    this.queries = deps.queries;
  }

  /**
   * Submits a job: written with its `created` event in one transaction, answered 201 before any
   * NATS hop. With an idempotency key, a repeat of the same request answers 200 with the
   * original job and a different request under the same key 409.
   */
  @Post('jobs')
  @RequireScope('jobs:write')
  @ApiOperation({
    operationId: 'submitJob',
    summary: 'Submit a job',
    description:
      'Stores the job with its `created` event in one transaction and answers before any dispatch. ' +
      'With an idempotency key (header or body), repeating the same request returns the original job with 200; ' +
      'a different request under the same key in the same queue is a 409. A key is remembered for IDEMPOTENCY_WINDOW_MS.',
    tags: ['jobs'],
    parameters: [
      {
        name: 'Idempotency-Key',
        in: 'header',
        required: false,
        description: 'Same as the body field `idempotencyKey`; when both are given they must be equal.',
        schema: { type: 'string', minLength: 1, maxLength: LIMITS.idempotencyKeyLength },
      },
    ],
    requestBody: body(ref('SubmitJob')),
    responses: {
      '201': json(ref('Job'), 'Created: the new job (PENDING, SCHEDULED for a later run-at, or BLOCKED on its parents).'),
      '200': json(ref('Job'), 'An idempotent replay: the job the same request made earlier.'),
      '400': problem('The body is not valid JSON or breaks a rule (`validation_failed`, every bad field in `errors`), a parent in `dependsOn` does not exist, or the header and body idempotency keys differ.'),
      '409': problem('The idempotency key was used for a different request (`idempotency_key_reused`).'),
      '413': tooLarge,
    },
  })
  async submit(@Body() body: unknown, @Headers('idempotency-key') headerKey: string | undefined, @Res({ passthrough: true }) res: Response, @Req() req: Request): Promise<JobView> {
    const principal = principalOf(req);
    const input = withIdempotencyHeader(body, headerKey);
    const submission = validateSubmission(input, this.deps.extraValidators);
    // Fair shares are per tenant unless the client names its own fairness key.
    if ((input as { fairnessKey?: unknown }).fairnessKey === undefined) submission.fairnessKey = principal.tenant;
    // The three checks go out together (each is a round trip); their errors keep this precedence.
    const [known, invalid, overQuota] = await Promise.all([
      (input as { allowUnknownBackend?: boolean }).allowUnknownBackend === true || this.deps.workers.isKnownBackend(submission.backend),
      this.deps.validatePayload(submission.backend, submission.payload),
      this.deps.quota.check(principal.tenant).then(() => null, (err: unknown) => err),
    ]);
    if (!known) {
      const backends = await this.deps.workers.knownBackends();
      throw new ValidationError([
        {
          field: 'backend',
          message: `no worker has ever registered backend ${JSON.stringify(submission.backend)} (known: ${backends.length > 0 ? backends.join(', ') : 'none yet'}); set allowUnknownBackend to submit anyway`,
        },
      ]);
    }
    if (invalid !== null) throw new ValidationError([{ field: 'payload', message: invalid }]);
    if (overQuota !== null) throw overQuota;
    const { job, created } = await this.store.submit(submission, requestHash({ ...(input as object), idempotencyKey: undefined }), new Date(), {
      tenant: principal.tenant,
      submittedBy: isUuid(principal.keyId) ? principal.keyId : null,
    });
    res.status(created ? 201 : 200);
    if (created) {
      this.deps.quota.added(principal.tenant);
      this.deps.wakeScheduler();
      this.deps.jobSubmitted(job);
      await this.audit.record(req, 'job.submit', { type: 'job', id: job.id }, { backend: job.backend, queue: job.queue });
    }
    return toJobView(job);
  }

  @Get('jobs')
  @RequireScope('jobs:read')
  @ApiOperation({
    operationId: 'listJobs',
    summary: 'List jobs, newest first',
    tags: ['jobs'],
    parameters: [
      {
        name: 'status',
        in: 'query',
        description: 'Only jobs in these statuses; repeat the parameter or separate with commas.',
        schema: { type: 'array', items: ref('JobStatus') },
        style: 'form',
        explode: true,
      },
      {
        name: 'label',
        in: 'query',
        description: 'Only jobs carrying every one of these labels, each as `key=value`; repeat for several.',
        schema: { type: 'array', items: { type: 'string', pattern: '^[^=]+=' } },
        style: 'form',
        explode: true,
      },
      { name: 'backend', in: 'query', description: 'Only jobs of this backend.', schema: { type: 'string' } },
      { name: 'queue', in: 'query', description: 'Only jobs of this queue.', schema: { type: 'string' } },
      { name: 'limit', in: 'query', description: 'Page size.', schema: { type: 'integer', minimum: 1, maximum: MAX_PAGE, default: 50 } },
      { name: 'cursor', in: 'query', description: 'The `nextCursor` of the previous page.', schema: { type: 'string' } },
    ],
    responses: {
      '200': json(ref('JobPage'), 'A page of jobs.'),
      '400': problem('A parameter is invalid, given twice where once is allowed, or unknown; or the cursor was not made by this API.'),
    },
  })
  async list(@Query() query: Record<string, unknown>, @Req() req: Request): Promise<JobPage> {
    const errors: FieldError[] = [];
    const status = listParam(query.status)
      .flatMap((s) => s.split(','))
      .filter(Boolean);
    for (const s of status) if (!JOB_STATUSES.includes(s as JobStatus)) errors.push({ field: 'status', message: `${JSON.stringify(s)} is not one of ${JOB_STATUSES.join(', ')}` });
    const labels: Record<string, string> = {};
    for (const l of listParam(query.label)) {
      const i = l.indexOf('=');
      if (i <= 0) errors.push({ field: 'label', message: `${JSON.stringify(l)} is not key=value` });
      else labels[l.slice(0, i)] = l.slice(i + 1);
    }
    let limit = 50;
    if (query.limit !== undefined) {
      limit = Number(query.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) errors.push({ field: 'limit', message: `must be an integer from 1 to ${MAX_PAGE}` });
    }
    for (const key of ['backend', 'queue', 'cursor'] as const) {
      if (query[key] !== undefined && typeof query[key] !== 'string') errors.push({ field: key, message: 'must be given once' });
    }
    const unknown = Object.keys(query).filter((k) => !['status', 'label', 'limit', 'backend', 'queue', 'cursor'].includes(k));
    for (const k of unknown) errors.push({ field: k, message: 'is not a known query parameter' });
    if (errors.length > 0) throw new ValidationError(errors);
    return this.queries.list(
      { status: status as JobStatus[], backend: query.backend as string | undefined, queue: query.queue as string | undefined, labels, tenant: principalOf(req).tenant },
      limit,
      query.cursor as string | undefined,
    );
  }

  @Get('jobs/:id')
  @RequireScope('jobs:read')
  @ApiOperation({
    operationId: 'getJob',
    summary: 'Get a job with its attempts and parents',
    tags: ['jobs'],
    pathParameters: { id: param('JobId') },
    responses: {
      '200': json(ref('Job'), 'The job, with `attempts` and `dependsOn`.'),
      '400': problem(`The id is not a UUID, or ${badEncoding}.`),
      '404': problem('No such job.'),
    },
  })
  async get(@Param('id') id: string, @Req() req: Request): Promise<JobView> {
    assertJobId(id);
    const job = await this.queries.get(id, principalOf(req).tenant);
    if (!job) throw new NotFoundError('job', id);
    return job;
  }

  /** Cancels a waiting job at once, a running one by telling its executor; 409 when finished. */
  @Post('jobs/:id/cancel')
  @HttpCode(200)
  @RequireScope('jobs:write')
  @ApiOperation({
    operationId: 'cancelJob',
    summary: 'Cancel a job',
    description: 'The job ends CANCELLED at once; the worker running its attempt, if any, is told to stop, and any later report of that attempt is ignored.',
    tags: ['jobs'],
    pathParameters: { id: param('JobId') },
    responses: {
      '200': json(ref('Job'), 'The cancelled job.'),
      '400': problem(`The id is not a UUID, or ${badEncoding}.`),
      '404': problem('No such job.'),
      '409': problem('The job already finished (`invalid_transition`).'),
    },
  })
  async cancel(@Param('id') id: string, @Req() req: Request): Promise<JobView> {
    assertJobId(id);
    await this.assertMayChange(req, id, 'cancelling a job another API key submitted');
    const { job, notify } = await this.store.cancel(id);
    if (notify) this.deps.cancelOnWorker(notify.workerId, id, notify.attempt);
    await this.audit.record(req, 'job.cancel', { type: 'job', id });
    return toJobView(job);
  }

  /** Gives a FAILED or CANCELLED job a new attempt budget (`{ "maxAttempts": n }` optional). */
  @Post('jobs/:id/retry')
  @HttpCode(200)
  @RequireScope('jobs:write')
  @ApiOperation({
    operationId: 'retryJob',
    summary: 'Retry a FAILED or CANCELLED job',
    description: 'Back to PENDING with a fresh budget of attempts; attempt numbers keep counting up.',
    tags: ['jobs'],
    pathParameters: { id: param('JobId') },
    requestBody: body(ref('RetryJob'), false),
    responses: {
      '200': json(ref('Job'), 'The job, PENDING again.'),
      '400': problem(`The id is not a UUID, the body is invalid, or ${badEncoding}.`),
      '404': problem('No such job.'),
      '409': problem('The job is neither FAILED nor CANCELLED (`invalid_transition`).'),
      '413': tooLarge,
    },
  })
  async retry(@Param('id') id: string, @Body() body: unknown, @Req() req: Request): Promise<JobView> {
    assertJobId(id);
    await this.assertMayChange(req, id, 'retrying a job another API key submitted');
    const attempts = optionalAttempts(body);
    const job = await this.store.redrive(id, attempts);
    this.deps.wakeScheduler();
    await this.audit.record(req, 'job.retry', { type: 'job', id }, attempts === undefined ? {} : { maxAttempts: attempts });
    return toJobView(job);
  }

  /** Redrives many: `{ "status": ["FAILED"], "backend"?: "...", "queue"?: "...", "limit"?: 1000 }`. */
  @Post('jobs/retry')
  @HttpCode(200)
  @RequireScope('jobs:admin')
  @ApiOperation({
    operationId: 'retryJobs',
    summary: 'Retry many FAILED or CANCELLED jobs',
    description: 'Retries matching jobs, oldest first, each with its original attempt budget; a job changed meanwhile is passed over.',
    tags: ['jobs'],
    requestBody: body(ref('RetryJobs'), false),
    responses: {
      '200': json(ref('RetriedJobs'), 'The ids of the jobs retried.'),
      '400': problem('The body is invalid.'),
      '413': tooLarge,
    },
  })
  async retryMany(@Body() body: unknown, @Req() req: Request): Promise<{ redriven: string[] }> {
    const errors: FieldError[] = [];
    const b = (typeof body === 'object' && body !== null && !Array.isArray(body) ? body : {}) as Record<string, unknown>;
    const status = b.status ?? ['FAILED'];
    if (!Array.isArray(status) || status.length === 0 || !status.every((s) => s === 'FAILED' || s === 'CANCELLED')) {
      errors.push({ field: 'status', message: 'must be a non-empty list of FAILED and/or CANCELLED' });
    }
    for (const key of ['backend', 'queue'] as const) if (b[key] !== undefined && typeof b[key] !== 'string') errors.push({ field: key, message: 'must be a string' });
    const limit = b.limit ?? 1000;
    if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > 10_000) errors.push({ field: 'limit', message: 'must be an integer from 1 to 10000' });
    for (const k of Object.keys(b)) if (!['status', 'backend', 'queue', 'limit'].includes(k)) errors.push({ field: k, message: 'is not a known field' });
    if (errors.length > 0) throw new ValidationError(errors);
    const redriven = await this.store.redriveMany(
      { status: status as ('FAILED' | 'CANCELLED')[], backend: b.backend as string | undefined, queue: b.queue as string | undefined, tenant: principalOf(req).tenant },
      limit as number,
    );
    if (redriven.length > 0) this.deps.wakeScheduler();
    await this.audit.record(req, 'jobs.retry', { type: 'jobs' }, { filter: { status, backend: b.backend, queue: b.queue, limit }, redriven: redriven.length });
    return { redriven };
  }

  @Get('stats')
  @RequireScope('jobs:read')
  @ApiOperation({
    operationId: 'getStats',
    summary: 'Count jobs by status and backend',
    tags: ['jobs'],
    responses: { '200': json(ref('Stats'), 'Job counts.') },
  })
  stats(@Req() req: Request): Promise<StatsView> {
    return this.queries.stats(principalOf(req).tenant);
  }

  /**
   * Another tenant's job is a 404 (its existence is not leaked); one of this tenant's that another
   * key submitted may be changed with jobs:admin only.
   */
  private async assertMayChange(req: Request, id: string, what: string): Promise<void> {
    const principal = principalOf(req);
    const owner = await this.queries.owner(id, principal.tenant);
    if (!owner) throw new NotFoundError('job', id);
    if (owner.submittedBy !== principal.keyId) requireScope(req, 'jobs:admin', what);
  }
}

function assertJobId(id: string): void {
  if (!isUuid(id)) throw new ValidationError([{ field: 'id', message: 'is not a job id (a UUID)' }]);
}

function optionalAttempts(body: unknown): number | undefined {
  if (body === undefined || body === null || (typeof body === 'object' && Object.keys(body).length === 0)) return undefined;
  const n = (body as { maxAttempts?: unknown }).maxAttempts;
  if (typeof body !== 'object' || Array.isArray(body) || Object.keys(body).some((k) => k !== 'maxAttempts') || typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 1000) {
    throw new ValidationError([{ field: 'maxAttempts', message: 'must be an integer from 1 to 1000 (the only field)' }]);
  }
  return n;
}

function listParam(value: unknown): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).map(String);
}

function withIdempotencyHeader(body: unknown, headerKey: string | undefined): unknown {
  if (headerKey === undefined || typeof body !== 'object' || body === null || Array.isArray(body)) return body;
  const fromBody = (body as { idempotencyKey?: unknown }).idempotencyKey;
  if (fromBody !== undefined && fromBody !== headerKey) {
    throw new ValidationError([{ field: 'idempotencyKey', message: 'differs from the Idempotency-Key header' }]);
  }
  return { ...body, idempotencyKey: headerKey };
}
