import { CloudEvent as SdkCloudEvent, HTTP } from 'cloudevents';
import { BlixardClient, readSse } from '@blixard/client';
import type { CloudEvent, JobProgressEventData } from '@blixard/contracts';
import { connectBus } from '@blixard/messaging';
import { createLogger } from '@blixard/telemetry';
import { createTestInfra, TestInfra, waitFor } from '../src';
import { InProcessStack, MockBackend, namedMock, ProcessBackend, startStack } from './stack';

/** Reads an SSE stream to its end (or until `stop` says so), parsing each frame's data as JSON. */
async function collect<T>(url: string, options: { lastEventId?: string; stop?: (items: { id?: string; event: string; data: T }[]) => boolean; onComment?: (t: string) => void } = {}) {
  const items: { id?: string; event: string; data: T }[] = [];
  const controller = new AbortController();
  try {
    for await (const e of readSse(url, { lastEventId: options.lastEventId, signal: controller.signal, onComment: options.onComment })) {
      items.push({ id: e.id, event: e.event, data: JSON.parse(e.data) as T });
      if (options.stop?.(items)) break;
    }
  } finally {
    controller.abort();
  }
  return items;
}

type Event = CloudEvent<Record<string, unknown>>;
const short = (e: Event) => e.type.replace('dev.blixard.', '');

