import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Req } from '@nestjs/common';
import type { Request } from 'express';
import type { ScheduleView } from '@blixard/contracts';
import { isUuid, validateSchedule, ValidationError } from '@blixard/domain';
import { GATEWAY, GatewayDeps } from './deps';
import { principalOf, RequireScope } from './auth';
import { ApiOperation, badEncoding, body, items, json, param, problem, ref, tooLarge } from './openapi/index';

/** Cron schedules: each fire time makes exactly one job from the template. */
@Controller('v1/schedules')
export class SchedulesController {
  constructor(@Inject(GATEWAY) private readonly deps: GatewayDeps) {}

  @Post()
  @RequireScope('jobs:write')
  @ApiOperation({
    operationId: 'createSchedule',
    summary: 'Create a cron schedule',
    tags: ['schedules'],
    requestBody: body(ref('CreateSchedule')),
    responses: {
      '201': json(ref('Schedule'), 'The schedule, with its next fire time.'),
      '400': problem('The body is not valid JSON or breaks a rule (template errors are reported under `template.<field>`).'),
      '413': tooLarge,
    },
  })
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
  @ApiOperation({
    operationId: 'listSchedules',
    summary: 'List schedules, oldest first',
    tags: ['schedules'],
    responses: { '200': json(items(ref('Schedule')), 'The schedules.') },
  })
  async list(@Req() req: Request): Promise<{ items: ScheduleView[] }> {
    return { items: await this.deps.schedules.list(principalOf(req).tenant) };
  }

  @Get(':id')
  @RequireScope('jobs:read')
  @ApiOperation({
    operationId: 'getSchedule',
    summary: 'Get a schedule',
    tags: ['schedules'],
    pathParameters: { id: param('ScheduleId') },
    responses: {
      '200': json(ref('Schedule'), 'The schedule.'),
      '400': problem(`The id is not a UUID, or ${badEncoding}.`),
      '404': problem('No such schedule.'),
    },
  })
  get(@Param('id') id: string, @Req() req: Request): Promise<ScheduleView> {
    return this.deps.schedules.get(scheduleId(id), principalOf(req).tenant);
  }

  @Post(':id/pause')
  @HttpCode(200)
  @RequireScope('jobs:write')
  @ApiOperation({
    operationId: 'pauseSchedule',
    summary: 'Pause a schedule',
    description: 'Stops making jobs; pausing a paused schedule changes nothing.',
    tags: ['schedules'],
    pathParameters: { id: param('ScheduleId') },
    responses: {
      '200': json(ref('Schedule'), 'The paused schedule.'),
      '400': problem(`The id is not a UUID, or ${badEncoding}.`),
      '404': problem('No such schedule.'),
    },
  })
  pause(@Param('id') id: string, @Req() req: Request): Promise<ScheduleView> {
    return this.deps.schedules.setPaused(scheduleId(id), true, new Date(), principalOf(req).tenant);
  }

  @Post(':id/resume')
  @HttpCode(200)
  @RequireScope('jobs:write')
  @ApiOperation({
    operationId: 'resumeSchedule',
    summary: 'Resume a schedule',
    description: 'Fires again from now: fire times missed while paused are not caught up.',
    tags: ['schedules'],
    pathParameters: { id: param('ScheduleId') },
    responses: {
      '200': json(ref('Schedule'), 'The resumed schedule.'),
      '400': problem(`The id is not a UUID, or ${badEncoding}.`),
      '404': problem('No such schedule.'),
    },
  })
  async resume(@Param('id') id: string, @Req() req: Request): Promise<ScheduleView> {
    const view = await this.deps.schedules.setPaused(scheduleId(id), false, new Date(), principalOf(req).tenant);
    this.deps.wakeScheduler('reconcile');
    return view;
  }

  @Delete(':id')
  @HttpCode(204)
  @RequireScope('jobs:write')
  @ApiOperation({
    operationId: 'deleteSchedule',
    summary: 'Delete a schedule',
    description: 'No further jobs are made; jobs it made already are left alone.',
    tags: ['schedules'],
    pathParameters: { id: param('ScheduleId') },
    responses: {
      '204': { description: 'Deleted.' },
      '400': problem(`The id is not a UUID, or ${badEncoding}.`),
      '404': problem('No such schedule.'),
    },
  })
  async remove(@Param('id') id: string, @Req() req: Request): Promise<void> {
    await this.deps.schedules.delete(scheduleId(id), principalOf(req).tenant);
  }
}

function scheduleId(id: string): string {
  if (!isUuid(id)) throw new ValidationError([{ field: 'id', message: 'is not a schedule id (a UUID)' }]);
  return id.toLowerCase();
}
