import { Link, ROOT_CONTEXT, SpanKind, SpanStatusCode, TimeInput } from '@opentelemetry/api';
import { contextFromStored, linkToStored, parseTraceContext, SpanAttr, withSpan } from './tracing';

/**
 * The spans of a job's life that no auto-instrumentation knows about: each dispatch, each
 * attempt's execution, each report applied, each cron fire. Together with the HTTP, NestJS, pg
 * and NATS spans they make one trace per job:
 *
 *   POST /v1/jobs (gateway) → dispatch <backend> (scheduler) → publish → process (executor)
 *     → execute <backend> → publish report → process → report <type> (scheduler)
 *
 * Every one carries `job.id` and `job.attempt`, so Jaeger finds a job's traces by the tag `job.id`.
 */
export interface TracedJob {
  id: string;
  attempt: number;
  backend: string;
  queue: string;
  /** jobs.trace_context: the submit's (or cron fire's) W3C context, with links to parents' ones. */
  traceContext?: unknown;
}

/**
 * One dispatch of attempt `job.attempt`. The first attempt continues the trace stored with the job
 * (a child of the submit), so a job's first run is one trace from HTTP request to result. A later
 * attempt (a retry after its backoff, perhaps an hour later, or a redrive) starts a trace of its
 * own with a span link to the submit: one trace per attempt, each found from the job's first. A
 * dependent job's dispatch also links to its parents' traces. `startTime`: when the dispatch round
 * began (the claim is part of the dispatch).
 */
export function traceDispatch<T>(job: TracedJob, options: { startTime?: TimeInput; redispatch?: boolean }, fn: () => Promise<T>): Promise<T> {
  const stored = parseTraceContext(job.traceContext);
  const links: Link[] = [];
  let parent = ROOT_CONTEXT;
  if (job.attempt <= 1) {
    parent = contextFromStored(stored);
  } else {
    const submit = linkToStored(stored, { 'link.reason': 'retry_of' });
    if (submit) links.push(submit);
  }
  for (const l of stored?.links ?? []) {
    const link = linkToStored(l, { 'link.reason': 'parent_job' });
    if (link) links.push(link);
  }
  return withSpan(
    `dispatch ${job.backend}`,
    {
      parent,
      links,
      startTime: options.startTime,
      jobId: job.id,
      attributes: {
        [SpanAttr.jobId]: job.id,
        [SpanAttr.attempt]: job.attempt,
        [SpanAttr.backend]: job.backend,
        [SpanAttr.queue]: job.queue,
        'dispatch.redispatch': options.redispatch ?? false,
      },
    },
    () => fn(),
  );
}

export interface TracedAttempt {
  jobId: string;
  attempt: number;
  backend: string;
  queue?: string;
  workerId: string;
}

/**
 * One attempt's execution on an executor. `outcomeOf` names the outcome of the result
 * (`completed`, `error`, `timed_out`, `cancelled`, ...); anything but `completed` marks the span
 * as an error, so failed attempts stand out in Jaeger.
 */
export function traceExecution<R>(a: TracedAttempt, fn: () => Promise<R>, outcomeOf: (result: R) => { outcome: string; message?: string }): Promise<R> {
  return withSpan(
    `execute ${a.backend}`,
    {
      jobId: a.jobId,
      attributes: {
        [SpanAttr.jobId]: a.jobId,
        [SpanAttr.attempt]: a.attempt,
        [SpanAttr.backend]: a.backend,
        ...(a.queue ? { [SpanAttr.queue]: a.queue } : {}),
        [SpanAttr.workerId]: a.workerId,
      },
    },
    async (span) => {
      const result = await fn();
      const { outcome, message } = outcomeOf(result);
      span.setAttribute(SpanAttr.outcome, outcome);
      if (outcome !== 'completed') span.setStatus({ code: SpanStatusCode.ERROR, message: message ?? outcome });
      return result;
    },
  );
}

/** Applying one executor report in the scheduler (a child of the report's CONSUMER span). */
export function traceReport<T>(report: { type: string; jobId: string; attempt: number; workerId?: string }, fn: () => Promise<T>): Promise<T> {
  return withSpan(
    `report ${report.type}`,
    {
      jobId: report.jobId,
      attributes: {
        [SpanAttr.jobId]: report.jobId,
        [SpanAttr.attempt]: report.attempt,
        [SpanAttr.reportType]: report.type,
        ...(report.workerId ? { [SpanAttr.workerId]: report.workerId } : {}),
      },
    },
    () => fn(),
  );
}

/**
 * One fire of a cron schedule: the root of the trace of the job it makes (the job stores this
 * span's context), linked to the trace that created the schedule.
 */
export function traceCronFire<T>(scheduleId: string, fireTime: Date, scheduleTraceContext: unknown, fn: () => Promise<T>): Promise<T> {
  const created = linkToStored(parseTraceContext(scheduleTraceContext), { 'link.reason': 'schedule_created' });
  return withSpan(
    'cron fire',
    {
      parent: ROOT_CONTEXT,
      kind: SpanKind.INTERNAL,
      links: created ? [created] : [],
      attributes: { 'schedule.id': scheduleId, 'schedule.fire_time': fireTime.toISOString() },
    },
    () => fn(),
  );
}
