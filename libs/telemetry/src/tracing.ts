import {
  Attributes,
  context,
  Context,
  createContextKey,
  isSpanContextValid,
  Link,
  propagation,
  ROOT_CONTEXT,
  Span,
  SpanKind,
  SpanStatusCode,
  TimeInput,
  trace,
} from '@opentelemetry/api';
import { getRPCMetadata, RPCType } from '@opentelemetry/core';

/**
 * Tracing helpers on the OpenTelemetry API only. They cost next to nothing while no SDK is
 * registered (tracing off: `OTEL_EXPORTER_OTLP_ENDPOINT` unset), so libraries call them freely;
 * the SDK itself is started by `@blixard/telemetry/register` (see sdk.ts), before anything else
 * is loaded.
 */
export const tracer = trace.getTracer('blixard');

/** Span attribute names: Jaeger searches traces by these tags (`job.id=<uuid>`). */
export const SpanAttr = {
  jobId: 'job.id',
  attempt: 'job.attempt',
  backend: 'job.backend',
  queue: 'job.queue',
  outcome: 'job.outcome',
  workerId: 'worker.id',
  reportType: 'report.type',
  reportApplied: 'report.applied',
  reportDropped: 'report.dropped_reason',
} as const;

/** A W3C trace context as it is stored with a job (jobs.trace_context) or a schedule. */
export interface StoredTraceContext {
  traceparent: string;
  tracestate?: string;
  /** Other traces this one continues from (a dependent job: its parents' submits). */
  links?: { traceparent: string; tracestate?: string }[];
}

const TRACEPARENT = /^[\da-f]{2}-[\da-f]{32}-[\da-f]{16}-[\da-f]{2}$/;

/** Reads a stored trace context defensively: a malformed value is treated as none. */
export function parseTraceContext(value: unknown): StoredTraceContext | null {
  if (!value || typeof value !== 'object') return null;
  const v = value as Record<string, unknown>;
  const links = Array.isArray(v.links) ? v.links.map(parseTraceContext).filter((l): l is StoredTraceContext => l !== null) : [];
  const own = typeof v.traceparent === 'string' && TRACEPARENT.test(v.traceparent);
  if (!own && links.length === 0) return null;
  return {
    traceparent: own ? (v.traceparent as string) : '',
    ...(typeof v.tracestate === 'string' && v.tracestate ? { tracestate: v.tracestate } : {}),
    ...(links.length > 0 ? { links: links.map((l) => ({ traceparent: l.traceparent, ...(l.tracestate ? { tracestate: l.tracestate } : {}) })) } : {}),
  };
}

/**
 * The trace context of the active span, to store with a job so that its dispatch, an hour later
 * and in another process, continues the submit's trace. `linkTo`: stored contexts of other
 * traces to link (the parents of a dependent job). Null when there is nothing to store (tracing
 * off), so a job row costs nothing extra.
 */
export function captureTraceContext(linkTo: unknown[] = [], ctx: Context = context.active()): StoredTraceContext | null {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  const links = linkTo
    .map(parseTraceContext)
    .filter((l): l is StoredTraceContext => l !== null && l.traceparent !== '')
    .map((l) => ({ traceparent: l.traceparent, ...(l.tracestate ? { tracestate: l.tracestate } : {}) }));
  if (!carrier.traceparent && links.length === 0) return null;
  return {
    traceparent: carrier.traceparent ?? '',
    ...(carrier.tracestate ? { tracestate: carrier.tracestate } : {}),
    ...(links.length > 0 ? { links } : {}),
  };
}

/** The context a stored trace context continues (ROOT_CONTEXT when there is none). */
export function contextFromStored(stored: StoredTraceContext | null, base: Context = ROOT_CONTEXT): Context {
  if (!stored || !stored.traceparent) return base;
  const carrier: Record<string, string> = { traceparent: stored.traceparent };
  if (stored.tracestate) carrier.tracestate = stored.tracestate;
  return propagation.extract(base, carrier);
}

