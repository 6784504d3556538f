import { Writable } from 'node:stream';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { createLogger } from './logger';
import { classifyError, Metrics } from './metrics';
import { tracingConfigProblems, tracingEnabled } from './sdk';
import { traceCronFire, traceDispatch, traceExecution, traceReport } from './job-spans';
import { captureTraceContext, logCorrelation, parseTraceContext, runDetached, tracer, withSpan } from './tracing';

const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
provider.register();

afterEach(() => exporter.reset());
afterAll(() => provider.shutdown());

const job = (over: Partial<{ id: string; attempt: number; traceContext: unknown }> = {}) => ({
  id: '01a21ac2-503d-7000-b794-ed5e7ea29b80',
  attempt: 1,
  backend: 'mock',
  queue: 'default',
  traceContext: null as unknown,
  ...over,
});

/** The stored context of a span started now, as the gateway stores it with a job. */
async function submitContext(): Promise<{ stored: ReturnType<typeof captureTraceContext>; traceId: string; spanId: string }> {
  return withSpan('POST /v1/jobs', { kind: SpanKind.SERVER }, (span) => ({
    stored: captureTraceContext(),
    traceId: span.spanContext().traceId,
    spanId: span.spanContext().spanId,
  }));
}

describe('the trace context stored with a job', () => {
  it('is the active span’s W3C context, and null outside any trace (tracing off costs nothing)', async () => {
    const { stored, traceId, spanId } = await submitContext();
    expect(stored).toEqual({ traceparent: `00-${traceId}-${spanId}-01` });
    expect(captureTraceContext()).toBeNull();
  });

  it('carries links to the parents’ contexts for a dependent job', async () => {
    const a = await submitContext();
    const b = await submitContext();
    const stored = await withSpan('POST /v1/jobs', {}, () => captureTraceContext([a.stored, null, { bogus: 1 }, b.stored]));
    expect(stored!.links).toEqual([a.stored, b.stored]);
  });

  it('reads a malformed stored value as none instead of failing', () => {
    expect(parseTraceContext('x')).toBeNull();
    expect(parseTraceContext({ traceparent: 'not-a-traceparent' })).toBeNull();
    expect(parseTraceContext(null)).toBeNull();
  });
});

describe('job spans', () => {
  it('makes the first dispatch a child of the submit, in the same trace', async () => {
    const submit = await submitContext();
    const started = new Date(Date.now() - 50);
    await traceDispatch(job({ traceContext: submit.stored }), { startTime: started }, async () => undefined);
    const span = exporter.getFinishedSpans().find((s) => s.name === 'dispatch mock')!;
    expect(span.name).toBe('dispatch mock');
    expect(span.spanContext().traceId).toBe(submit.traceId);
    expect(span.parentSpanContext?.spanId).toBe(submit.spanId);
    expect(span.attributes).toMatchObject({ 'job.id': job().id, 'job.attempt': 1, 'job.backend': 'mock', 'job.queue': 'default' });
    // The span covers the claim: it starts when the round did.
    expect(span.startTime[0] * 1000 + span.startTime[1] / 1e6).toBeCloseTo(started.getTime(), -1);
  });

  it('starts a retry’s trace of its own, linked to the submit', async () => {
    const submit = await submitContext();
    await traceDispatch(job({ attempt: 2, traceContext: submit.stored }), {}, async () => undefined);
    const span = exporter.getFinishedSpans().find((s) => s.name === 'dispatch mock')!;
    expect(span.spanContext().traceId).not.toBe(submit.traceId);
    expect(span.parentSpanContext).toBeUndefined();
    expect(span.links).toEqual([expect.objectContaining({ context: expect.objectContaining({ traceId: submit.traceId, spanId: submit.spanId }), attributes: { 'link.reason': 'retry_of' } })]);
  });

  it('links a dependent job’s dispatch to its parents’ traces', async () => {
    const parent = await submitContext();
    const child = await withSpan('POST /v1/jobs', {}, () => captureTraceContext([parent.stored]));
    await traceDispatch(job({ traceContext: child }), {}, async () => undefined);
    const span = exporter.getFinishedSpans().find((s) => s.name === 'dispatch mock')!;
    expect(span.links.map((l) => l.context.traceId)).toEqual([parent.traceId]);
    expect(span.links[0].attributes).toEqual({ 'link.reason': 'parent_job' });
  });

  it('records the execution’s outcome, and marks a failed attempt as an error', async () => {
    const a = { jobId: job().id, attempt: 3, backend: 'process', queue: 'q', workerId: 'w-1' };
    await traceExecution(a, async () => 'ok', () => ({ outcome: 'completed' }));
    await traceExecution(a, async () => 'bad', () => ({ outcome: 'timed_out', message: 'too slow' }));
    const [ok, bad] = exporter.getFinishedSpans();
    expect(ok.name).toBe('execute process');
    expect(ok.attributes).toMatchObject({ 'job.id': a.jobId, 'job.attempt': 3, 'job.backend': 'process', 'worker.id': 'w-1', 'job.outcome': 'completed' });
    expect(ok.status.code).toBe(SpanStatusCode.UNSET);
    expect(bad.attributes['job.outcome']).toBe('timed_out');
    expect(bad.status).toEqual({ code: SpanStatusCode.ERROR, message: 'too slow' });
  });

  it('marks a span whose work threw, and rethrows', async () => {
    await expect(traceReport({ type: 'completed', jobId: job().id, attempt: 1, workerId: 'w' }, async () => Promise.reject(new Error('db down')))).rejects.toThrow('db down');
    const [span] = exporter.getFinishedSpans();
    expect(span.name).toBe('report completed');
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.events.map((e) => e.name)).toEqual(['exception']);
  });

  it('roots a cron fire’s trace and links it to the schedule’s creation', async () => {
    const created = await submitContext();
    const stored = await withSpan('outer', {}, () => traceCronFire('s-1', new Date(0), created.stored, async () => captureTraceContext()));
    const fire = exporter.getFinishedSpans().find((s) => s.name === 'cron fire')!;
    expect(fire.parentSpanContext).toBeUndefined();
    expect(fire.links[0].context.traceId).toBe(created.traceId);
    // The job made inside the fire stores the fire's context.
    expect(stored!.traceparent).toContain(fire.spanContext().spanId);
  });
});

