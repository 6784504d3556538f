import { randomUUID } from 'node:crypto';
import { CloudEvent, eventTypeMatches, Subjects, webhookEvent, WebhookDeliveryView, WebhookView } from '@blixard/contracts';
import { backoffDelayMs } from '@blixard/domain';
import type { Pool } from 'pg';
import { poolOf, type Db } from './prisma';
import { inTransaction, insertOutbox, Sql } from './sql';

export interface WebhookInput {
  url: string;
  events: string[];
  secret: string;
  /** The owning tenant (default `default`): the webhook receives that tenant's events only. */
  tenant?: string;
  /** Whether it also receives fleet (worker) events, which belong to no tenant (default true). */
  fleetEvents?: boolean;
}

/** How a failing delivery is retried and when a failing webhook is disabled. */
export interface WebhookRetryPolicy {
  /** First wait after a failed attempt; doubled each attempt, with 20% jitter. */
  retryBaseMs: number;
  retryMaxMs: number;
  /** A delivery is retried for this long after it was created, then it fails. */
  retryForMs: number;
  /** A webhook whose attempts have all failed for this long is disabled. */
  disableAfterMs: number;
}

/** A delivery a notifier took (it holds it until `lockedUntil`) to make its next attempt. */
export interface DueDelivery {
  id: string;
  webhookId: string;
  url: string;
  secret: string;
  eventId: string;
  eventType: string;
  event: CloudEvent;
  /** The number of the attempt about to be made. */
  attempt: number;
  createdAt: Date;
}

export interface DeliveryAttemptOutcome {
  ok: boolean;
  statusCode: number | null;
  error: string | null;
  durationMs: number;
}

/**
 * Webhook subscriptions, the deliveries made for them (one per event and webhook) and each
 * delivery's attempts. Deliveries are taken with `FOR UPDATE SKIP LOCKED` plus a lease, so
 * several notifiers share them and one that dies mid-attempt hands them back when the lease ends.
 */
export class WebhookStore {
  private readonly pool: Pool;

  constructor(
    db: Db,
    private readonly options: { subjects: Subjects; source: string },
  ) {
    this.pool = poolOf(db);
  }

  async create(input: WebhookInput): Promise<WebhookView> {
    const { rows } = await this.pool.query<RawWebhook>(
      `INSERT INTO webhooks (id, url, events, secret, tenant, fleet_events) VALUES ($1::uuid, $2, $3::jsonb, $4, $5, $6) RETURNING *`,
      [randomUUID(), input.url, JSON.stringify(input.events), input.secret, input.tenant ?? 'default', input.fleetEvents ?? true],
    );
    return webhookView(rows[0]!);
  }

  /** `tenant`: that tenant's webhooks only (undefined: every tenant's). */
  async list(tenant?: string): Promise<WebhookView[]> {
    const { rows } = await this.pool.query<RawWebhook>(`SELECT * FROM webhooks WHERE ($1::text IS NULL OR tenant = $1) ORDER BY created_at, id`, [tenant ?? null]);
    return rows.map(webhookView);
  }

  /** Another tenant's webhook is null, like one that does not exist. */
  async get(id: string, tenant?: string): Promise<WebhookView | null> {
    const { rows } = await this.pool.query<RawWebhook>(`SELECT * FROM webhooks WHERE id = $1::uuid AND ($2::text IS NULL OR tenant = $2)`, [id, tenant ?? null]);
    return rows[0] ? webhookView(rows[0]) : null;
  }

  /** Deletes the webhook with its deliveries; false when there was none (in `tenant`). */
  async delete(id: string, tenant?: string): Promise<boolean> {
    const { rowCount } = await this.pool.query(`DELETE FROM webhooks WHERE id = $1::uuid AND ($2::text IS NULL OR tenant = $2)`, [id, tenant ?? null]);
    return (rowCount ?? 0) > 0;
  }

  /**
   * Makes one delivery per event and enabled webhook whose patterns match the event's type.
   * Idempotent: an event delivered again by the stream makes no second delivery.
   */
  async enqueue(events: { event: CloudEvent; seq: number }[]): Promise<number> {
    if (events.length === 0) return 0;
    const { rows: hooks } = await this.pool.query<{ id: string; events: string[]; tenant: string; fleet_events: boolean }>(`SELECT id, events, tenant, fleet_events FROM webhooks WHERE enabled`);
    const rows = events.flatMap(({ event, seq }) =>
      hooks
        .filter((h) => h.events.some((p) => eventTypeMatches(p, event.type)) && mayReceive(h, event))
        .map((h) => ({ webhookId: h.id, event, seq })),
    );
    if (rows.length === 0) return 0;
    const { rowCount } = await this.pool.query(
      `INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_type, event_seq, event)
       SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::bigint[], $6::jsonb[])
       ON CONFLICT (webhook_id, event_id) DO NOTHING`,
      [
        rows.map(() => randomUUID()),
        rows.map((r) => r.webhookId),
        rows.map((r) => r.event.id),
        rows.map((r) => r.event.type),
        rows.map((r) => r.seq),
        rows.map((r) => JSON.stringify(r.event)),
      ],
    );
    return rowCount ?? 0;
  }

