import { DeliverPolicy, type Consumer, type JsMsg } from '@nats-io/jetstream';
import type { Bus } from './bus';

/**
 * Feeds: ordered, ephemeral consumers for readers of a stream (SSE clients, log followers). Each
 * reader gets its own; the server removes it a few seconds after the reader is gone. Nothing is
 * acknowledged: a feed is a read of the stream's retention, in stream order, from a point.
 */
export type FeedStart =
  /** Messages after this stream sequence (an SSE client's Last-Event-ID). */
  | { afterSeq: number }
  /** Messages stored at or after this time. */
  | { since: Date }
  | 'all'
  | 'new';

export async function openFeed(bus: Bus, stream: string, filterSubject: string, start: FeedStart): Promise<Consumer> {
  const from =
    start === 'all'
      ? { deliver_policy: DeliverPolicy.All }
      : start === 'new'
        ? { deliver_policy: DeliverPolicy.New }
        : 'afterSeq' in start
          ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: start.afterSeq + 1 }
          : { deliver_policy: DeliverPolicy.StartTime, opt_start_time: start.since.toISOString() };
  return bus.js.consumers.get(stream, { filter_subjects: filterSubject, ...from });
}

/**
 * Reads what a fresh feed holds now, without waiting for more: up to `limit` messages that
 * `accept` maps to a value. `lastSeq` is the sequence of the last message looked at (the point to
 * continue from), `more` whether messages remained when the limit was reached.
 */
export async function readFeedNow<T>(consumer: Consumer, accept: (msg: JsMsg) => T | undefined, limit: number): Promise<{ items: T[]; lastSeq: number | undefined; more: boolean }> {
  let pending = (await consumer.info()).num_pending;
  const items: T[] = [];
  let lastSeq: number | undefined;
  try {
    while (pending > 0 && items.length < limit) {
      const batch = await consumer.fetch({ max_messages: Math.min(pending, 500), expires: 5_000 });
      let got = 0;
      for await (const msg of batch) {
        got++;
        pending--;
        lastSeq = msg.seq;
        const value = accept(msg);
        if (value !== undefined) items.push(value);
        if (items.length >= limit) break;
      }
      if (got === 0) break;
    }
  } finally {
    await consumer.delete().catch(() => undefined);
  }
  return { items, lastSeq, more: pending > 0 };
}
