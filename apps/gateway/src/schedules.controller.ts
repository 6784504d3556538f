import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post } from '@nestjs/common';
import type { ScheduleView } from '@blixard/contracts';
import { isUuid, validateSchedule, ValidationError } from '@blixard/domain';
import { GATEWAY, GatewayDeps } from './deps';

/** Cron schedules: each fire time makes exactly one job from the template. */
@Controller('v1/schedules')
export class SchedulesController {
  constructor(@Inject(GATEWAY) private readonly deps: GatewayDeps) {}

  @Post()
  async create(@Body() body: unknown): Promise<ScheduleView> {
    const view = await this.deps.schedules.create(validateSchedule(body));
    this.deps.wakeScheduler('reconcile');
    return view;
  }

  @Get()
  async list(): Promise<{ items: ScheduleView[] }> {
    return { items: await this.deps.schedules.list() };
  }

  @Get(':id')
  get(@Param('id') id: string): Promise<ScheduleView> {
    return this.deps.schedules.get(scheduleId(id));
  }

  @Post(':id/pause')
  @HttpCode(200)
  pause(@Param('id') id: string): Promise<ScheduleView> {
    return this.deps.schedules.setPaused(scheduleId(id), true);
  }

  @Post(':id/resume')
  @HttpCode(200)
  async resume(@Param('id') id: string): Promise<ScheduleView> {
    const view = await this.deps.schedules.setPaused(scheduleId(id), false);
    this.deps.wakeScheduler('reconcile');
    return view;
  }

  @Delete(':id')
  @HttpCode(204)
  async remove(@Param('id') id: string): Promise<void> {
    await this.deps.schedules.delete(scheduleId(id));
  }
}

function scheduleId(id: string): string {
  if (!isUuid(id)) throw new ValidationError([{ field: 'id', message: 'is not a schedule id (a UUID)' }]);
  return id.toLowerCase();
}