describe('detached work', () => {
  it('runs outside the current trace', async () => {
    await withSpan('wake-up', {}, async () => {
      expect(trace.getActiveSpan()).toBeDefined();
      runDetached(() => expect(trace.getActiveSpan()).toBeUndefined());
    });
  });
});

describe('log lines', () => {
  function capture(): { logger: ReturnType<typeof createLogger>; lines: Record<string, unknown>[] } {
    const lines: Record<string, unknown>[] = [];
    const destination = new Writable({
      write(chunk, _enc, cb) {
        lines.push(JSON.parse(String(chunk)));
        cb();
      },
    });
    return { logger: createLogger({ service: 't', level: 'info', destination }), lines };
  }

  it('carry the trace id, span id and job id of the span they are written in', async () => {
    const { logger, lines } = capture();
    await traceExecution({ jobId: 'j-1', attempt: 1, backend: 'mock', workerId: 'w' }, async () => logger.info('inside'), () => ({ outcome: 'completed' }));
    logger.info('outside');
    const span = exporter.getFinishedSpans()[0];
    expect(lines[0]).toMatchObject({ msg: 'inside', trace_id: span.spanContext().traceId, span_id: span.spanContext().spanId, job_id: 'j-1' });
    expect(lines[1]).not.toHaveProperty('trace_id');
  });

  it('write a call site’s jobId as job_id, and never a payload or an environment', () => {
    const { logger, lines } = capture();
    logger.info({ jobId: 'j-2', payload: { secret: 's3cr3t' }, env: { TOKEN: 'x' } }, 'submitted');
    expect(lines[0]).toMatchObject({ job_id: 'j-2', payload: '[redacted]', env: '[redacted]' });
    expect(lines[0]).not.toHaveProperty('jobId');
    expect(JSON.stringify(lines[0])).not.toContain('s3cr3t');
  });
});

describe('tracing configuration', () => {
  it('is off without an endpoint, or when disabled', () => {
    expect(tracingEnabled({})).toBe(false);
    expect(tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://jaeger:4318' })).toBe(true);
    expect(tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://jaeger:4318', OTEL_SDK_DISABLED: 'true' })).toBe(false);
    expect(tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://jaeger:4318', OTEL_TRACES_EXPORTER: 'none' })).toBe(false);
  });

  it('names every bad OTEL_* value', () => {
    expect(tracingConfigProblems({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://jaeger:4318', OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' })).toEqual([]);
    const problems = tracingConfigProblems({ OTEL_EXPORTER_OTLP_ENDPOINT: 'jaeger', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_TRACES_SAMPLER: 'sometimes', OTEL_TRACES_SAMPLER_ARG: '2' });
    expect(problems).toHaveLength(3);
    expect(problems.join('\n')).toMatch(/OTEL_EXPORTER_OTLP_ENDPOINT="jaeger" is not a URL[\s\S]*OTEL_EXPORTER_OTLP_PROTOCOL="grpc"[\s\S]*OTEL_TRACES_SAMPLER="sometimes"/);
    expect(tracingConfigProblems({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '1.5' })).toEqual(['OTEL_TRACES_SAMPLER_ARG="1.5" must be a number from 0 to 1']);
  });
});

describe('error metrics', () => {
  it('tell Postgres errors from NATS errors', async () => {
    const m = new Metrics('t', false);
    expect(m.countError(Object.assign(new Error('deadlock detected'), { code: '40P01', severity: 'ERROR' }), 'report')).toBe('db');
    expect(m.countError(new Error('Connection terminated unexpectedly'), 'dispatch')).toBe('db');
    class JetStreamApiError extends Error {}
    expect(m.countError(new JetStreamApiError('stream not found'), 'dispatch')).toBe('nats');
    expect(classifyError(new Error('boom'))).toBe('other');
    expect(await m.value('blixard_db_errors_total')).toBe(2);
    expect(await m.value('blixard_nats_errors_total', { operation: 'dispatch' })).toBe(1);
  });
});

// Keep the tracer referenced: it is the one every helper above uses.
void tracer;
