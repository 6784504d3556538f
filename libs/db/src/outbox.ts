import type { Pool } from 'pg';
import { poolOf, type Db } from './prisma';
import { inTransaction, prepared } from './sql';

/** Publishes one event; must resolve only once the broker has it (JetStream ack). */
export type EventPublisher = (subject: string, event: unknown, messageId: string) => Promise<void>;

/**
 * The outbox relay: events are written in the transaction of the state change they report, and
 * published from here afterwards, in id order, at least once (JetStream drops the duplicates of a
 * message id within its window). Several relays may run: SKIP LOCKED gives each its own rows.
 */
export class OutboxRelay {
  private readonly pool: Pool;

  constructor(
    db: Db,
    private readonly publish: EventPublisher,
  ) {
    this.pool = poolOf(db);
  }

  /** Publishes up to `limit` pending events; returns how many. */
  async relayOnce(limit = 200): Promise<number> {
    return inTransaction(this.pool, async (tx) => {
      const { rows } = await tx.query<{ id: string; subject: string; event: unknown }>({
        ...prepared(`SELECT id, subject, event FROM outbox_events
         WHERE published_at IS NULL
         ORDER BY id
         LIMIT $1
         FOR UPDATE SKIP LOCKED`),
        values: [limit],
      });
      if (rows.length === 0) return 0;
      // A failed publish throws, the transaction rolls back, and the rows are tried again.
      await Promise.all(rows.map((r) => this.publish(r.subject, r.event, `outbox-${r.id}`)));
      await tx.query({ ...prepared(`UPDATE outbox_events SET published_at = now() WHERE id = ANY($1::bigint[])`), values: [rows.map((r) => r.id)] });
      return rows.length;
    });
  }

  /** Deletes published events older than `olderThanMs` (they live on in the events stream). */
  async prune(olderThanMs: number): Promise<number> {
    const { rowCount } = await this.pool.query(
      `DELETE FROM outbox_events WHERE published_at < now() - ($1::int * interval '1 millisecond')`,
      [olderThanMs],
    );
    return rowCount ?? 0;
  }
}
