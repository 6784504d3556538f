import { LogEndMessage, LogLine, LogMessage, logMessageSchema } from '@blixard/contracts';
import type { LogStore } from '@blixard/db';
import { Bus, decodeJson, ensurePullConsumer, JsMsg } from '@blixard/messaging';
import type { Logger, Metrics } from '@blixard/telemetry';

type ConsumerMessages = Awaited<ReturnType<Awaited<ReturnType<Bus['js']['consumers']['get']>>['consume']>>;

/**
 * Moves output lines from the logs stream into Postgres (`LogStore`), in chunks: the messages a
 * pull brings are grouped per attempt and consecutive lines stored as one chunk. A message is
 * acknowledged once its lines are committed; the store skips lines it already has, so a
 * redelivery or a second archiver (another scheduler replica) stores nothing twice.
 */
export class LogArchiver {
  private messages: ConsumerMessages | undefined;
  private queue: JsMsg[] = [];
  private processing: Promise<void> | undefined;
  private reading: Promise<void> | undefined;
  private readonly counters;

  constructor(private readonly o: { bus: Bus; store: LogStore; logger: Logger; metrics: Metrics; ackWaitMs: number }) {
    this.counters = {
      lines: o.metrics.counter('blixard_log_lines_archived_total', 'Output lines stored in Postgres, by result', ['result'] as const),
      rejected: o.metrics.counter('blixard_log_messages_rejected_total', 'Log messages that did not parse or named no job', ['reason'] as const),
    };
  }

  async start(): Promise<void> {
    const { bus } = this.o;
    const s = bus.subjects;
    await ensurePullConsumer(bus, s.streams.logs, s.consumers.logArchiver, s.logsAll, this.o.ackWaitMs);
    const consumer = await bus.js.consumers.get(s.streams.logs, s.consumers.logArchiver);
    this.messages = await consumer.consume({ max_messages: 512 });
    const messages = this.messages;
    this.reading = (async () => {
      for await (const msg of messages) {
        this.queue.push(msg);
        this.processing ??= this.drain().finally(() => (this.processing = undefined));
      }
    })().catch((err) => this.o.logger.warn({ err: String(err) }, 'log archiver stopped reading'));
  }

  async stop(): Promise<void> {
    await this.messages?.close();
    await this.reading;
    while (this.processing) await this.processing;
  }

  /** Stores what has arrived, batch after batch: lines of one attempt are applied in order. */
  private async drain(): Promise<void> {
    // Let a burst of deliveries gather into one batch.
    await new Promise((r) => setImmediate(r));
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0);
      const groups = new Map<string, { msg: JsMsg; m: LogMessage }[]>();
      for (const msg of batch) {
        const decoded = decodeJson(msg.data, logMessageSchema);
        if (!decoded.ok) {
          this.counters.rejected.inc({ reason: 'malformed' });
          this.o.logger.warn({ subject: msg.subject, error: decoded.error }, 'rejected a malformed log message');
          msg.term();
          continue;
        }
        const key = `${decoded.value.jobId}:${decoded.value.attempt}`;
        let group = groups.get(key);
        if (!group) groups.set(key, (group = []));
        group.push({ msg, m: decoded.value });
      }
      const all = [...groups.values()];
      const ends: { msg: JsMsg; m: LogEndMessage }[] = [];
      // A few attempts at a time: each is one transaction per run of lines.
      for (let i = 0; i < all.length; i += 4) await Promise.all(all.slice(i, i + 4).map((g) => this.storeGroup(g, ends)));
      // End markers (one per attempt, most attempts print nothing) together in one statement.
      await this.storeEnds(ends);
    }
  }

  private async storeEnds(ends: { msg: JsMsg; m: LogEndMessage }[]): Promise<void> {
    if (ends.length === 0) return;
    try {
      await this.o.store.endMany(ends.map((e) => e.m));
      for (const e of ends) e.msg.ack();
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== '23503') {
        this.o.logger.warn({ err: String(err) }, 'log end markers not stored; will be redelivered');
        for (const e of ends) e.msg.nak(1000);
        return;
      }
    }
    // One names no job: find it.
    for (const e of ends) {
      try {
        await this.o.store.endMany([e.m]);
        e.msg.ack();
      } catch (err) {
        if ((err as { code?: string }).code === '23503') {
          this.counters.rejected.inc({ reason: 'unknown_job' });
          e.msg.term();
        } else e.msg.nak(1000);
      }
    }
  }

  private async storeGroup(items: { msg: JsMsg; m: LogMessage }[], ends: { msg: JsMsg; m: LogEndMessage }[]): Promise<void> {
    const { jobId, attempt } = items[0]!.m;
    let i = 0;
    while (i < items.length) {
      const first = items[i]!;
      if (first.m.type === 'end') {
        ends.push({ msg: first.msg, m: first.m });
        i++;
        continue;
      }
      // A run: consecutive `lines` messages whose lines follow on without a gap.
      const run = [first];
      while (i + run.length < items.length) {
        const next = items[i + run.length]!;
        const prev = run[run.length - 1]!.m;
        if (next.m.type !== 'lines' || prev.type !== 'lines' || next.m.lines[0]!.seq !== prev.lines[prev.lines.length - 1]!.seq + 1) break;
        run.push(next);
      }
      try {
        const lines: LogLine[] = run.flatMap((r) => (r.m.type === 'lines' ? r.m.lines : []));
        const result = await this.o.store.append(jobId, attempt, lines);
        this.counters.lines.inc({ result: 'stored' }, result.stored);
        if (result.skipped > 0) this.counters.lines.inc({ result: 'duplicate' }, result.skipped);
        if (result.dropped > 0) this.counters.lines.inc({ result: 'over_cap' }, result.dropped);
        for (const r of run) r.msg.ack();
      } catch (err) {
        if ((err as { code?: string }).code === '23503') {
          // No such job: nothing to attach the lines to.
          this.counters.rejected.inc({ reason: 'unknown_job' }, run.length);
          for (const r of run) r.msg.term();
        } else {
          // Postgres trouble: this attempt's messages come back, in order, after a pause.
          this.o.logger.warn({ jobId, attempt, err: String(err) }, 'log lines not stored; will be redelivered');
          for (const r of items.slice(i)) r.msg.nak(1000);
          return;
        }
      }
      i += run.length;
    }
  }
}