  /** Takes up to `limit` deliveries due now, holding each for `lockMs`. */
  async claimDue(limit: number, lockMs: number): Promise<DueDelivery[]> {
    const { rows } = await this.pool.query<RawDue>(
      `WITH due AS (
         SELECT d.id FROM webhook_deliveries d
         WHERE d.status = 'pending' AND d.next_attempt_at <= now()
           AND (d.locked_until IS NULL OR d.locked_until < now())
         ORDER BY d.next_attempt_at
         LIMIT $1
         FOR UPDATE SKIP LOCKED
       )
       UPDATE webhook_deliveries d SET locked_until = now() + ($2::int * interval '1 millisecond')
       FROM due, webhooks w
       WHERE d.id = due.id AND w.id = d.webhook_id AND w.enabled
       RETURNING d.id, d.webhook_id, d.event_id, d.event_type, d.event, d.attempt_count, d.created_at, w.url, w.secret`,
      [limit, lockMs],
    );
    return rows.map((r) => ({
      id: r.id,
      webhookId: r.webhook_id,
      url: r.url,
      secret: r.secret,
      eventId: r.event_id,
      eventType: r.event_type,
      event: r.event,
      attempt: r.attempt_count + 1,
      createdAt: r.created_at,
    }));
  }

  /**
   * Records one attempt and decides what follows: done, another attempt after a backoff, or
   * failed once the retry window has passed. A webhook whose attempts have all failed for
   * `disableAfterMs` is disabled, its pending deliveries fail, and `dev.blixard.webhook.disabled`
   * is written to the outbox in the same transaction.
   */
  async recordAttempt(
    d: DueDelivery,
    outcome: DeliveryAttemptOutcome,
    policy: WebhookRetryPolicy,
  ): Promise<{ status: 'succeeded' | 'pending' | 'failed'; disabled: boolean }> {
    return inTransaction(this.pool, async (tx) => {
      await tx.query(
        `INSERT INTO webhook_delivery_attempts (delivery_id, attempt, status_code, error, duration_ms) VALUES ($1::uuid, $2, $3, $4, $5)
         ON CONFLICT (delivery_id, attempt) DO NOTHING`,
        [d.id, d.attempt, outcome.statusCode, outcome.error?.slice(0, 2000) ?? null, Math.round(outcome.durationMs)],
      );
      const { rows: hooks } = await tx.query<RawWebhook & { now: Date }>(`SELECT *, now() AS now FROM webhooks WHERE id = $1::uuid FOR UPDATE`, [d.webhookId]);
      const hook = hooks[0];
      if (!hook) return { status: 'failed', disabled: false }; // deleted meanwhile: its deliveries went with it
      const now = hook.now;
      if (outcome.ok) {
        await tx.query(
          `UPDATE webhook_deliveries SET status = 'succeeded', attempt_count = $2, finished_at = $3, next_attempt_at = NULL, locked_until = NULL WHERE id = $1::uuid`,
          [d.id, d.attempt, now],
        );
        await tx.query(`UPDATE webhooks SET failing_since = NULL WHERE id = $1::uuid AND failing_since IS NOT NULL`, [d.webhookId]);
        return { status: 'succeeded', disabled: false };
      }
      const delay = backoffDelayMs({ type: 'exponential', baseMs: policy.retryBaseMs, maxMs: policy.retryMaxMs, jitter: 0.2 }, d.attempt);
      const next = new Date(now.getTime() + delay);
      // A webhook disabled meanwhile (by another attempt) gets no more attempts either.
      const giveUp = !hook.enabled || next.getTime() - d.createdAt.getTime() > policy.retryForMs;
      await tx.query(
        `UPDATE webhook_deliveries SET status = $2, attempt_count = $3, next_attempt_at = $4, finished_at = $5, locked_until = NULL WHERE id = $1::uuid`,
        [d.id, giveUp ? 'failed' : 'pending', d.attempt, giveUp ? null : next, giveUp ? now : null],
      );
      const failingSince = hook.failing_since ?? now;
      if (!hook.failing_since) await tx.query(`UPDATE webhooks SET failing_since = $2 WHERE id = $1::uuid`, [d.webhookId, now]);
      const disable = hook.enabled && now.getTime() - failingSince.getTime() >= policy.disableAfterMs;
      if (disable) {
        const reason = `every delivery attempt failed for ${Math.round((now.getTime() - failingSince.getTime()) / 1000)} s (last: ${outcome.statusCode !== null ? `HTTP ${outcome.statusCode}` : outcome.error})`;
        await this.disable(tx, hook, reason, failingSince, now);
      }
      return { status: giveUp || disable ? 'failed' : 'pending', disabled: disable };
    });
  }

