import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Req } from '@nestjs/common';
import type { Request } from 'express';
import type { ScheduleView } from '@blixard/contracts';
import { isUuid, validateSchedule, ValidationError } from '@blixard/domain';
import { GATEWAY, GatewayDeps } from './deps';
import { principalOf, RequireScope } from './auth';

/** Cron schedules: each fire time makes exactly one job from the template. */
@Controller('v1/schedules')
export class SchedulesController {
  constructor(@Inject(GATEWAY) private readonly deps: GatewayDeps) {}

  @Post()
  @RequireScope('jobs:write')
  async create(@Body() body: unknown, @Req() req: Request): Promise<ScheduleView> {
    const tenant = principalOf(req).tenant;
    const def = validateSchedule(body);
    // Its jobs share the tenant's fair share unless the template names a fairness key.
    if ((body as { template?: { fairnessKey?: unknown } }).template?.fairnessKey === undefined) def.template.fairnessKey = tenant;
    const view = await this.deps.schedules.create(def, new Date(), tenant);
    this.deps.wakeScheduler('reconcile');
    return view;
  }

  @Get()
  @RequireScope('jobs:read')
  async list(@Req() req: Request): Promise<{ items: ScheduleView[] }> {
    return { items: await this.deps.schedules.list(principalOf(req).tenant) };
  }

  @Get(':id')
  @RequireScope('jobs:read')
  get(@Param('id') id: string, @Req() req: Request): Promise<ScheduleView> {
    return this.deps.schedules.get(scheduleId(id), principalOf(req).tenant);
  }

  @Post(':id/pause')
  @HttpCode(200)
  @RequireScope('jobs:write')
  pause(@Param('id') id: string, @Req() req: Request): Promise<ScheduleView> {
    return this.deps.schedules.setPaused(scheduleId(id), true, new Date(), principalOf(req).tenant);
  }

  @Post(':id/resume')
  @HttpCode(200)
  @RequireScope('jobs:write')
  async resume(@Param('id') id: string, @Req() req: Request): Promise<ScheduleView> {
    const view = await this.deps.schedules.setPaused(scheduleId(id), false, new Date(), principalOf(req).tenant);
    this.deps.wakeScheduler('reconcile');
    return view;
  }

  @Delete(':id')
  @HttpCode(204)
  @RequireScope('jobs:write')
  async remove(@Param('id') id: string, @Req() req: Request): Promise<void> {
    await this.deps.schedules.delete(scheduleId(id), principalOf(req).tenant);
  }
}

function scheduleId(id: string): string {
  if (!isUuid(id)) throw new ValidationError([{ field: 'id', message: 'is not a schedule id (a UUID)' }]);
  return id.toLowerCase();
}
