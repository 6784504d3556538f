import { Controller, Get, Inject, Query, Req } from '@nestjs/common';
import type { Request } from 'express';
import { principalOf, RequireScope } from './auth';
import { ApiOperation, json, problem, ref, timestamp } from './openapi/index';
import type { AuditPage } from '@blixard/contracts';
import { FieldError, ValidationError } from '@blixard/domain';
import { GATEWAY, GatewayDeps } from './deps';

/** The audit log: who did what through the API, and when. Newest first. */
@Controller('v1/audit')
export class AuditController {
  constructor(@Inject(GATEWAY) private readonly deps: GatewayDeps) {}

  /** `?action=job.cancel` (or `job.*`), `?since=<ISO time>`, `?actor=`, `?targetId=`, `?limit=`, `?cursor=`. */
  @Get()
  @RequireScope('admin')
  @ApiOperation({
    operationId: 'listAuditEntries',
    summary: 'The audit log',
    description: 'Submits, cancels, retries, drains, webhook and queue changes: who (the API key; `anonymous` until keys exist, with the remote address), what and when. Newest first.',
    tags: ['audit'],
    parameters: [
      { name: 'action', in: 'query', description: 'An action (`job.cancel`) or a prefix (`job.*`).', schema: { type: 'string' } },
      { name: 'since', in: 'query', description: 'Only entries at or after this time.', schema: timestamp },
      { name: 'actor', in: 'query', description: 'Only entries of this actor.', schema: { type: 'string' } },
      { name: 'targetId', in: 'query', description: 'Only entries about this job, worker, queue or webhook.', schema: { type: 'string' } },
      { name: 'limit', in: 'query', description: 'Page size.', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
      { name: 'cursor', in: 'query', description: 'The `nextCursor` of the previous page.', schema: { type: 'string' } },
    ],
    responses: {
      '200': json(ref('AuditPage'), 'A page of entries.'),
      '400': problem('A parameter is invalid or unknown.'),
    },
  })
  list(@Query() query: Record<string, unknown>, @Req() req: Request): Promise<AuditPage> {
    const errors: FieldError[] = [];
    for (const k of ['action', 'since', 'actor', 'targetId', 'cursor', 'limit']) {
      if (query[k] !== undefined && typeof query[k] !== 'string') errors.push({ field: k, message: 'must be given once' });
    }
    const action = query.action as string | undefined;
    if (action !== undefined && !/^[a-z]+(\.[a-z*]+)*$/.test(action)) errors.push({ field: 'action', message: 'must be an action like job.cancel, or a prefix like job.*' });
    let since: Date | undefined;
    if (typeof query.since === 'string') {
      since = new Date(query.since);
      if (Number.isNaN(since.getTime())) errors.push({ field: 'since', message: 'must be an ISO 8601 time' });
    }
    if (typeof query.cursor === 'string' && !/^\d{1,18}$/.test(query.cursor)) errors.push({ field: 'cursor', message: 'is not a cursor this API made' });
    let limit = 100;
    if (query.limit !== undefined) {
      limit = Number(query.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) errors.push({ field: 'limit', message: 'must be an integer from 1 to 1000' });
    }
    for (const k of Object.keys(query)) if (!['action', 'since', 'actor', 'targetId', 'cursor', 'limit'].includes(k)) errors.push({ field: k, message: 'is not a known query parameter' });
    if (errors.length > 0) throw new ValidationError(errors);
    return this.deps.live.audit.list(
      { action, since, actor: query.actor as string | undefined, targetId: query.targetId as string | undefined, tenant: principalOf(req).tenant },
      limit,
      query.cursor as string | undefined,
    );
  }
}