  private async disable(tx: Sql, hook: RawWebhook, reason: string, failingSince: Date, now: Date): Promise<void> {
    await tx.query(`UPDATE webhooks SET enabled = false, disabled_at = $2, disabled_reason = $3, updated_at = $2 WHERE id = $1::uuid`, [hook.id, now, reason]);
    await tx.query(
      `UPDATE webhook_deliveries SET status = 'failed', finished_at = $2, next_attempt_at = NULL, locked_until = NULL WHERE webhook_id = $1::uuid AND status = 'pending'`,
      [hook.id, now],
    );
    const event = webhookEvent('disabled', { webhookId: hook.id, url: hook.url, reason, failingSince: failingSince.toISOString(), disabledAt: now.toISOString(), tenant: hook.tenant }, this.options.source, now);
    await insertOutbox(tx, [{ subject: this.options.subjects.event('webhook', 'disabled'), event }]);
  }

  /** Deletes deliveries (with their attempts) that finished more than `olderThanMs` ago; returns how many. */
  async pruneFinished(olderThanMs: number, limit = 10_000): Promise<number> {
    const { rowCount } = await this.pool.query(
      `DELETE FROM webhook_deliveries WHERE id IN (
         SELECT id FROM webhook_deliveries
         WHERE status <> 'pending' AND finished_at < now() - ($1::bigint * interval '1 millisecond')
         LIMIT $2)`,
      [olderThanMs, limit],
    );
    return rowCount ?? 0;
  }

  /** The webhook's deliveries, newest first, each with its attempts; null when there is no such webhook. */
  async deliveries(webhookId: string, limit: number, status?: string, tenant?: string): Promise<WebhookDeliveryView[] | null> {
    if (!(await this.get(webhookId, tenant))) return null;
    const { rows } = await this.pool.query<RawDelivery>(
      `SELECT id, webhook_id, event_id, event_type, event_seq, status, next_attempt_at, created_at, finished_at
       FROM webhook_deliveries WHERE webhook_id = $1::uuid AND ($3::text IS NULL OR status = $3)
       ORDER BY created_at DESC, event_seq DESC LIMIT $2`,
      [webhookId, limit, status ?? null],
    );
    const { rows: attempts } = await this.pool.query<{ delivery_id: string; attempt: number; at: Date; status_code: number | null; error: string | null; duration_ms: number }>(
      `SELECT delivery_id, attempt, at, status_code, error, duration_ms FROM webhook_delivery_attempts WHERE delivery_id = ANY($1::uuid[]) ORDER BY attempt`,
      [rows.map((r) => r.id)],
    );
    return rows.map((r) => ({
      id: r.id,
      webhookId: r.webhook_id,
      eventId: r.event_id,
      eventType: r.event_type,
      eventSeq: Number(r.event_seq),
      status: r.status as WebhookDeliveryView['status'],
      attempts: attempts
        .filter((a) => a.delivery_id === r.id)
        .map((a) => ({ attempt: a.attempt, at: a.at.toISOString(), statusCode: a.status_code, error: a.error, durationMs: a.duration_ms })),
      nextAttemptAt: r.next_attempt_at?.toISOString() ?? null,
      createdAt: r.created_at.toISOString(),
      finishedAt: r.finished_at?.toISOString() ?? null,
    }));
  }
}

interface RawWebhook {
  id: string;
  url: string;
  events: string[];
  secret: string;
  enabled: boolean;
  disabled_at: Date | null;
  disabled_reason: string | null;
  failing_since: Date | null;
  tenant: string;
  created_at: Date;
  updated_at: Date;
}

interface RawDue {
  id: string;
  webhook_id: string;
  event_id: string;
  event_type: string;
  event: CloudEvent;
  attempt_count: number;
  created_at: Date;
  url: string;
  secret: string;
}

interface RawDelivery {
  id: string;
  webhook_id: string;
  event_id: string;
  event_type: string;
  event_seq: string;
  status: string;
  next_attempt_at: Date | null;
  created_at: Date;
  finished_at: Date | null;
}

/**
 * Tenancy of deliveries: an event of a tenant's object (a job, a webhook: `data.tenant`, absent on
 * events older than tenancy: `default`) goes to that tenant's webhooks only; a fleet event (a
 * worker's, no tenant) to webhooks whose creator could read the fleet.
 */
export function mayReceive(hook: { tenant: string; fleet_events: boolean }, event: CloudEvent): boolean {
  const data = (event.data ?? {}) as { tenant?: unknown };
  if (event.type.startsWith('dev.blixard.worker.')) return hook.fleet_events;
  return (typeof data.tenant === 'string' ? data.tenant : 'default') === hook.tenant;
}

/** The secret never leaves the store through a view. */
function webhookView(r: RawWebhook): WebhookView {
  return {
    id: r.id,
    tenant: r.tenant,
    url: r.url,
    events: r.events,
    secretSet: true,
    enabled: r.enabled,
    disabledAt: r.disabled_at?.toISOString() ?? null,
    disabledReason: r.disabled_reason,
    failingSince: r.failing_since?.toISOString() ?? null,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
  };
}
