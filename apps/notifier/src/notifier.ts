import type { CloudEvent } from '@blixard/contracts';
import type { DueDelivery, WebhookRetryPolicy, WebhookStore } from '@blixard/db';
import { Bus, ensurePullConsumer, JsMsg } from '@blixard/messaging';
import { Trigger } from '@blixard/service';
import type { Logger, Metrics } from '@blixard/telemetry';
import { deliverWebhook } from './deliver';

export interface NotifierOptions {
  bus: Bus;
  store: WebhookStore;
  logger: Logger;
  metrics: Metrics;
  policy: WebhookRetryPolicy;
  timeoutMs: number;
  allowPrivate: boolean;
  /** Deliveries in flight at once. */
  concurrency: number;
}

/** Finished deliveries (and their attempts) stay visible this long. */
export const DELIVERY_RETENTION_MS = 7 * 24 * 3_600_000;

type ConsumerMessages = Awaited<ReturnType<Awaited<ReturnType<Bus['js']['consumers']['get']>>['consume']>>;

/**
 * The notifier: reads the events stream with a durable consumer (shared by every replica) and
 * turns each event into one delivery per matching webhook, in Postgres, before acknowledging it;
 * then delivers them, each attempt recorded, retried with backoff. Delivery is at-least-once and
 * unordered: a receiver de-duplicates by the event `id` and orders by `time`.
 */
export class Notifier {
  private messages: ConsumerMessages | undefined;
  private reading: Promise<void> | undefined;
  private queue: JsMsg[] = [];
  private enqueuing: Promise<void> | undefined;
  private readonly inflight = new Set<Promise<void>>();
  private readonly sender: Trigger;
  private readonly counters;
  private lastPrune = 0;

  constructor(private readonly o: NotifierOptions) {
    const m = o.metrics;
    this.counters = {
      events: m.counter('blixard_notifier_events_total', 'Events read from the stream'),
      attempts: m.counter('blixard_webhook_attempts_total', 'Webhook delivery attempts, by result', ['result'] as const),
      disabled: m.counter('blixard_webhooks_disabled_total', 'Webhooks disabled after failing too long'),
      errors: m.counter('blixard_notifier_errors_total', 'Errors in the notifier loops (database or NATS)', ['loop'] as const),
    };
    // The backstop poll also catches deliveries whose backoff has just ended.
    this.sender = new Trigger(() => this.sendRound(), Math.min(1_000, Math.max(50, Math.floor(o.policy.retryBaseMs / 2))), (err) => {
      this.counters.errors.inc({ loop: 'send' });
      o.logger.warn({ err: String(err) }, 'webhook send round failed; will retry');
    });
  }

  async start(): Promise<void> {
    const { bus } = this.o;
    const s = bus.subjects;
    // A new notifier starts with the events that come next, not with a week of history.
    await ensurePullConsumer(bus, s.streams.events, s.consumers.notifier, s.eventAll, 30_000, undefined, 'new');
    const consumer = await bus.js.consumers.get(s.streams.events, s.consumers.notifier);
    this.messages = await consumer.consume({ max_messages: 256 });
    const messages = this.messages;
    this.reading = (async () => {
      for await (const msg of messages) {
        this.queue.push(msg);
        this.enqueuing ??= this.enqueueQueued().finally(() => (this.enqueuing = undefined));
      }
    })().catch((err) => this.o.logger.warn({ err: String(err) }, 'notifier stopped reading events'));
    this.sender.start();
  }

  async stop(): Promise<void> {
    await this.messages?.close();
    await this.reading;
    while (this.enqueuing) await this.enqueuing;
    await this.sender.stop();
    await Promise.allSettled([...this.inflight]);
  }

  /** Events → deliveries, a batch per transaction; acknowledged only once stored. */
  private async enqueueQueued(): Promise<void> {
    await new Promise((r) => setImmediate(r));
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0);
      const events: { event: CloudEvent; seq: number }[] = [];
      for (const msg of batch) {
        try {
          const event = msg.json<CloudEvent>();
          if (typeof event?.id !== 'string' || typeof event.type !== 'string') throw new Error('not a CloudEvent');
          events.push({ event, seq: msg.seq });
        } catch {
          this.o.logger.warn({ subject: msg.subject, seq: msg.seq }, 'skipped a message of the events stream that is not a CloudEvent');
        }
      }
      try {
        const made = await this.o.store.enqueue(events);
        for (const msg of batch) msg.ack();
        this.counters.events.inc(batch.length);
        if (made > 0) this.sender.kick();
      } catch (err) {
        this.counters.errors.inc({ loop: 'enqueue' });
        this.o.logger.warn({ err: String(err) }, 'events not turned into deliveries; they will be redelivered');
        for (const msg of batch) msg.nak(1_000);
      }
    }
  }

  /** Takes due deliveries as far as there is room and sends them; true when more may be due. */
  private async sendRound(): Promise<boolean> {
    if (Date.now() - this.lastPrune > 600_000) {
      this.lastPrune = Date.now();
      await this.o.store.pruneFinished(DELIVERY_RETENTION_MS);
    }
    const room = this.o.concurrency - this.inflight.size;
    if (room <= 0) return false;
    // Held for an attempt's timeout and then some: a notifier that dies mid-attempt hands it back.
    const due = await this.o.store.claimDue(room, this.o.timeoutMs + 10_000);
    for (const d of due) {
      const p: Promise<void> = this.attempt(d).finally(() => {
        this.inflight.delete(p);
        this.sender.kick();
      });
      this.inflight.add(p);
    }
    return due.length === room;
  }

  private async attempt(d: DueDelivery): Promise<void> {
    const outcome = await deliverWebhook(d, { timeoutMs: this.o.timeoutMs, allowPrivate: this.o.allowPrivate });
    this.counters.attempts.inc({ result: outcome.ok ? 'succeeded' : 'failed' });
    try {
      const result = await this.o.store.recordAttempt(d, outcome, this.o.policy);
      if (result.disabled) {
        this.counters.disabled.inc();
        this.o.logger.warn({ webhookId: d.webhookId }, 'webhook disabled: its deliveries have failed for too long');
      }
      if (!outcome.ok) this.o.logger.info({ webhookId: d.webhookId, deliveryId: d.id, attempt: d.attempt, error: outcome.error, next: result.status }, 'webhook delivery attempt failed');
    } catch (err) {
      // Not recorded: the lease runs out and the attempt is made again (at-least-once).
      this.counters.errors.inc({ loop: 'record' });
      this.o.logger.warn({ deliveryId: d.id, err: String(err) }, 'webhook attempt not recorded');
    }
  }
}
