import { Controller, Get, HttpCode, Inject, Param, Post, Query, Req } from '@nestjs/common';
import type { Request } from 'express';
import type { WorkerView } from '@blixard/contracts';
import { ConflictError, FieldError, NotFoundError, ValidationError } from '@blixard/domain';
import type { WorkerStats } from '@blixard/db';
import { GATEWAY, GatewayDeps } from './deps';
import { AuditLog } from './audit-log';
import { RequireScope } from './auth';
import { ApiOperation, json, param, problem, ref } from './openapi/index';

const WORKER_STATUSES = ['ONLINE', 'DRAINING', 'OFFLINE', 'LOST'] as const;

@Controller('v1/workers')
export class WorkersController {
  constructor(
    @Inject(GATEWAY) private readonly deps: GatewayDeps,
    private readonly audit: AuditLog,
  ) {}

  /** The fleet: backend, status, capacity, running attempts, last heartbeat. */
  @Get()
  @RequireScope('workers:read')
  @ApiOperation({
    operationId: 'listWorkers',
    summary: 'List workers',
    description: 'The fleet, by backend then start time: status, capacity, running attempts, last heartbeat.',
    tags: ['workers'],
    parameters: [
      { name: 'backend', in: 'query', description: 'Only workers of this backend.', schema: { type: 'string' } },
      {
        name: 'status',
        in: 'query',
        description: 'Only workers in these statuses, separated by commas.',
        schema: { type: 'array', items: ref('WorkerStatus') },
        style: 'form',
        explode: false,
      },
    ],
    responses: {
      '200': json({ type: 'array', items: ref('Worker') }, 'The workers.'),
      '400': problem('`status` names an unknown status, or `backend` is given twice.'),
    },
  })
  list(@Query() query: Record<string, unknown>): Promise<WorkerView[]> {
    const errors: FieldError[] = [];
    // `status` may repeat or be comma-separated; `backend` is given once.
    const statuses = (Array.isArray(query.status) ? query.status : query.status === undefined ? [] : [query.status])
      .flatMap((s) => String(s).split(','))
      .filter(Boolean);
    const bad = statuses.filter((s) => !WORKER_STATUSES.includes(s as never));
    if (bad.length > 0) errors.push({ field: 'status', message: `${bad.map((b) => JSON.stringify(b)).join(', ')} not among ${WORKER_STATUSES.join(', ')}` });
    if (query.backend !== undefined && typeof query.backend !== 'string') errors.push({ field: 'backend', message: 'must be given once' });
    for (const k of Object.keys(query)) if (k !== 'status' && k !== 'backend') errors.push({ field: k, message: 'is not a known query parameter' });
    if (errors.length > 0) throw new ValidationError(errors);
    return this.deps.workers.list({
      backend: query.backend as string | undefined,
      status: statuses.length > 0 ? (statuses as (typeof WORKER_STATUSES)[number][]) : undefined,
    });
  }

  /** Workers by status, slots online and in use, per backend. */
  @Get('stats')
  @RequireScope('workers:read')
  @ApiOperation({
    operationId: 'workerStats',
    summary: 'Workers by status, slots online and in use, per backend',
    tags: ['workers'],
    responses: { '200': json(ref('WorkerStats'), 'The fleet in numbers.') },
  })
  stats(): Promise<WorkerStats> {
    return this.deps.workers.stats();
  }

  /**
   * Drains a worker: it stops taking work, finishes what it runs (past DRAIN_TIMEOUT_MS it hands
   * the rest back for retry), goes OFFLINE and exits. 202: the drain has been asked for.
   */
  @Post(':id/drain')
  @HttpCode(202)
  @RequireScope('workers:admin')
  @ApiOperation({
    operationId: 'drainWorker',
    summary: 'Drain a worker: it stops taking work, finishes (or past DRAIN_TIMEOUT_MS hands back) what it runs, goes OFFLINE and exits',
    tags: ['workers'],
    pathParameters: { id: param('WorkerId') },
    responses: {
      '202': json(ref('Worker'), 'The drain was asked for; the worker as it was.'),
      '400': problem('The id is not valid percent-encoding.'),
      '404': problem('No such worker.'),
      '409': problem('The worker is OFFLINE or LOST.'),
    },
  })
  async drain(@Param('id') id: string, @Req() req: Request): Promise<WorkerView> {
    const worker = await this.deps.workers.get(id);
    if (!worker) throw new NotFoundError('worker', id);
    if (worker.status !== 'ONLINE' && worker.status !== 'DRAINING') {
      throw new ConflictError('invalid_transition', `worker ${id} is ${worker.status} and cannot be drained`);
    }
    this.deps.drainWorker(id);
    await this.audit.record(req, 'worker.drain', { type: 'worker', id });
    return worker;
  }

  @Get(':id')
  @RequireScope('workers:read')
  @ApiOperation({
    operationId: 'getWorker',
    summary: 'Get a worker',
    tags: ['workers'],
    pathParameters: { id: param('WorkerId') },
    responses: {
      '200': json(ref('Worker'), 'The worker.'),
      '400': problem('The id is not valid percent-encoding.'),
      '404': problem('No such worker.'),
    },
  })
  async get(@Param('id') id: string): Promise<WorkerView> {
    const worker = await this.deps.workers.get(id);
    if (!worker) throw new NotFoundError('worker', id);
    return worker;
  }
}
