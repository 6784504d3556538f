import { CloudEvent, LogLine, logLineView, logMessageSchema } from '@blixard/contracts';
import { TERMINAL_STATUSES, type JobStatus } from '@blixard/domain';
import { decodeJson, FeedStart, JsMsg, openFeed, readFeedNow } from '@blixard/messaging';
import type { LiveDeps } from './live-deps';
import type { SseStream } from './sse';

/** An event as the stream holds it, with its stream sequence (the SSE `id`). */
export interface StreamedEvent {
  seq: number;
  event: CloudEvent<Record<string, unknown>>;
}

function parseEvent(msg: JsMsg): CloudEvent<Record<string, unknown>> | undefined {
  try {
    const e = msg.json<CloudEvent<Record<string, unknown>>>();
    return typeof e === 'object' && e !== null && typeof e.type === 'string' ? e : undefined;
  } catch {
    return undefined;
  }
}

/** The events the stream holds now from `start`, oldest first, up to `limit` accepted ones. */
export async function readEvents(
  live: LiveDeps,
  filterSubject: string,
  start: FeedStart,
  accept: (e: CloudEvent<Record<string, unknown>>) => boolean,
  limit: number,
): Promise<{ items: StreamedEvent[]; lastSeq: number | null; more: boolean }> {
  const consumer = await openFeed(live.bus, live.bus.subjects.streams.events, filterSubject, start);
  const page = await readFeedNow(
    consumer,
    (msg) => {
      const event = parseEvent(msg);
      return event && accept(event) ? { seq: msg.seq, event } : undefined;
    },
    limit,
  );
  return { items: page.items, lastSeq: page.lastSeq ?? null, more: page.more };
}

/**
 * Streams events from `start` to the client until it leaves, or until `last(event)` says the
 * event just sent was the last one. Each frame: `id:` the stream sequence (so `Last-Event-ID`
 * resumes right after it), `data:` the CloudEvent as published.
 */
export async function followEvents(
  live: LiveDeps,
  sse: SseStream,
  filterSubject: string,
  start: FeedStart,
  accept: (e: CloudEvent<Record<string, unknown>>) => boolean,
  last: (e: CloudEvent<Record<string, unknown>>) => boolean = () => false,
): Promise<void> {
  const consumer = await openFeed(live.bus, live.bus.subjects.streams.events, filterSubject, start);
  try {
    const messages = await consumer.consume({ max_messages: 256 });
    sse.whenClosed(() => void messages.close());
    for await (const msg of messages) {
      const event = parseEvent(msg);
      if (!event || !accept(event)) continue;
      await sse.send({ id: msg.seq, data: msg.string() });
      if (sse.isClosed || last(event)) break;
    }
  } finally {
    sse.end();
    await consumer.delete().catch(() => undefined);
  }
}

/** Whether a job event says the job has ended (the end of `GET /v1/jobs/:id/events`). */
export function isTerminalEvent(e: CloudEvent<Record<string, unknown>>): boolean {
  return TERMINAL_STATUSES.includes(e.data?.status as JobStatus);
}

/**
 * Follows attempt `attempt` of a job: the lines Postgres has (after `afterSeq`), then the live
 * lines from the logs stream, each once, in order, until the executor's end marker, or until the
 * attempt is plainly over without one (its executor died) and nothing came for a while. Ends with
 * an `end` event.
 */
export async function followLogs(
  live: LiveDeps,
  sse: SseStream,
  jobId: string,
  attempt: number,
  afterSeq: number,
  jobState: () => Promise<{ attempt: number; status: JobStatus } | null>,
): Promise<void> {
  let last = afterSeq;
  /** The executor's end marker said output was dropped (the store may not have it yet). */
  let dropped = false;
  const send = async (lines: LogLine[]) => {
    for (const l of lines) {
      if (l.seq <= last || sse.isClosed) continue;
      await sse.send({ id: l.seq, event: 'log', data: JSON.stringify(logLineView(l)) });
      last = l.seq;
    }
  };
  const finish = async () => {
    if (sse.isClosed) return;
    const summary = await live.logs.summary(jobId, attempt);
    await sse.send({ event: 'end', data: JSON.stringify({ attempt, lastSeq: last, truncated: summary.truncated || dropped, complete: summary.complete }) });
    sse.end();
  };

  const stored = await live.logs.read(jobId, attempt, last);
  await send(stored.lines);
  if (stored.summary.complete) return finish();

  // Lines not stored yet are in the stream (it keeps them for an hour): read the job's subject
  // from its start and skip what was sent.
  const consumer = await openFeed(live.bus, live.bus.subjects.streams.logs, live.bus.subjects.logs(jobId), 'all');
  let lastActivity = Date.now();
  let ended = false;
  try {
    const messages = await consumer.consume({ max_messages: 512 });
    sse.whenClosed(() => void messages.close());
    const watchdog = setInterval(() => {
      void jobState()
        .then((job) => {
          const over = !job || job.attempt > attempt || (job.attempt === attempt && job.status !== 'CLAIMED' && job.status !== 'RUNNING');
          // Quiet for a while after the attempt ended: its executor died before its end marker.
          if (over && Date.now() - lastActivity > 3_000) void messages.close();
        })
        .catch(() => undefined);
    }, 1_000);
    try {
      for await (const msg of messages) {
        lastActivity = Date.now();
        const decoded = decodeJson(msg.data, logMessageSchema);
        if (!decoded.ok || decoded.value.attempt !== attempt) continue;
        if (decoded.value.type === 'lines') await send(decoded.value.lines);
        else {
          ended = true;
          dropped = decoded.value.droppedLines > 0;
          break;
        }
        if (sse.isClosed) break;
      }
    } finally {
      clearInterval(watchdog);
    }
  } finally {
    await consumer.delete().catch(() => undefined);
  }
  // Without the end marker: whatever the archiver stored that the stream no longer had.
  if (!ended && !sse.isClosed) await send((await live.logs.read(jobId, attempt, last)).lines);
  await finish();
}
