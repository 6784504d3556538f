import { Controller, Get, Inject, Param, Query, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { JobLogsView, logLineView } from '@blixard/contracts';
import { FieldError, isUuid, JobStatus, NotFoundError, ValidationError } from '@blixard/domain';
import { GATEWAY, GatewayDeps } from './deps';
import { followLogs } from './live-feeds';
import { resumePoint, SseStream } from './sse';
import { principalOf, RequireScope } from './auth';

/**
 * An attempt's output: what is stored (JSON, or `text/plain` when asked for), or followed live
 * over Server-Sent Events with `follow=true` until the attempt ends.
 */
@Controller('v1')
export class LogsController {
  constructor(@Inject(GATEWAY) private readonly deps: GatewayDeps) {}

  @Get('jobs/:id/logs')
  @RequireScope('jobs:read')
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
