import { loadConfig } from '@blixard/config';
import { ApiKeyStore, createPool } from '@blixard/db';
import { isUuid, parseDuration, parseScopes, SCOPES, TENANT_PATTERN, KEY_NAME_MAX } from '@blixard/domain';
import { describeError } from './errors';
import { redactUrl } from './net';

export const KEYS_USAGE = `Usage: blixard keys <create|list|revoke> [options]   (against DATABASE_URL)
  keys create --tenant <t> --scopes <s1,s2,...> [--name <n>] [--expires-in <30d|12h|45m>]
                           print a new API key's token (shown this once; only its hash is stored)
  keys list [--tenant <t>] every key (or one tenant's): id, tenant, name, scopes, last use, state
  keys revoke <id>         revoke a key at once
Scopes: ${SCOPES.join(', ')}`;

/** `--flag value` pairs and positionals; an unknown flag or one without a value is an error. */
function parseFlags(args: string[], known: string[]): { flags: Record<string, string>; rest: string[]; problems: string[] } {
  const flags: Record<string, string> = {};
  const rest: string[] = [];
  const problems: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('--')) {
      rest.push(a);
      continue;
    }
    const [name, inline] = a.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    if (!known.includes(name)) problems.push(`unknown option --${name}`);
    const value = inline ?? args[++i];
    if (value === undefined) problems.push(`--${name} needs a value`);
    else flags[name] = value;
  }
  return { flags, rest, problems };
}

/** `blixard keys ...`: 0 on success, 2 on a bad command line, 1 when the database fails. */
export async function keysCommand(args: string[], out: (line: string) => void = console.log, err: (line: string) => void = console.error): Promise<number> {
  const [sub, ...rest] = args;
  const usage = (problem: string) => {
    err(`${problem}\n\n${KEYS_USAGE}`);
    return 2;
  };
  let databaseUrl = process.env.DATABASE_URL ?? '(unset)';
  let run: (store: ApiKeyStore) => Promise<number>;
  if (sub === 'create') {
    const { flags, rest: extra, problems } = parseFlags(rest, ['tenant', 'scopes', 'name', 'expires-in']);
    if (extra.length > 0) problems.push(`unexpected argument(s): ${extra.join(' ')}`);
    const tenant = flags.tenant;
    if (tenant === undefined || !TENANT_PATTERN.test(tenant)) problems.push('--tenant is required: 1-63 characters of a-z, 0-9, ".", "_", "-"');
    const { scopes, errors } = parseScopes(flags.scopes ?? '', '--scopes');
    problems.push(...errors.map((e) => `${e.field}: ${e.message}`));
    const name = flags.name ?? `${tenant ?? 'key'}-${new Date().toISOString().slice(0, 10)}`;
    if (name.length === 0 || name.length > KEY_NAME_MAX) problems.push(`--name must be 1-${KEY_NAME_MAX} characters`);
    let expiresAt: Date | null = null;
    if (flags['expires-in'] !== undefined) {
      const ms = parseDuration(flags['expires-in']);
      if (ms === null) problems.push('--expires-in must be a duration like 30d, 12h, 45m or 90s');
      else expiresAt = new Date(Date.now() + ms);
    }
    if (problems.length > 0) return usage(problems.join('\n'));
    run = async (store) => {
      const { key, token } = await store.create({ tenant: tenant!, name, scopes, expiresAt });
      err(`created API key ${key.id} (${key.name}) for tenant ${key.tenant} with scopes ${key.scopes.join(',')}${key.expiresAt ? `, expires ${key.expiresAt}` : ''}`);
      err('the token below is shown this once: store it now (only its hash is kept)');
      out(token);
      return 0;
    };
  } else if (sub === 'list') {
    const { flags, rest: extra, problems } = parseFlags(rest, ['tenant']);
    if (extra.length > 0) problems.push(`unexpected argument(s): ${extra.join(' ')}`);
    if (problems.length > 0) return usage(problems.join('\n'));
    run = async (store) => {
      const keys = await store.list(flags.tenant);
      out(['id', 'tenant', 'name', 'scopes', 'prefix', 'created', 'last used', 'state'].join('\t'));
      for (const k of keys) {
        const state = k.revokedAt ? `revoked ${k.revokedAt}` : k.expiresAt && Date.parse(k.expiresAt) <= Date.now() ? `expired ${k.expiresAt}` : k.expiresAt ? `active until ${k.expiresAt}` : 'active';
        out([k.id, k.tenant, k.name, k.scopes.join(','), k.prefix, k.createdAt, k.lastUsedAt ?? 'never', state].join('\t'));
      }
      return 0;
    };
  } else if (sub === 'revoke') {
    if (rest.length !== 1 || !isUuid(rest[0]!)) return usage('keys revoke takes one key id (a UUID, see `blixard keys list`)');
    run = async (store) => {
      const key = await store.revoke(rest[0]!);
      if (!key) {
        err(`no API key ${rest[0]}`);
        return 1;
      }
      err(`revoked API key ${key.id} (${key.name}, tenant ${key.tenant})`);
      return 0;
    };
  } else {
    return usage(sub === undefined ? 'keys needs a subcommand' : `unknown keys subcommand: ${sub}`);
  }
  const pool = (() => {
    ({ databaseUrl } = loadConfig(['databaseUrl']));
    return createPool(databaseUrl, 2);
  })();
  try {
    return await run(new ApiKeyStore(pool));
  } catch (e) {
    err(`keys ${sub} failed (DATABASE_URL=${redactUrl(databaseUrl)}): ${describeError(e)}`);
    return 1;
  } finally {
    await pool.end();
  }
}
