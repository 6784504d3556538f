import { Controller, Get, Inject, Param, Query, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { JobLogsView, logLineView } from '@blixard/contracts';
import { FieldError, isUuid, JobStatus, NotFoundError, ValidationError } from '@blixard/domain';
import { GATEWAY, GatewayDeps } from './deps';
import { followLogs } from './live-feeds';
import { resumePoint, SseStream } from './sse';
import { principalOf, RequireScope } from './auth';
import { ApiOperation, badEncoding, param, problem, ref } from './openapi/index';

/**
 * An attempt's output: what is stored (JSON, or `text/plain` when asked for), or followed live
 * over Server-Sent Events with `follow=true` until the attempt ends.
 */
@Controller('v1')
export class LogsController {
  constructor(@Inject(GATEWAY) private readonly deps: GatewayDeps) {}

  @Get('jobs/:id/logs')
  @RequireScope('jobs:read')
  @ApiOperation({
    operationId: 'getJobLogs',
    summary: "An attempt's output lines",
    description:
      'The stdout and stderr lines of one attempt (default: the current one), as stored (bounded by LOG_MAX_BYTES_PER_ATTEMPT; `system` lines mark truncation). ' +
      'JSON, or the bare lines with `Accept: text/plain`. With `follow=true`: Server-Sent Events, the stored lines then the live ones, each once and in order ' +
      '(`event: log`, `id:` the line number, `data:` a LogLine), until the attempt ends (`event: end`, data `{attempt, lastSeq, truncated, complete}`).',
    tags: ['jobs'],
    pathParameters: { id: param('JobId') },
    parameters: [
      { name: 'attempt', in: 'query', description: 'The attempt (default: the current one).', schema: { type: 'integer', minimum: 1 } },
      { name: 'follow', in: 'query', description: 'Stream until the attempt ends.', schema: { type: 'boolean', default: false } },
      { name: 'after', in: 'query', description: 'Only lines after this line number (same as `Last-Event-ID`).', schema: { type: 'integer', minimum: 0 } },
      { name: 'Last-Event-ID', in: 'header', required: false, description: 'Resume a followed log after this line.', schema: { type: 'string', pattern: '^\\d+$' } },
    ],
    responses: {
      '200': {
        description: 'The lines. Headers `Blixard-Log-Complete` and `Blixard-Log-Truncated` say whether the attempt ended with every line stored, and whether output was dropped.',
        headers: {
          'Blixard-Log-Complete': { description: '`true` once the attempt ended and all its lines are stored.', schema: { type: 'string', enum: ['true', 'false'] } },
          'Blixard-Log-Truncated': { description: '`true` when output past the cap was dropped.', schema: { type: 'string', enum: ['true', 'false'] } },
        },
        content: { 'application/json': { schema: ref('JobLogs') }, 'text/plain': { schema: { type: 'string' } }, 'text/event-stream': { schema: { type: 'string' } } },
      },
      '400': problem(`The id is not a UUID, the job has no such attempt yet, a parameter is invalid, or ${badEncoding}.`),
      '404': problem('No such job.'),
    },
  })
  async logs(@Param('id') id: string, @Req() req: Request, @Res() res: Response, @Query() query: Record<string, unknown>): Promise<void> {
    const errors: FieldError[] = [];
    if (!isUuid(id)) errors.push({ field: 'id', message: 'is not a job id (a UUID)' });
    let attempt: number | undefined;
    if (query.attempt !== undefined) {
      attempt = Number(query.attempt);
      if (typeof query.attempt !== 'string' || !Number.isInteger(attempt) || attempt < 1 || attempt > 1_000_000) errors.push({ field: 'attempt', message: 'must be an attempt number (1, 2, ...)' });
    }
    if (query.follow !== undefined && query.follow !== 'true' && query.follow !== 'false') errors.push({ field: 'follow', message: 'must be true or false' });
    const after = resumePoint(req, query.after);
    if (after === 'invalid') errors.push({ field: 'after', message: 'must be a line number (the `id` of a log event)' });
    for (const k of Object.keys(query)) if (!['attempt', 'follow', 'after'].includes(k)) errors.push({ field: k, message: 'is not a known query parameter' });
    if (errors.length > 0) throw new ValidationError(errors);
    const tenant = principalOf(req).tenant;
    const job = await this.deps.queries.get(id, tenant);
    if (!job) throw new NotFoundError('job', id);
    // Default: the current attempt (the first, before it starts).
    const latest = Math.max(job.attempt, 1);
    attempt ??= latest;
    if (attempt > latest) throw new ValidationError([{ field: 'attempt', message: `job ${id} has no attempt ${attempt} yet (its latest is ${latest})` }]);
    const afterSeq = typeof after === 'number' ? after : 0;

    if (query.follow === 'true') {
      const sse = new SseStream(req, res, this.deps.live.sseHeartbeatMs, this.deps.live.openStreams);
      const jobState = async () => {
        const j = await this.deps.queries.get(id, tenant);
        return j ? { attempt: j.attempt, status: j.status as JobStatus } : null;
      };
      try {
        await followLogs(this.deps.live, sse, id, attempt, afterSeq, jobState);
      } catch (err) {
        this.deps.live.logger.warn({ jobId: id, err: String(err) }, 'log stream ended by an error');
        sse.end();
      }
      return;
    }

    const { lines, summary } = await this.deps.live.logs.read(id, attempt, afterSeq);
    const headers = { 'Blixard-Log-Complete': String(summary.complete), 'Blixard-Log-Truncated': String(summary.truncated) };
    if (prefersText(req)) {
      res.status(200).set(headers).type('text/plain; charset=utf-8').send(lines.map((l) => `${l.line}\n`).join(''));
      return;
    }
    const view: JobLogsView = { jobId: id, attempt, lines: lines.map(logLineView), bytes: summary.bytes, truncated: summary.truncated, complete: summary.complete };
    res.status(200).set(headers).json(view);
  }
}

/** `Accept: text/plain` ranked above JSON. */
function prefersText(req: Request): boolean {
  return req.accepts(['application/json', 'text/plain']) === 'text/plain' && !/application\/json/.test(req.headers.accept ?? '');
}
