import { Body, Controller, Get, Inject, Param, Put, Req } from '@nestjs/common';
import type { Request } from 'express';
import type { QueueView } from '@blixard/contracts';
import { NAME_PATTERN, ValidationError } from '@blixard/domain';
import { GATEWAY, GatewayDeps } from './deps';
import { AuditLog } from './audit-log';
import { RequireScope } from './auth';

/** Per-queue dispatch controls and fairness weights. */
@Controller('v1')
export class QueuesController {
  constructor(
    @Inject(GATEWAY) private readonly deps: GatewayDeps,
    private readonly audit: AuditLog,
  ) {}

  @Get('queues')
  @RequireScope('jobs:read')
  async list(): Promise<{ items: QueueView[] }> {
    return { items: await this.deps.queues.list() };
  }

  @Get('queues/:name')
  @RequireScope('jobs:read')
  get(@Param('name') name: string): Promise<QueueView> {
    return this.deps.queues.get(queueName(name));
  }

  /** `{ paused, maxConcurrency, rateLimit: {n, intervalMs}, keyConcurrency, keyRateLimit }`; null removes a limit. */
  @Put('queues/:name')
  // Queues and fairness weights are shared by every tenant: changing them is the operator's.
  @RequireScope('admin')
  async update(@Param('name') name: string, @Body() body: unknown, @Req() req: Request): Promise<QueueView> {
    const view = await this.deps.queues.update(queueName(name), body);
    await this.audit.record(req, 'queue.update', { type: 'queue', id: name }, { changes: body as Record<string, unknown> });
    // Resumed or widened: what waits may go now.
    this.deps.wakeScheduler('dispatch');
    return view;
  }

  @Get('fairness')
  @RequireScope('jobs:read')
  async weights(): Promise<{ items: { key: string; weight: number }[] }> {
    return { items: await this.deps.queues.weights() };
  }

  /** `{ weight }`: a fairness key of weight 3 gets three dispatches to another's one. */
  @Put('fairness/:key')
  @RequireScope('admin')
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
