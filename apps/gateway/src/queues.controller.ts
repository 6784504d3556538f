import { Body, Controller, Get, Inject, Param, Put, Req } from '@nestjs/common';
import type { Request } from 'express';
import type { QueueView } from '@blixard/contracts';
import { LIMITS, NAME_PATTERN, ValidationError } from '@blixard/domain';
import { GATEWAY, GatewayDeps } from './deps';
import { AuditLog } from './audit-log';
import { RequireScope } from './auth';
import { ApiOperation, badEncoding, body, items, json, param, problem, ref, tooLarge } from './openapi/index';

/** Per-queue dispatch controls and fairness weights. */
@Controller('v1')
export class QueuesController {
  constructor(
    @Inject(GATEWAY) private readonly deps: GatewayDeps,
    private readonly audit: AuditLog,
  ) {}

  @Get('queues')
  @RequireScope('jobs:read')
  @ApiOperation({
    operationId: 'listQueues',
    summary: 'List queues',
    description: 'Every queue that has controls or jobs, by name.',
    tags: ['queues'],
    responses: { '200': json(items(ref('Queue')), 'The queues.') },
  })
  async list(): Promise<{ items: QueueView[] }> {
    return { items: await this.deps.queues.list() };
  }

  @Get('queues/:name')
  @RequireScope('jobs:read')
  @ApiOperation({
    operationId: 'getQueue',
    summary: 'Get a queue',
    description: 'Any well-formed name answers: a queue without controls has none (no 404).',
    tags: ['queues'],
    pathParameters: { name: param('QueueName') },
    responses: {
      '200': json(ref('Queue'), 'The queue, its controls and its job counts.'),
      '400': problem(`The name is not a queue name, or ${badEncoding}.`),
    },
  })
  get(@Param('name') name: string): Promise<QueueView> {
    return this.deps.queues.get(queueName(name));
  }

  /** `{ paused, maxConcurrency, rateLimit: {n, intervalMs}, keyConcurrency, keyRateLimit }`; null removes a limit. */
  @Put('queues/:name')
  // Queues and fairness weights are shared by every tenant: changing them is the operator's.
  @RequireScope('admin')
  @ApiOperation({
    operationId: 'updateQueue',
    summary: "Change a queue's controls",
    description: 'Fields given are changed, others kept; `null` removes a limit. Pausing stops dispatch, never running work.',
    tags: ['queues'],
    pathParameters: { name: param('QueueName') },
    requestBody: body(ref('QueueControls')),
    responses: {
      '200': json(ref('Queue'), 'The queue with its new controls.'),
      '400': problem(`The name is not a queue name, the body is invalid, or ${badEncoding}.`),
      '413': tooLarge,
    },
  })
  async update(@Param('name') name: string, @Body() body: unknown, @Req() req: Request): Promise<QueueView> {
    const view = await this.deps.queues.update(queueName(name), body);
    await this.audit.record(req, 'queue.update', { type: 'queue', id: name }, { changes: body as Record<string, unknown> });
    // Resumed or widened: what waits may go now.
    this.deps.wakeScheduler('dispatch');
    return view;
  }

  @Get('fairness')
  @RequireScope('jobs:read')
  @ApiOperation({
    operationId: 'listFairnessWeights',
    summary: 'List fairness weights',
    description: 'Keys given a weight, by key; any other key weighs 1.',
    tags: ['queues'],
    responses: { '200': json(items(ref('FairnessWeight')), 'The weights.') },
  })
  async weights(): Promise<{ items: { key: string; weight: number }[] }> {
    return { items: await this.deps.queues.weights() };
  }

  /** `{ weight }`: a fairness key of weight 3 gets three dispatches to another's one. */
  @Put('fairness/:key')
  @RequireScope('admin')
  @ApiOperation({
    operationId: 'setFairnessWeight',
    summary: "Set a fairness key's weight",
    description: 'A key of weight 3 gets three dispatches to the one of a key of weight 1.',
    tags: ['queues'],
    pathParameters: { key: param('FairnessKey') },
    requestBody: body(ref('SetFairnessWeight')),
    responses: {
      '200': json(ref('FairnessWeight'), 'The key and its weight.'),
      '400': problem(`The key is longer than ${LIMITS.keyLength} characters, the body is invalid, or ${badEncoding}.`),
      '413': tooLarge,
    },
  })
  async setWeight(@Param('key') key: string, @Body() body: unknown, @Req() req: Request): Promise<{ key: string; weight: number }> {
    if (key.length === 0 || key.length > 200) throw new ValidationError([{ field: 'key', message: 'must be 1-200 characters' }]);
    const result = await this.deps.queues.setWeight(key, body);
    await this.audit.record(req, 'fairness.update', { type: 'fairness_key', id: key }, { weight: result.weight });
    return result;
  }
}

function queueName(name: string): string {
  if (!NAME_PATTERN.test(name)) throw new ValidationError([{ field: 'name', message: 'is not a queue name' }]);
  return name;
}
