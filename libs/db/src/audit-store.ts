import type { AuditEntryView, AuditPage } from '@blixard/contracts';
import type { Pool } from 'pg';
import { poolOf, type Db } from './prisma';

export interface AuditRecord {
  actor: string;
  actorName?: string | null;
  tenant?: string;
  remoteAddress: string | null;
  action: string;
  targetType: string;
  targetId: string | null;
  details?: Record<string, unknown>;
}

/** The audit log: who did what through the API, and when. Append-only. */
export class AuditStore {
  private readonly pool: Pool;

  constructor(db: Db) {
    this.pool = poolOf(db);
  }

  async record(entry: AuditRecord): Promise<void> {
    await this.pool.query(
      `INSERT INTO audit_log (actor, remote_address, action, target_type, target_id, details, actor_name, tenant) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8)`,
      [entry.actor, entry.remoteAddress, entry.action, entry.targetType, entry.targetId, JSON.stringify(entry.details ?? {}), entry.actorName ?? null, entry.tenant ?? 'default'],
    );
  }

  /**
   * Newest first. `action` matches exactly, or a prefix with `.*` (`job.*`); `cursor` is the
   * `nextCursor` of the previous page (an entry id).
   */
  async list(filter: { action?: string; since?: Date; actor?: string; targetId?: string; tenant?: string }, limit: number, cursor?: string): Promise<AuditPage> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: string, value: unknown) => {
      params.push(value);
      where.push(sql.replace('?', `$${params.length}`));
    };
    if (filter.action?.endsWith('.*')) add(`action LIKE ?`, `${filter.action.slice(0, -1).replace(/[\\%_]/g, '\\$&')}%`);
    else if (filter.action) add(`action = ?`, filter.action);
    if (filter.since) add(`at >= ?`, filter.since);
    if (filter.actor) add(`actor = ?`, filter.actor);
    if (filter.targetId) add(`target_id = ?`, filter.targetId);
    if (filter.tenant !== undefined) add(`tenant = ?`, filter.tenant);
    if (cursor) add(`id < ?::bigint`, cursor);
    params.push(limit + 1);
    const { rows } = await this.pool.query<RawEntry>(
      `SELECT * FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT $${params.length}`,
      params,
    );
    const items = rows.slice(0, limit).map(entryView);
    return { items, nextCursor: rows.length > limit ? items[items.length - 1]!.id : null };
  }
}

interface RawEntry {
  id: string;
  at: Date;
  actor: string;
  actor_name: string | null;
  tenant: string;
  remote_address: string | null;
  action: string;
  target_type: string;
  target_id: string | null;
  details: Record<string, unknown>;
}

function entryView(r: RawEntry): AuditEntryView {
  return {
    id: String(r.id),
    at: r.at.toISOString(),
    actor: r.actor,
    actorName: r.actor_name,
    tenant: r.tenant,
    remoteAddress: r.remote_address,
    action: r.action,
    targetType: r.target_type,
    targetId: r.target_id,
    details: r.details,
  };
}