/** A span link to a stored trace context, if it holds a valid one. */
export function linkToStored(stored: { traceparent: string; tracestate?: string } | null | undefined, attributes?: Attributes): Link | undefined {
  if (!stored || !stored.traceparent) return undefined;
  const sc = trace.getSpanContext(contextFromStored({ traceparent: stored.traceparent, tracestate: stored.tracestate }));
  return sc && isSpanContextValid(sc) ? { context: sc, ...(attributes ? { attributes } : {}) } : undefined;
}

export interface SpanRunOptions {
  kind?: SpanKind;
  attributes?: Attributes;
  links?: Link[];
  startTime?: TimeInput;
  /** The parent; default: the active context. */
  parent?: Context;
  /** Log lines written inside the span carry this job id. */
  jobId?: string;
}

/**
 * Runs `fn` inside a new active span, ending it when `fn` settles; an exception is recorded and
 * marks the span as an error.
 */
export async function withSpan<T>(name: string, options: SpanRunOptions, fn: (span: Span) => Promise<T> | T): Promise<T> {
  const parent = options.parent ?? context.active();
  const span = tracer.startSpan(
    name,
    { kind: options.kind ?? SpanKind.INTERNAL, attributes: options.attributes, links: options.links, startTime: options.startTime },
    parent,
  );
  let ctx = trace.setSpan(parent, span);
  if (options.jobId) ctx = ctx.setValue(JOB_ID, options.jobId);
  try {
    return await context.with(ctx, () => fn(span));
  } catch (err) {
    markSpanFailed(span, err);
    throw err;
  } finally {
    span.end();
  }
}

export function markSpanFailed(span: Span, err: unknown): void {
  span.recordException(err instanceof Error ? err : new Error(String(err)));
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
}

/** Adds attributes to the active span, if any (the HTTP handler's, the report's, ...). */
export function annotateActiveSpan(attributes: Attributes): void {
  trace.getActiveSpan()?.setAttributes(attributes);
}

/**
 * Names the HTTP request being handled by its route (`/v1/jobs/:id`): the server span is then
 * `GET /v1/jobs/:id` with `http.route`, rather than a bare `GET`.
 */
export function setHttpRoute(route: string): void {
  const meta = getRPCMetadata(context.active());
  if (meta?.type === RPCType.HTTP) meta.route = route;
}

/**
 * Runs `fn` outside any trace: background loops kicked from inside a span (a wake-up message,
 * a report) must not make every later round a child of that one span.
 */
export function runDetached<T>(fn: () => T): T {
  return context.with(ROOT_CONTEXT, fn);
}

const SHUTDOWN = Symbol.for('blixard.tracing.shutdown');

/** Called by the SDK (sdk.ts) when it starts: how to flush and stop it. */
export function setTracingShutdown(fn: () => Promise<void>): void {
  (globalThis as Record<symbol, unknown>)[SHUTDOWN] = fn;
}

/**
 * Exports the spans still buffered and stops tracing; a no-op when tracing is off. Call it before
 * `process.exit`, or the last spans of a process are lost.
 */
export function shutdownTracing(): Promise<void> {
  const fn = (globalThis as Record<symbol, unknown>)[SHUTDOWN] as (() => Promise<void>) | undefined;
  return fn ? fn() : Promise.resolve();
}

const JOB_ID = createContextKey('blixard.job_id');

/** Trace and job ids of the active context, for log lines (the logger's mixin). */
export function logCorrelation(): Record<string, string> {
  const ctx = context.active();
  const out: Record<string, string> = {};
  const sc = trace.getSpanContext(ctx);
  if (sc && isSpanContextValid(sc)) {
    out.trace_id = sc.traceId;
    out.span_id = sc.spanId;
  }
  const jobId = ctx.getValue(JOB_ID);
  if (typeof jobId === 'string') out.job_id = jobId;
  return out;
}

export { SpanKind, SpanStatusCode };
export type { Span, Context, Link, Attributes };
