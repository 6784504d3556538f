import type { Db } from './prisma';

/** Publishes one event; must resolve only once the broker has it (JetStream ack). */
export type EventPublisher = (subject: string, event: unknown, messageId: string) => Promise<void>;

/**
 * The outbox relay: events are written in the transaction of the state change they report, and
 * published from here afterwards, in id order, at least once (JetStream drops the duplicates of a
 * message id within its window). Several relays may run: SKIP LOCKED gives each its own rows.
 */
export class OutboxRelay {
  constructor(
    private readonly db: Db,
    private readonly publish: EventPublisher,
  ) {}

  /** Publishes up to `limit` pending events; returns how many. */
  async relayOnce(limit = 200): Promise<number> {
    return this.db.$transaction(async (tx) => {
      const rows = await tx.$queryRaw<{ id: bigint; subject: string; event: unknown }[]>`
        SELECT id, subject, event FROM outbox_events
        WHERE published_at IS NULL
        ORDER BY id
        LIMIT ${limit}
        FOR UPDATE SKIP LOCKED`;
      if (rows.length === 0) return 0;
      // A failed publish throws, the transaction rolls back, and the rows are tried again.
      await Promise.all(rows.map((r) => this.publish(r.subject, r.event, `outbox-${r.id}`)));
      await tx.$executeRaw`UPDATE outbox_events SET published_at = now() WHERE id = ANY(${rows.map((r) => r.id)}::bigint[])`;
      return rows.length;
    });
  }

  /** Deletes published events older than `olderThanMs` (they live on in the events stream). */
  async prune(olderThanMs: number): Promise<number> {
    return this.db.$executeRaw`
      DELETE FROM outbox_events
      WHERE published_at < now() - (${olderThanMs}::int * interval '1 millisecond')`;
  }
}
