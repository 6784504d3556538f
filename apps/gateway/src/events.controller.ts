import { Controller, Get, Inject, Param, Query, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { CloudEvent, EVENT_TYPE_PREFIX, EVENT_TYPES, eventTypeMatches } from '@blixard/contracts';
import { EVENT_PATTERN, FieldError, isTerminal, isUuid, JobStatus, NotFoundError, ValidationError } from '@blixard/domain';
import type { FeedStart } from '@blixard/messaging';
import { GATEWAY, GatewayDeps } from './deps';
import { followEvents, isTerminalEvent, readEvents, StreamedEvent } from './live-feeds';
import { resumePoint, SseStream, wantsEventStream } from './sse';
import { principalOf, Principal, RequireScope } from './auth';
import { ApiOperation, badEncoding, param, problem, ref } from './openapi/index';
import { hasScope } from '@blixard/domain';

export interface EventPage {
  items: StreamedEvent[];
  /** Pass as `after` (or `Last-Event-ID`) to continue; null when nothing was read. */
  lastSeq: number | null;
  more: boolean;
}

/**
 * Events from the events stream: a stream (`Accept: text/event-stream`, Server-Sent Events,
 * `id:` = stream sequence, resumable with `Last-Event-ID`) or a page of what is retained (JSON).
 */
@Controller('v1')
export class EventsController {
  constructor(@Inject(GATEWAY) private readonly deps: GatewayDeps) {}

  /** `?type=` (repeatable, comma-separated patterns), `?queue=`; SSE starts with new events unless resumed. */
  @Get('events')
  @RequireScope('jobs:read')
  @ApiOperation({
    operationId: 'getEvents',
    summary: 'Stream or page through events',
    description:
      'With `Accept: text/event-stream`: Server-Sent Events, one per CloudEvent (`id:` its sequence in the events stream, `data:` the event), ' +
      'starting with new events, or right after `Last-Event-ID` (or `after`) to resume; a comment line every SSE_HEARTBEAT_MS keeps idle streams open. ' +
      'Otherwise a JSON page of the retained events (7 days), oldest first, from `after`.',
    tags: ['events'],
    parameters: [
      { name: 'type', in: 'query', description: 'Only these event types: exact (`dev.blixard.job.completed`), a prefix (`dev.blixard.job.*`) or `*`; `dev.blixard.` may be left out. Repeat or separate with commas.', schema: { type: 'array', items: { type: 'string' } }, style: 'form', explode: true },
      { name: 'queue', in: 'query', description: 'Only events of jobs in this queue.', schema: { type: 'string' } },
      { name: 'after', in: 'query', description: 'Start after this event sequence (same as the `Last-Event-ID` header).', schema: { type: 'integer', minimum: 0 } },
      { name: 'limit', in: 'query', description: 'Page size (JSON only).', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
      { name: 'Last-Event-ID', in: 'header', required: false, description: 'Resume after this event (SSE clients send it when they reconnect).', schema: { type: 'string', pattern: '^\\d+$' } },
    ],
    responses: {
      '200': {
        description: 'A stream of events (`text/event-stream`), or a page of them (JSON).',
        content: { 'text/event-stream': { schema: { type: 'string', description: 'Frames `id: <seq>` / `data: <CloudEvent JSON>`.' } }, 'application/json': { schema: ref('EventPage') } },
      },
      '400': problem('An unknown event type, a bad `after`/`Last-Event-ID` or `limit`, or an unknown parameter.'),
    },
  })
  async events(@Req() req: Request, @Res() res: Response, @Query() query: Record<string, unknown>): Promise<void> {
    const errors: FieldError[] = [];
    const types = listParam(query.type).flatMap((t) => t.split(',')).map((t) => t.trim()).filter(Boolean);
    for (const [i, t] of types.entries()) {
      if (!EVENT_PATTERN.test(t) || !EVENT_TYPES.some((known) => eventTypeMatches(t, known))) {
        errors.push({ field: `type[${i}]`, message: `${JSON.stringify(t)} matches no event type (${EVENT_TYPES.join(', ')})` });
      }
    }
    if (query.queue !== undefined && typeof query.queue !== 'string') errors.push({ field: 'queue', message: 'must be given once' });
    const after = resumePoint(req, query.after);
    if (after === 'invalid') errors.push({ field: 'after', message: 'must be a stream sequence number (the `id` of an event)' });
    const limit = pageLimit(query.limit, errors);
    for (const k of Object.keys(query)) if (!['type', 'queue', 'after', 'limit'].includes(k)) errors.push({ field: k, message: 'is not a known query parameter' });
    if (errors.length > 0) throw new ValidationError(errors);

    const queue = query.queue as string | undefined;
    const principal = principalOf(req);
    const accept = (e: CloudEvent<Record<string, unknown>>) =>
      visibleTo(principal, e) && (types.length === 0 || types.some((t) => eventTypeMatches(t, e.type))) && (queue === undefined || e.data?.queue === queue);
    const subject = this.subjectFor(types);
    const resumed = typeof after === 'number' ? { afterSeq: after } : undefined;
    if (wantsEventStream(req)) {
      // "New" is fixed now, before the client sees the stream open: nothing published after this
      // answer's headers can be missed.
      const start = resumed ?? { afterSeq: (await this.deps.live.bus.jsm.streams.info(this.deps.live.bus.subjects.streams.events)).state.last_seq };
      const sse = new SseStream(req, res, this.deps.live.sseHeartbeatMs, this.deps.live.openStreams);
      await this.stream(sse, () => followEvents(this.deps.live, sse, subject, start, accept));
      return;
    }
    res.json(await readEvents(this.deps.live, subject, resumed ?? 'all', accept, limit));
  }

  /**
   * One job's events from its creation (or after `Last-Event-ID`). The stream ends after the
   * event that finished the job (a job finished before the request: its last such event).
   */
  @Get('jobs/:id/events')
  @RequireScope('jobs:read')
  @ApiOperation({
    operationId: 'getJobEvents',
    summary: "A job's events, live",
    description:
      'With `Accept: text/event-stream`: the job\'s events from its creation (or after `Last-Event-ID`), then live, ending after the event that finishes the job ' +
      '(`completed`, `failed`, `cancelled`, `unplaced`). Otherwise a JSON page of its events so far.',
    tags: ['events', 'jobs'],
    pathParameters: { id: param('JobId') },
    parameters: [
      { name: 'after', in: 'query', description: 'Start after this event sequence (same as `Last-Event-ID`).', schema: { type: 'integer', minimum: 0 } },
      { name: 'limit', in: 'query', description: 'Page size (JSON only).', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
      { name: 'Last-Event-ID', in: 'header', required: false, description: 'Resume after this event.', schema: { type: 'string', pattern: '^\\d+$' } },
    ],
    responses: {
      '200': {
        description: 'The job\'s events as a stream, or a page.',
        content: { 'text/event-stream': { schema: { type: 'string' } }, 'application/json': { schema: ref('EventPage') } },
      },
      '400': problem(`The id is not a UUID, a parameter is invalid, or ${badEncoding}.`),
      '404': problem('No such job.'),
    },
  })
  async jobEvents(@Param('id') id: string, @Req() req: Request, @Res() res: Response, @Query() query: Record<string, unknown>): Promise<void> {
    const errors: FieldError[] = [];
    if (!isUuid(id)) errors.push({ field: 'id', message: 'is not a job id (a UUID)' });
    const after = resumePoint(req, query.after);
    if (after === 'invalid') errors.push({ field: 'after', message: 'must be a stream sequence number (the `id` of an event)' });
    const limit = pageLimit(query.limit, errors);
    for (const k of Object.keys(query)) if (!['after', 'limit'].includes(k)) errors.push({ field: k, message: 'is not a known query parameter' });
    if (errors.length > 0) throw new ValidationError(errors);
    const job = await this.deps.queries.get(id, principalOf(req).tenant);
    if (!job) throw new NotFoundError('job', id);

    const subject = this.deps.live.bus.subjects.eventsOf('job');
    // Events are published after their transaction commits: none of this job's is older than it.
    const start: FeedStart = typeof after === 'number' ? { afterSeq: after } : { since: new Date(Date.parse(job.createdAt) - 5_000) };
    const accept = (e: CloudEvent<Record<string, unknown>>) => e.subject === id;
    if (wantsEventStream(req)) {
      // Finished already: the stream ends at the event that finished it (not an earlier failure
      // it was retried after); otherwise at the first event that finishes it.
      const finishedAt = isTerminal(job.status as JobStatus) ? Date.parse(job.updatedAt) : undefined;
      const last = (e: CloudEvent<Record<string, unknown>>) => isTerminalEvent(e) && (finishedAt === undefined || Date.parse(e.time) >= finishedAt);
      const sse = new SseStream(req, res, this.deps.live.sseHeartbeatMs, this.deps.live.openStreams);
      await this.stream(sse, () => followEvents(this.deps.live, sse, subject, start, accept, last));
      return;
    }
    res.json(await readEvents(this.deps.live, subject, start, accept, limit));
  }

  /** Once the stream is open, an error can only end it (the status line has been sent). */
  private async stream(sse: SseStream, run: () => Promise<void>): Promise<void> {
    try {
      await run();
    } catch (err) {
      this.deps.live.logger.warn({ err: String(err) }, 'event stream ended by an error');
      sse.end();
    }
  }

  /** The narrowest subject filter for the patterns (NATS 2.9 takes one filter per consumer). */
  private subjectFor(types: string[]): string {
    const s = this.deps.live.bus.subjects;
    if (types.length !== 1 || types[0] === '*') return s.eventAll;
    const full = types[0]!.startsWith(`${EVENT_TYPE_PREFIX}.`) ? types[0]! : `${EVENT_TYPE_PREFIX}.${types[0]}`;
    const [entity, name, ...rest] = full.slice(EVENT_TYPE_PREFIX.length + 1).split('.');
    if (rest.length > 0 || !entity || !['job', 'worker', 'webhook'].includes(entity)) return s.eventAll;
    return name === undefined || name === '*' ? s.eventsOf(entity as 'job') : s.event(entity as 'job', name);
  }
}

/**
 * Tenancy of events: a tenant's objects' events (`data.tenant`; absent on events older than
 * tenancy: `default`) reach that tenant's keys only; fleet (worker) events, keys with workers:read.
 */
export function visibleTo(principal: Principal, e: CloudEvent<Record<string, unknown>>): boolean {
  if (e.type.startsWith('dev.blixard.worker.')) return hasScope(principal.scopes, 'workers:read');
  const tenant = e.data?.tenant;
  return (typeof tenant === 'string' ? tenant : 'default') === principal.tenant;
}

function listParam(value: unknown): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).map(String);
}

function pageLimit(value: unknown, errors: FieldError[]): number {
  if (value === undefined) return 100;
  const n = Number(value);
  if (typeof value !== 'string' || !Number.isInteger(n) || n < 1 || n > 1000) {
    errors.push({ field: 'limit', message: 'must be an integer from 1 to 1000' });
    return 100;
  }
  return n;
}
