import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { ApiKeyView } from '@blixard/contracts';
import type { Pool } from 'pg';
import { poolOf, type Db } from './prisma';

/**
 * API keys. A token is `bk_<prefix>_<secret>`: the prefix (8 random bytes, hex) finds the row,
 * the secret (32 random bytes, base64url) is checked against its stored SHA-256 with a
 * constant-time comparison. A fast hash is enough: the secret has 256 bits of entropy, so
 * there is nothing to brute-force, unlike a password. The token itself is never stored.
 */
export interface ApiKeyPrincipal {
  keyId: string;
  keyName: string;
  tenant: string;
  scopes: string[];
}

export type Authentication =
  | { ok: true; principal: ApiKeyPrincipal }
  | { ok: false; reason: 'invalid' | 'revoked' | 'expired' };

export interface NewApiKey {
  tenant: string;
  name: string;
  scopes: string[];
  expiresAt?: Date | null;
}

const TOKEN_PATTERN = /^bk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
/** Compared against when no key has the prefix, so an unknown prefix costs what a wrong secret costs. */
const DUMMY_HASH = createHash('sha256').update('blixard-no-such-key').digest();

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

export function newApiKeyToken(): { token: string; prefix: string; hash: string } {
  const prefix = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { token: `bk_${prefix}_${secret}`, prefix, hash: sha256(secret).toString('hex') };
}

export class ApiKeyStore {
  private readonly pool: Pool;
  /** When this process last wrote each key's last_used_at (at most once a minute per key). */
  private readonly touched = new Map<string, number>();

  constructor(
    db: Db | Pool,
    private readonly options: { touchIntervalMs?: number } = {},
  ) {
    this.pool = '$connect' in db ? poolOf(db as Db) : (db as Pool);
  }

  /** Makes a key; the token is returned here and nowhere else. */
  async create(input: NewApiKey): Promise<{ key: ApiKeyView; token: string }> {
    const { token, prefix, hash } = newApiKeyToken();
    const { rows } = await this.pool.query<RawKey>(
      `INSERT INTO api_keys (id, tenant, name, scopes, prefix, hash, expires_at) VALUES ($1::uuid, $2, $3, $4::text[], $5, $6, $7) RETURNING *`,
      [randomUUID(), input.tenant, input.name, input.scopes, prefix, hash, input.expiresAt ?? null],
    );
    return { key: keyView(rows[0]!), token };
  }

  /** `tenant`: that tenant's keys (undefined: all), newest first; revoked ones too. */
  async list(tenant?: string): Promise<ApiKeyView[]> {
    const { rows } = await this.pool.query<RawKey>(`SELECT * FROM api_keys WHERE ($1::text IS NULL OR tenant = $1) ORDER BY created_at DESC, id`, [tenant ?? null]);
    return rows.map(keyView);
  }

  async get(id: string, tenant?: string): Promise<ApiKeyView | null> {
    const { rows } = await this.pool.query<RawKey>(`SELECT * FROM api_keys WHERE id = $1::uuid AND ($2::text IS NULL OR tenant = $2)`, [id, tenant ?? null]);
    return rows[0] ? keyView(rows[0]) : null;
  }

  /** Revokes a key at once (idempotent); null when there is no such key (in `tenant`). */
  async revoke(id: string, tenant?: string): Promise<ApiKeyView | null> {
    const { rows } = await this.pool.query<RawKey>(
      `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1::uuid AND ($2::text IS NULL OR tenant = $2) RETURNING *`,
      [id, tenant ?? null],
    );
    return rows[0] ? keyView(rows[0]) : null;
  }

  /** Checks a token; never throws on a malformed one. */
  async authenticate(token: string, now: Date = new Date()): Promise<Authentication> {
    const m = TOKEN_PATTERN.exec(token);
    if (!m) return { ok: false, reason: 'invalid' };
    const [, prefix, secret] = m as unknown as [string, string, string];
    const { rows } = await this.pool.query<RawKey>(`SELECT * FROM api_keys WHERE prefix = $1`, [prefix]);
    const row = rows[0];
    const expected = row ? Buffer.from(row.hash, 'hex') : DUMMY_HASH;
    const given = sha256(secret);
    const matches = expected.length === given.length && timingSafeEqual(expected, given) && row !== undefined;
    if (!matches || !row) return { ok: false, reason: 'invalid' };
    if (row.revoked_at) return { ok: false, reason: 'revoked' };
    if (row.expires_at && row.expires_at.getTime() <= now.getTime()) return { ok: false, reason: 'expired' };
    this.touch(row.id, now);
    return { ok: true, principal: { keyId: row.id, keyName: row.name, tenant: row.tenant, scopes: row.scopes } };
  }

  /** Records the key's use, at most once per interval per key and process; never fails the request. */
  private touch(id: string, now: Date): void {
    const last = this.touched.get(id);
    if (last !== undefined && now.getTime() - last < (this.options.touchIntervalMs ?? 60_000)) return;
    this.touched.set(id, now.getTime());
    this.pool.query(`UPDATE api_keys SET last_used_at = $2 WHERE id = $1::uuid`, [id, now]).catch(() => this.touched.delete(id));
  }
}

interface RawKey {
  id: string;
  tenant: string;
  name: string;
  scopes: string[];
  prefix: string;
  hash: string;
  created_at: Date;
  last_used_at: Date | null;
  expires_at: Date | null;
  revoked_at: Date | null;
}

function keyView(r: RawKey): ApiKeyView {
  return {
    id: r.id,
    tenant: r.tenant,
    name: r.name,
    scopes: r.scopes,
    prefix: `bk_${r.prefix}_`,
    createdAt: r.created_at.toISOString(),
    lastUsedAt: r.last_used_at?.toISOString() ?? null,
    expiresAt: r.expires_at?.toISOString() ?? null,
    revokedAt: r.revoked_at?.toISOString() ?? null,
  };
}
