import { Controller, Get, Inject, Param, Query } from '@nestjs/common';
import type { WorkerView } from '@blixard/contracts';
import { NotFoundError, ValidationError } from '@blixard/domain';
import { GATEWAY, GatewayDeps } from './deps';

const WORKER_STATUSES = ['ONLINE', 'DRAINING', 'OFFLINE', 'LOST'] as const;

@Controller('v1/workers')
export class WorkersController {
  constructor(@Inject(GATEWAY) private readonly deps: GatewayDeps) {}

  /** The fleet: backend, status, capacity, running attempts, last heartbeat. */
  @Get()
  list(@Query('backend') backend?: string, @Query('status') status?: string): Promise<WorkerView[]> {
    const statuses = status?.split(',').filter(Boolean);
    const bad = statuses?.filter((s) => !WORKER_STATUSES.includes(s as never)) ?? [];
    if (bad.length > 0 || (backend !== undefined && typeof backend !== 'string')) {
      throw new ValidationError([{ field: 'status', message: `must be among ${WORKER_STATUSES.join(', ')}` }]);
    }
    return this.deps.workers.list({ backend, status: statuses as (typeof WORKER_STATUSES)[number][] | undefined });
  }

  @Get(':id')
  async get(@Param('id') id: string): Promise<WorkerView> {
    const worker = await this.deps.workers.get(id);
    if (!worker) throw new NotFoundError('worker', id);
    return worker;
  }
}