describe('live jobs: events over SSE, progress, results, the audit log', () => {
  let infra: TestInfra;
  let stack: InProcessStack;
  let client: BlixardClient;
  let url: string;

  beforeAll(async () => {
    infra = await createTestInfra('live_jobs');
    stack = await startStack(infra.env({ SSE_HEARTBEAT_MS: '200', PROGRESS_MIN_INTERVAL_MS: '50' }), { executors: [new MockBackend(), new ProcessBackend()] });
    client = stack.client;
    url = stack.gateway.url;
  });

  afterAll(async () => {
    await stack?.stop();
    await infra?.cleanup();
  });

  it("streams a job's events from creation to completion, each a CloudEvent the official SDK reads, then ends", async () => {
    const job = await client.submit({ backend: 'mock', payload: { sleepMs: 200, output: { answer: 42 } } });
    const frames = await collect<Event>(`${url}/v1/jobs/${job.id}/events`);
    expect(frames.map((f) => short(f.data))).toEqual(['job.created', 'job.claimed', 'job.started', 'job.completed']);
    // `id:` is the stream sequence, increasing.
    const ids = frames.map((f) => Number(f.id));
    expect(ids.every((id, i) => Number.isInteger(id) && (i === 0 || id > ids[i - 1]!))).toBe(true);
    for (const f of frames) {
      expect(f.data.subject).toBe(job.id);
      const parsed = HTTP.toEvent({ headers: { 'content-type': 'application/cloudevents+json' }, body: JSON.stringify(f.data) }) as SdkCloudEvent<unknown>;
      expect(parsed.validate()).toBe(true);
      expect(parsed.type).toBe(f.data.type);
    }
    // The result travels in the completed event.
    expect(frames[3]!.data.data).toMatchObject({ jobId: job.id, status: 'COMPLETED', previousStatus: 'RUNNING', attempt: 1, result: { answer: 42 }, error: null });
    expect(frames[2]!.data.data).toMatchObject({ status: 'RUNNING', workerId: expect.any(String), startedAt: expect.any(String) });
  });

  it('resumes after Last-Event-ID with exactly the events that followed, and pages them as JSON', async () => {
    const job = await client.submit({ backend: 'mock', payload: { output: 'resumed' } });
    await client.waitForTerminal(job.id);
    const all = await collect<Event>(`${url}/v1/jobs/${job.id}/events`);
    expect(all.map((f) => short(f.data))).toEqual(['job.created', 'job.claimed', 'job.started', 'job.completed']);
    const rest = await collect<Event>(`${url}/v1/jobs/${job.id}/events`, { lastEventId: all[1]!.id });
    expect(rest.map((f) => [f.id, short(f.data)])).toEqual([
      [all[2]!.id, 'job.started'],
      [all[3]!.id, 'job.completed'],
    ]);
    const page = await client.jobEvents(job.id);
    expect(page.items.map((i) => [String(i.seq), i.event.type])).toEqual(all.map((f) => [f.id, f.data.type]));
    expect((await client.jobEvents(job.id, { after: Number(all[2]!.id) })).items.map((i) => i.event.type)).toEqual(['dev.blixard.job.completed']);
  });

  it('streams new events filtered by type and queue, with heartbeats on an idle stream, and resumes with Last-Event-ID', async () => {
    let heartbeats = 0;
    const streamed = collect<Event>(`${url}/v1/events?type=dev.blixard.job.completed&queue=live-q`, {
      onComment: (t) => (t === 'heartbeat' ? heartbeats++ : undefined),
      stop: (items) => items.length === 2,
    });
    // Idle first: heartbeats come every SSE_HEARTBEAT_MS (200 ms here).
    await waitFor('two heartbeats', () => heartbeats >= 2, 5_000);
    const other = await client.submit({ backend: 'mock', payload: {}, queue: 'other-q' });
    const first = await client.submit({ backend: 'mock', payload: {}, queue: 'live-q' });
    await client.waitForTerminal(first.id);
    await client.waitForTerminal(other.id);
    const second = await client.submit({ backend: 'mock', payload: {}, queue: 'live-q' });
    const frames = await streamed;
    expect(frames.map((f) => [f.data.type, f.data.subject])).toEqual([
      ['dev.blixard.job.completed', first.id],
      ['dev.blixard.job.completed', second.id],
    ]);
    // Resuming after the first frame gives the second again (the stream keeps it).
    const resumed = await collect<Event>(`${url}/v1/events?type=job.completed&queue=live-q`, { lastEventId: frames[0]!.id, stop: (items) => items.length === 1 });
    expect(resumed.map((f) => [f.id, f.data.subject])).toEqual([[frames[1]!.id, second.id]]);
  });

  it('lets go of its stream consumer when the client disconnects', async () => {
    const bus = await connectBus({ servers: [infra.natsUrl], prefix: infra.prefix, name: 'test-consumers', logger: createLogger({ service: 'test', level: 'silent' }) });
    try {
      const consumers = async () => {
        let n = 0;
        for await (const _ of await bus.jsm.consumers.list(bus.subjects.streams.events)) n++;
        return n;
      };
      const before = await consumers();
      const controller = new AbortController();
      let heartbeats = 0;
      const reading = (async () => {
        for await (const _ of readSse(`${url}/v1/events`, { signal: controller.signal, onComment: () => heartbeats++ })) void _;
      })().catch(() => undefined);
      await waitFor('the stream open', async () => heartbeats > 0 && (await consumers()) === before + 1, 5_000);
      controller.abort();
      await reading;
      await waitFor('its consumer deleted', async () => (await consumers()) === before, 5_000);
    } finally {
      await bus.close();
    }
  });

  it('refuses an unknown event type or a malformed Last-Event-ID with a 400 naming it', async () => {
    const res = await fetch(`${url}/v1/events?type=dev.blixard.job.exploded`, { headers: { Accept: 'text/event-stream' } });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { errors: { field: string }[] }).errors[0]!.field).toBe('type[0]');
    const bad = await fetch(`${url}/v1/events`, { headers: { Accept: 'text/event-stream', 'Last-Event-ID': 'yesterday' } });
    expect(bad.status).toBe(400);
  });

  it('stores the latest progress on the job and publishes each report as dev.blixard.job.progress', async () => {
    const job = await client.submit({
      backend: 'mock',
      payload: { sleepMs: 1_200, progress: [{ fraction: 0.25, note: 'a quarter' }, { fraction: 0.5 }, { fraction: 0.75, note: 'nearly' }] },
    });
    // Polled while it runs (on a busy machine it may have finished by then: the last one stays).
    const seen = await waitFor('progress on the job', async () => (await client.get(job.id)).progress ?? undefined, 15_000, 20);
    expect(seen).toMatchObject({ attempt: 1, seq: expect.any(Number), at: expect.any(String) });
    expect(seen.fraction).toBeGreaterThan(0);
    const frames = await collect<Event>(`${url}/v1/jobs/${job.id}/events`);
    expect(frames.map((f) => short(f.data))).toEqual(['job.created', 'job.claimed', 'job.started', 'job.progress', 'job.progress', 'job.progress', 'job.completed']);
    const progress = frames.filter((f) => f.data.type === 'dev.blixard.job.progress').map((f) => (f.data as unknown as CloudEvent<JobProgressEventData>).data.progress);
    expect(progress.map((p) => [p.fraction, p.note])).toEqual([
      [0.25, 'a quarter'],
      [0.5, null],
      [0.75, 'nearly'],
    ]);
    expect(progress.map((p) => p.seq)).toEqual([1, 2, 3]);
    const done = await client.get(job.id);
    expect(done.progress).toMatchObject({ fraction: 0.75, note: 'nearly', attempt: 1, seq: 3 });
  });

  it('takes progress from a process job through the stderr line protocol, and keeps those lines out of its log', async () => {
    const job = await client.submit({
      backend: 'process',
      payload: { command: ['sh', '-c', 'echo start; echo "::blixard-progress 0.4 compiling" >&2; sleep 0.3; echo "::blixard-progress 2 nonsense" >&2; echo done'] },
    });
    const done = await client.waitForTerminal(job.id);
    expect(done.status).toBe('COMPLETED');
    expect(done.progress).toMatchObject({ fraction: 0.4, note: 'compiling' });
    const logs = await waitFor('the complete log', async () => {
      const l = await client.logs(job.id);
      return l.complete ? l : undefined;
    });
    // A malformed report is logged as the line it is.
    // (stdout and stderr are separate pipes: their relative order is not defined.)
    expect(logs.lines.filter((l) => l.stream === 'stdout').map((l) => l.line)).toEqual(['start', 'done']);
    expect(logs.lines.filter((l) => l.stream === 'stderr').map((l) => l.line)).toEqual(['::blixard-progress 2 nonsense']);
  });

  it('fails an attempt whose output exceeds 1 MiB with output_too_large, without retrying', async () => {
    const job = await client.submit({ backend: 'mock', payload: { outputBytes: 1_100_000 }, maxAttempts: 3 });
    const done = await client.waitForTerminal(job.id);
    expect(done).toMatchObject({ status: 'FAILED', errorCode: 'output_too_large', attempt: 1, result: null });
    expect(done.error).toMatch(/at most 1048576 are stored/);
    // Just under the cap is stored, and reaches the completed event.
    const ok = await client.submit({ backend: 'mock', payload: { outputBytes: 1_000_000 } });
    expect((await client.waitForTerminal(ok.id)).result).toHaveLength(1_000_000);
    const events = await client.jobEvents(ok.id);
    expect((events.items.at(-1)!.event.data as { result: string }).result).toHaveLength(1_000_000);
  });

  it('records who submitted, cancelled, retried, drained and changed queues in the audit log', async () => {
    const since = new Date().toISOString();
    const job = await client.submit({ backend: 'mock', payload: { sleepMs: 60_000 }, maxAttempts: 1 });
    await client.cancel(job.id);
    await client.retry(job.id);
    await client.cancel(job.id);
    await client.retryMany({ status: ['CANCELLED'], queue: 'default' });
    await client.setQueue('audited', { maxConcurrency: 3 });
    await client.setFairnessWeight('tenant-a', 2);
    const drainable = await stack.addExecutor(namedMock('drainable'));
    await waitFor('the drainable worker online', async () => (await client.workers()).some((w) => w.id === drainable.runtime.workerId && w.status === 'ONLINE'));
    await client.drainWorker(drainable.runtime.workerId);

    const page = await client.audit({ since });
    expect(page.items.map((e) => e.action).reverse()).toEqual(['job.submit', 'job.cancel', 'job.retry', 'job.cancel', 'jobs.retry', 'queue.update', 'fairness.update', 'worker.drain']);
    for (const e of page.items) {
      expect(e.actor).toBe('anonymous');
      expect(e.remoteAddress).toMatch(/127\.0\.0\.1|::1/);
      expect(Date.parse(e.at)).toBeGreaterThanOrEqual(Date.parse(since));
    }
    const cancels = await client.audit({ action: 'job.cancel', since });
    expect(cancels.items.map((e) => [e.targetType, e.targetId])).toEqual([
      ['job', job.id],
      ['job', job.id],
    ]);
    expect((await client.audit({ action: 'job.*', since })).items.map((e) => e.action).sort()).toEqual(['job.cancel', 'job.cancel', 'job.retry', 'job.submit']);
    expect((await client.audit({ since: new Date(Date.now() + 60_000).toISOString() })).items).toEqual([]);
    const firstPage = await client.audit({ since, limit: 3 });
    const secondPage = await client.audit({ since, limit: 3, cursor: firstPage.nextCursor! });
    expect([...firstPage.items, ...secondPage.items].map((e) => e.id)).toEqual(page.items.slice(0, 6).map((e) => e.id));
    const bad = await fetch(`${url}/v1/audit?since=yesterday`);
    expect(bad.status).toBe(400);
  });
});
