import { BlixardError, FieldError } from './errors';

/**
 * Access control: who may do what. An API key belongs to one tenant and holds scopes; every
 * object a key makes (job, schedule, webhook) belongs to that tenant, and no other tenant's key
 * sees it (another tenant's object answers 404, never 403: its existence is not leaked).
 */
export const SCOPES = ['jobs:read', 'jobs:write', 'jobs:admin', 'workers:read', 'workers:admin', 'webhooks:admin', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** What a scope includes besides itself: `admin` everything, `*:admin` the matching read (and write). */
const IMPLIED: Record<Scope, readonly Scope[]> = {
  'jobs:read': [],
  'jobs:write': [],
  'jobs:admin': ['jobs:read', 'jobs:write'],
  'workers:read': [],
  'workers:admin': ['workers:read'],
  'webhooks:admin': [],
  admin: SCOPES,
};

export function hasScope(granted: readonly string[], needed: Scope): boolean {
  return granted.some((g) => g === needed || (Object.hasOwn(IMPLIED, g) && IMPLIED[g as Scope].includes(needed)));
}

/** Tenants: like names, 1-63 characters of a-z, 0-9, `.`, `_`, `-`. */
export const TENANT_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;
export const KEY_NAME_MAX = 100;

/** `jobs:read,jobs:write` (or a list) → scopes; every unknown one is reported. */
export function parseScopes(value: unknown, field = 'scopes'): { scopes: Scope[]; errors: FieldError[] } {
  const list = typeof value === 'string' ? value.split(',').map((s) => s.trim()).filter(Boolean) : value;
  if (!Array.isArray(list) || list.length === 0 || list.length > SCOPES.length) {
    return { scopes: [], errors: [{ field, message: `must be a non-empty list of scopes among ${SCOPES.join(', ')}` }] };
  }
  const errors: FieldError[] = [];
  list.forEach((s, i) => {
    if (typeof s !== 'string' || !SCOPES.includes(s as Scope)) errors.push({ field: `${field}[${i}]`, message: `${JSON.stringify(s)} is not a scope (${SCOPES.join(', ')})` });
  });
  return { scopes: errors.length > 0 ? [] : [...new Set(list as Scope[])], errors };
}

/** `30d`, `12h`, `45m`, `90s` or plain milliseconds → milliseconds; null when malformed. */
export function parseDuration(text: string): number | null {
  const m = /^(\d{1,9})(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) return null;
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 'ms') as 'ms'];
  const ms = Number(m[1]) * unit;
  return ms > 0 && ms <= 10 * 366 * 86_400_000 ? ms : null;
}

/** No key, or one that is unknown, revoked or expired: 401 (the answer carries `WWW-Authenticate: Bearer`). */
export class UnauthorizedError extends BlixardError {
  readonly status = 401;
  constructor(
    readonly code: 'missing_api_key' | 'invalid_api_key' | 'revoked_api_key' | 'expired_api_key',
    message: string,
  ) {
    super(message);
    this.name = 'UnauthorizedError';
  }
}

/** A valid key without the scope an action needs: 403 naming the scope. */
export class ForbiddenError extends BlixardError {
  readonly code = 'insufficient_scope';
  readonly status = 403;
  constructor(
    readonly scope: Scope,
    message = `this API key lacks the scope ${scope}`,
  ) {
    super(message);
    this.name = 'ForbiddenError';
  }
}

/** Too many requests for a key, or a tenant over its quota: 429 with `Retry-After`. */
export class TooManyRequestsError extends BlixardError {
  readonly status = 429;
  constructor(
    readonly code: 'rate_limited' | 'quota_exceeded',
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
    this.name = 'TooManyRequestsError';
  }
}

/** A request body or payload above its size limit: 413 naming the field. */
export class PayloadTooLargeError extends BlixardError {
  readonly code = 'payload_too_large';
  readonly status = 413;
  override readonly errors: FieldError[];
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'PayloadTooLargeError';
    this.errors = [{ field, message }];
  }
}

/**
 * How deep a JSON value nests (a scalar is 0). Iterative: a hostile body nested a hundred
 * thousand levels deep must not overflow the stack of whatever walks it later.
 */
export function jsonDepth(value: unknown, stopAt = Infinity): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    const depth = d + 1;
    if (depth > max) max = depth;
    if (max > stopAt) return max;
    for (const child of Array.isArray(v) ? v : Object.values(v)) if (typeof child === 'object' && child !== null) stack.push([child, depth]);
  }
  return max;
}

export const MAX_JSON_DEPTH = 64;
