import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { BlixardClient } from '@blixard/client';
import { createTestInfra, formatSpanTree, OtlpReceiver, ReceivedSpan, repoRoot, ServiceProcess, SPAN_KIND, TestInfra, waitFor } from '../src';

/**
 * One trace per job across every service. The services run as their own node processes (Jest
 * cannot see require-patched instrumentation such as pg and http), exporting OTLP/HTTP JSON to a
 * receiver in this test. Also: logs that carry the trace, and /metrics that move as jobs run.
 */
describe('observability: traces, logs and metrics of a job across the services', () => {
  let infra: TestInfra;
  let receiver: OtlpReceiver;
  const procs: Record<string, ServiceProcess> = {};
  let client: BlixardClient;

  beforeAll(async () => {
    receiver = await OtlpReceiver.start();
    infra = await createTestInfra('observability');
    const env = infra.env({
      LOG_LEVEL: 'info',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '100',
      EXECUTOR_CONCURRENCY: '4',
    });
    for (const app of ['gateway', 'scheduler', 'worker-registry', 'executor-mock'] as const) procs[app] = await ServiceProcess.start(app, env);
    client = new BlixardClient(procs.gateway!.url);
    await waitFor('a mock worker online', async () => (await client.workers()).some((w) => w.backend === 'mock' && w.status === 'ONLINE'));
  });

  afterAll(async () => {
    for (const p of Object.values(procs)) await p.kill();
    await infra?.cleanup();
    await receiver?.close();
  });

  /** The spans of `jobId`'s traces once the trace holds `until` (the receiver gets batches). */
  async function traceOf(jobId: string, until: (spans: ReceivedSpan[]) => boolean): Promise<ReceivedSpan[]> {
    return waitFor(`the spans of job ${jobId}`, () => {
      const spans = receiver.tracesWith('job.id', jobId);
      return until(spans) ? spans : undefined;
    }, 30_000, 100);
  }

  const named = (spans: ReceivedSpan[], name: string) => spans.filter((s) => s.name === name);

  /** `span` and its ancestors, root first; complete when the first one has no parent. */
  function chainOf(spans: ReceivedSpan[], span: ReceivedSpan | undefined): ReceivedSpan[] {
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const chain: ReceivedSpan[] = [];
    for (let s = span; s; s = s.parentSpanId ? byId.get(s.parentSpanId) : undefined) chain.unshift(s);
    return chain;
  }
  const complete = (chain: ReceivedSpan[]) => chain.length > 0 && chain[0]!.parentSpanId === undefined;

  it('records a job’s whole life as one trace: gateway → scheduler → executor → scheduler, with HTTP, NestJS, pg and NATS spans', async () => {
    const job = await client.submit({ backend: 'mock', payload: { sleepMs: 20, output: { ok: true } } });
    const done = await client.waitForTerminal(job.id, { timeoutMs: 30_000 });
    expect(done.status).toBe('COMPLETED');
    // Each service exports in its own batches: wait until the whole chain has arrived.
    const spans = await traceOf(job.id, (s) => named(s, 'execute mock').length === 1 && complete(chainOf(s, named(s, 'report completed')[0])));
    process.stdout.write(`span tree of job ${job.id} as the OTLP receiver saw it:\n${formatSpanTree(spans)}\n`);

    // One trace: every span tagged with the job, and everything under them.
    expect(new Set(spans.map((s) => s.traceId)).size).toBe(1);
    expect(new Set(receiver.spans.filter((s) => s.attributes['job.id'] === job.id).map((s) => s.traceId)).size).toBe(1);

    // The chain from the last span back to the root crosses the services in this order.
    const chain = chainOf(spans, named(spans, 'report completed')[0]);
    const services = chain.map((s) => s.service).filter((svc, i, all) => i === 0 || all[i - 1] !== svc);
    expect(services).toEqual(['gateway', 'scheduler', 'executor-mock', 'scheduler']);
    expect(chain.map((s) => s.name)).toEqual([
      'POST /v1/jobs',
      'JobsController.submit',
      'submit',
      'dispatch mock',
      expect.stringMatching(/^publish .*\.dispatch\.mock$/),
      expect.stringMatching(/^process .*\.dispatch\.mock$/),
      expect.stringMatching(/^publish .*\.report\.\{jobId\}$/),
      expect.stringMatching(/^process .*\.report\.\{jobId\}$/),
      'report completed',
    ]);
    expect(chain.map((s) => s.kind)).toEqual([
      SPAN_KIND.server, SPAN_KIND.internal, SPAN_KIND.internal, SPAN_KIND.internal,
      SPAN_KIND.producer, SPAN_KIND.consumer, SPAN_KIND.producer, SPAN_KIND.consumer, SPAN_KIND.internal,
    ]);

    // Auto-instrumentation: incoming HTTP, NestJS, pg queries in the gateway and the scheduler.
    expect(chain[0]!.attributes).toMatchObject({ 'http.route': '/v1/jobs', 'http.response.status_code': 201 });
    expect(spans.some((s) => s.scope.includes('instrumentation-nestjs-core'))).toBe(true);
    const pg = spans.filter((s) => s.scope.includes('instrumentation-pg'));
    expect(new Set(pg.map((s) => s.service))).toEqual(new Set(['gateway', 'scheduler']));
    expect(pg.some((s) => s.service === 'gateway' && s.name.startsWith('pg.query:INSERT'))).toBe(true);

    // Job and attempt ids on the job's own spans; the execution span says where and how it ran.
    const execute = named(spans, 'execute mock')[0]!;
    expect(execute.attributes).toMatchObject({ 'job.id': job.id, 'job.attempt': 1, 'job.backend': 'mock', 'job.outcome': 'completed', 'worker.id': done.workerId });
    for (const name of ['dispatch mock', 'report started', 'report completed']) expect(named(spans, name)[0]!.attributes).toMatchObject({ 'job.id': job.id, 'job.attempt': 1 });
    const consumer = chain[5]!;
    expect(consumer.attributes).toMatchObject({ 'messaging.system': 'nats', 'messaging.operation.type': 'process', 'messaging.message.id': `${job.id}:1` });

    // Logs join the trace: one line per event, with trace_id, span_id and job_id.
    const traceId = chain[0]!.traceId;
    for (const app of ['gateway', 'scheduler', 'executor-mock']) {
      const mine = await waitFor(`${app}'s log lines of the job`, () => {
        const lines = readFileSync(procs[app]!.logFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
        const found = lines.filter((l) => l.job_id === job.id);
        return found.length > 0 ? found : undefined;
      });
      expect(mine.every((l) => l.trace_id === traceId && typeof l.span_id === 'string')).toBe(true);
    }
  });

  it('serves /metrics as Prometheus text on every service, and the job counters move as jobs run', async () => {
    const read = async () => Object.fromEntries(await Promise.all(Object.entries(procs).map(async ([app, p]) => [app, parsePrometheus(await (await fetch(`${p.url}/metrics`)).text())] as const)));
    const sum = (m: Samples, name: string, labels: Record<string, string> = {}) =>
      m.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((n, s) => n + s.value, 0);

    const before = await read();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await client.submit({ backend: 'mock', queue: 'metrics', payload: { sleepMs: 10 } })).id);
    const failed = await client.submit({ backend: 'mock', queue: 'metrics', payload: { fail: true, retryable: false } });
    for (const id of [...ids, failed.id]) await client.waitForTerminal(id, { timeoutMs: 30_000 });
    const after = await read();

    const q = { backend: 'mock', queue: 'metrics' };
    expect(sum(after.gateway!, 'blixard_jobs_submitted_total', q) - sum(before.gateway!, 'blixard_jobs_submitted_total', q)).toBe(6);
    expect(sum(after.scheduler!, 'blixard_jobs_dispatched_total', q) - sum(before.scheduler!, 'blixard_jobs_dispatched_total', q)).toBe(6);
    expect(sum(after.scheduler!, 'blixard_jobs_completed_total', q) - sum(before.scheduler!, 'blixard_jobs_completed_total', q)).toBe(5);
    expect(sum(after.scheduler!, 'blixard_jobs_failed_total', q) - sum(before.scheduler!, 'blixard_jobs_failed_total', q)).toBe(1);
    const exec = (m: Samples, name: string) => sum(m, name, { backend: 'mock' });
    expect(exec(after['executor-mock']!, 'blixard_executor_attempts_total') - exec(before['executor-mock']!, 'blixard_executor_attempts_total')).toBe(6);
    expect(exec(after['executor-mock']!, 'blixard_executor_attempt_duration_seconds_count') - exec(before['executor-mock']!, 'blixard_executor_attempt_duration_seconds_count')).toBe(6);
    expect(sum(after['executor-mock']!, 'blixard_executor_pickup_latency_seconds_count', q) - sum(before['executor-mock']!, 'blixard_executor_pickup_latency_seconds_count', q)).toBe(6);

    // Gauges: queue depth by status (scheduler), running and free slots per worker (executor, registry).
    const worker = (await client.workers()).find((w) => w.backend === 'mock')!;
    expect(sum(after['executor-mock']!, 'blixard_executor_free_slots', { worker: worker.id })).toBe(4);
    expect(sum(after['executor-mock']!, 'blixard_executor_running_attempts', { worker: worker.id })).toBe(0);
    expect(sum(after['worker-registry']!, 'blixard_worker_free_slots', { worker: worker.id, backend: 'mock' })).toBe(4);
    // Every service: process metrics, and its NATS and database error counters.
    for (const app of ['gateway', 'scheduler', 'worker-registry', 'executor-mock']) {
      expect(after[app]!.some((s) => s.name === 'process_cpu_user_seconds_total')).toBe(true);
    }
    for (const p of Object.values(procs)) {
      const text = await (await fetch(`${p.url}/metrics`)).text();
      expect(text).toContain('# TYPE blixard_nats_errors_total counter');
      expect(text).toContain('# TYPE blixard_db_errors_total counter');
    }
  });

  it('gives a retry its own trace, linked to the submit', async () => {
    const job = await client.submit({ backend: 'mock', payload: { fail: true, failAttempts: 1 }, maxAttempts: 2, backoff: { type: 'fixed', baseMs: 50, maxMs: 50, jitter: 0 } });
    expect((await client.waitForTerminal(job.id, { timeoutMs: 30_000 })).status).toBe('COMPLETED');
    const spans = await traceOf(job.id, (s) => named(s, 'dispatch mock').length === 2 && named(s, 'submit').length === 1 && named(s, 'execute mock').length === 2);
    const [first, second] = named(spans, 'dispatch mock').sort((a, b) => Number(a.attributes['job.attempt']) - Number(b.attributes['job.attempt']));
    expect(named(spans, 'execute mock').map((s) => s.attributes['job.outcome']).sort()).toEqual(['completed', 'error']);
    expect(second!.traceId).not.toBe(first!.traceId);
    expect(second!.parentSpanId).toBeUndefined();
    const submit = spans.find((s) => s.traceId === first!.traceId && s.name === 'submit')!;
    expect(second!.links).toEqual([{ traceId: first!.traceId, spanId: submit.spanId, attributes: { 'link.reason': 'retry_of' } }]);
  });

  it('links a dependent job to its parent’s trace, and a cron fire to the schedule’s creation', async () => {
    const parent = await client.submit({ backend: 'mock', payload: {} });
    const child = await client.submit({ backend: 'mock', payload: {}, dependsOn: [parent.id] });
    expect((await client.waitForTerminal(child.id, { timeoutMs: 30_000 })).status).toBe('COMPLETED');
    const parentSpans = await traceOf(parent.id, (s) => named(s, 'submit').length === 1);
    const childDispatch = (await traceOf(child.id, (s) => named(s, 'dispatch mock').length === 1)).find((s) => s.name === 'dispatch mock')!;
    expect(childDispatch.links).toEqual([{ traceId: parentSpans[0]!.traceId, spanId: named(parentSpans, 'submit')[0]!.spanId, attributes: { 'link.reason': 'parent_job' } }]);

    const schedule = await client.createSchedule({ cron: '* * * * * *', template: { backend: 'mock', payload: {} } });
    try {
      const fired = await waitFor('a cron job', async () => (await client.list({ status: ['COMPLETED'] })).items.find((j) => j.scheduleId === schedule.id));
      const spans = await traceOf(fired.id, (s) => named(s, 'cron fire').length === 1 && named(s, 'dispatch mock').length === 1);
      const fire = named(spans, 'cron fire')[0]!;
      expect(fire.parentSpanId).toBeUndefined(); // the root of the fired job's trace
      expect(fire.attributes['schedule.id']).toBe(schedule.id);
      const created = await waitFor('the schedule’s creation span', () => receiver.spans.find((s) => s.name === 'POST /v1/schedules'));
      expect(fire.links).toEqual([expect.objectContaining({ traceId: created.traceId, attributes: { 'link.reason': 'schedule_created' } })]);
      expect(named(spans, 'dispatch mock')[0]!.traceId).toBe(fire.traceId);
    } finally {
      await client.deleteSchedule(schedule.id);
    }
  });

  it('shows the queue depth of waiting jobs by status, and 0 once the queue empties', async () => {
    const depth = async () =>
      parsePrometheus(await (await fetch(`${procs.scheduler!.url}/metrics`)).text()).find((s) => s.name === 'blixard_queue_depth' && s.labels.queue === 'later' && s.labels.status === 'SCHEDULED')?.value;
    const waiting = await client.submit({ backend: 'mock', queue: 'later', payload: {}, delayMs: 60_000 });
    expect(await depth()).toBe(1);
    await client.cancel(waiting.id);
    expect(await depth()).toBe(0);
  });

  it('refuses to start a service with an invalid tracing setting, naming it', () => {
    const run = spawnSync(process.execPath, [path.join(repoRoot(), 'apps', 'scheduler', 'dist', 'main.js')], {
      env: { ...infra.env(), OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_TRACES_SAMPLER: 'sometimes' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('scheduler failed to start: invalid tracing configuration');
    expect(run.stderr).toContain('OTEL_TRACES_SAMPLER="sometimes" must be one of');
  });
});

type Samples = { name: string; labels: Record<string, string>; value: number }[];

/** A strict reader of the Prometheus text format (0.0.4): throws on any line it does not understand. */
function parsePrometheus(text: string): Samples {
  const samples: Samples = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (m) {
      if (m[1] === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(m[3]!)) throw new Error(`bad TYPE line: ${line}`);
        types.set(m[2]!, m[3]!);
      }
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)(?: \d+)?$/.exec(line);
    if (!m) throw new Error(`not Prometheus text: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    const body = m[2] ?? '';
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gy;
    let consumed = 0;
    for (let l = re.exec(body); l; l = re.exec(body)) {
      labels[l[1]!] = l[2]!.replace(/\\"/g, '"').replace(/\\n/g, '\n').replace(/\\\\/g, '\\');
      consumed = re.lastIndex;
    }
    if (consumed !== body.length) throw new Error(`bad labels: ${JSON.stringify(line)}`);
    const family = m[1]!.replace(/_(bucket|sum|count)$/, '');
    if (!types.has(m[1]!) && !types.has(family)) throw new Error(`sample without TYPE: ${line}`);
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  if (samples.length === 0) throw new Error('no samples');
  return samples;
}
