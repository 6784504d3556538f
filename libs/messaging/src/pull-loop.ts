import type { Consumer, JsMsg } from '@nats-io/jetstream';
import type { Logger, Metrics } from '@blixard/telemetry';
import { consumeJsMessage } from './tracing';

export interface PullLoopOptions {
  consumer: Consumer;
  /** At most this many handlers run at once; no more messages are pulled than there is room for. */
  concurrency: number;
  handle(msg: JsMsg): Promise<void>;
  logger: Logger;
  /** How long one pull waits for messages. */
  expiresMs?: number;
  /** Optional gate: while it returns false, nothing new is pulled (draining). */
  accepting?: () => boolean;
  /** Counts failed pulls (`blixard_nats_errors_total{operation="pull"}`) when given. */
  metrics?: Metrics;
  /** Optional: room shared with other loops (one executor's slots); at most this many are pulled. */
  free?: () => number;
}

/**
 * Pulls from a durable consumer with bounded concurrency until `stop()`; then waits for the
 * handlers in flight. A handler owns its message: it acks, naks or terms it.
 */
export class PullLoop {
  private stopped = false;
  private readonly inflight = new Set<Promise<void>>();
  private loop: Promise<void> | undefined;

  constructor(private readonly options: PullLoopOptions) {}

  start(): void {
    this.loop = this.run();
  }

  get running(): number {
    return this.inflight.size;
  }

  private async run(): Promise<void> {
    const { consumer, concurrency, logger, expiresMs = 1000 } = this.options;
    while (!this.stopped) {
      const free = Math.min(concurrency - this.inflight.size, this.options.free?.() ?? Infinity);
      if (free <= 0 || (this.options.accepting && !this.options.accepting())) {
        await Promise.race([...this.inflight, sleep(100)]);
        continue;
      }
      try {
        const batch = await consumer.fetch({ max_messages: free, expires: expiresMs });
        for await (const msg of batch) {
          // Under a CONSUMER span continuing the trace the message carries (tracing.ts).
          const p: Promise<void> = consumeJsMessage(msg, () => this.options.handle(msg))
            .catch((err) => logger.error({ err }, 'message handler failed'))
            .finally(() => this.inflight.delete(p));
          this.inflight.add(p);
          if (this.stopped) break;
        }
      } catch (err) {
        if (this.stopped) break;
        this.options.metrics?.natsErrors.inc({ operation: 'pull' });
        logger.warn({ err: String(err) }, 'pull failed; retrying');
        await sleep(500);
      }
    }
  }

  /** Stops pulling; resolves when every handler in flight has finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    await Promise.allSettled([...this.inflight]);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
