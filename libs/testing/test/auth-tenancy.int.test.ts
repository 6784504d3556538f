import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { BlixardApiError, BlixardClient } from '@blixard/client';
import { ApiKeyStore, createPool } from '@blixard/db';
import { hasScope, Scope, SCOPES } from '@blixard/domain';
import type { Pool } from 'pg';
import type { OpenApiDocument } from '../../../apps/gateway/src/openapi';
import { createTestInfra, repoRoot, TestInfra, waitFor } from '../src';
import { InProcessStack, RunningGateway, startGateway, startStack } from './stack';

/**
 * API keys, scopes and tenants against a gateway with auth on (the default): every operation
 * needs a key with its scope, and a key never sees or touches another tenant's objects.
 */
describe('API keys, scopes and tenancy', () => {
  let infra: TestInfra;
  let stack: InProcessStack;
  let gw: RunningGateway;
  let pool: Pool;
  let keys: ApiKeyStore;
  let doc: OpenApiDocument;
  /** Admin keys of tenants acme and globex. */
  let acme: string;
  let globex: string;

  const key = async (tenant: string, scopes: Scope[], extra: { name?: string; expiresAt?: Date } = {}) =>
    (await keys.create({ tenant, name: extra.name ?? `${tenant}-${scopes.join('+')}`, scopes, expiresAt: extra.expiresAt })).token;

  async function call(method: string, path: string, opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {}) {
    const res = await fetch(`${gw.url}${path}`, {
      method,
      headers: {
        ...(opts.body === undefined ? {} : { 'Content-Type': 'application/json' }),
        ...(opts.token ? { Authorization: `Bearer ${opts.token}` } : {}),
        ...(opts.headers ?? {}),
      },
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    });
    const text = await res.text();
    let body: any = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON
    }
    return { status: res.status, headers: res.headers, body };
  }

  function expectProblem(r: { status: number; headers: Headers; body: any }, status: number, code: string) {
    expect({ status: r.status, code: r.body?.code }).toEqual({ status, code });
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(r.body).toMatchObject({ type: `https://blixard.dev/problems/${code}`, title: expect.any(String), status, detail: expect.any(String) });
  }

  beforeAll(async () => {
    infra = await createTestInfra('auth');
    stack = await startStack(infra.env({ AUTH_DISABLED: 'false', WEBHOOK_ALLOW_PRIVATE: 'true', RATE_LIMIT_PER_SECOND: '0' }), { registry: false });
    gw = stack.gateway;
    pool = createPool(infra.databaseUrl, 2);
    keys = new ApiKeyStore(pool);
    acme = await key('acme', ['admin']);
    globex = await key('globex', ['admin']);
    doc = (await call('GET', '/openapi.json', { token: acme })).body as OpenApiDocument;
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
    await pool?.end();
    await infra?.cleanup();
  });

  const submit = (token: string, extra: Record<string, unknown> = {}) =>
    new BlixardClient(gw.url, { apiKey: token }).submit({ backend: 'mock', payload: { n: 1 }, allowUnknownBackend: true, ...extra });

  /** Every documented operation, with sample path parameters and the scope the document states. */
  function operations(): { route: string; method: string; url: string; body?: unknown; scope?: Scope | 'any' }[] {
    const sample: Record<string, string> = { id: '00000000-0000-7000-8000-000000000000', name: 'default', key: 'k' };
    return Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.entries(item).map(([method, op]) => ({
        route: `${method.toUpperCase()} ${path}`,
        method: method.toUpperCase(),
        url: path.replace(/\{(\w+)\}/g, (_, n: string) => sample[n]!),
        body: op!.requestBody ? {} : undefined,
        scope: op!['x-blixard-scope'],
      })),
    );
  }

  it('answers every operation but health and metrics 401 without a key (the docs too), with WWW-Authenticate: Bearer', async () => {
    const open: string[] = [];
    for (const op of operations()) {
      const r = await call(op.method, op.url, { body: op.body });
      if (r.status === 401) {
        expectProblem(r, 401, 'missing_api_key');
        expect(r.headers.get('www-authenticate')).toMatch(/^Bearer realm="blixard"/);
      } else open.push(`${op.route} ${r.status}`);
    }
    expect(open.sort()).toEqual(['GET /healthz 200', 'GET /metrics 200', 'GET /readyz 200']);
  });

  it('refuses a malformed, unknown, revoked or expired key with a 401 naming why', async () => {
    expectProblem(await call('GET', '/v1/jobs', { headers: { Authorization: 'Basic dXNlcjpwYXNz' } }), 401, 'invalid_api_key');
    expectProblem(await call('GET', '/v1/jobs', { token: 'bk_0123456789abcdef_' + 'A'.repeat(43) }), 401, 'invalid_api_key');
    // The right prefix with a wrong secret.
    const good = await key('acme', ['jobs:read']);
    expectProblem(await call('GET', '/v1/jobs', { token: good.slice(0, -3) + 'AAA' }), 401, 'invalid_api_key');
    expect((await call('GET', '/v1/jobs', { token: good })).status).toBe(200);

    const expired = await key('acme', ['jobs:read'], { expiresAt: new Date(Date.now() - 1000) });
    expectProblem(await call('GET', '/v1/jobs', { token: expired }), 401, 'expired_api_key');

    // Revoked through the admin endpoint: the next request is refused.
    const victim = (await call('POST', '/v1/keys', { token: acme, body: { name: 'short-lived', scopes: ['jobs:read'] } })).body;
    expect((await call('GET', '/v1/jobs', { token: victim.token })).status).toBe(200);
    expect((await call('DELETE', `/v1/keys/${victim.key.id}`, { token: acme })).status).toBe(204);
    const r = await call('GET', '/v1/jobs', { token: victim.token });
    expectProblem(r, 401, 'revoked_api_key');
    expect(r.headers.get('www-authenticate')).toContain('invalid_token');
  });

  it('takes the key as X-API-Key too, and records when a key was last used', async () => {
    const { key: view, token } = await keys.create({ tenant: 'acme', name: 'legacy-client', scopes: ['jobs:read'] });
    expect(view.lastUsedAt).toBeNull();
    expect((await call('GET', '/v1/stats', { headers: { 'X-API-Key': token } })).status).toBe(200);
    await waitFor('last_used_at set', async () => (await keys.get(view.id))?.lastUsedAt);
  });

  it('makes keys with the CLI, stores only a hash, lists them without secrets and revokes them', async () => {
    const cli = join(repoRoot(), 'apps', 'cli', 'dist', 'main.js');
    const env = { ...process.env, DATABASE_URL: infra.databaseUrl, LOG_LEVEL: 'silent' };
    const run = (...args: string[]) => promisify(execFile)('node', [cli, 'keys', ...args], { env });
    const { stdout: token } = await run('create', '--tenant', 'initech', '--scopes', 'jobs:read,jobs:write', '--name', 'ci', '--expires-in', '30d');
    expect(token.trim()).toMatch(/^bk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    const job = await submit(token.trim());
    expect(job.tenant).toBe('initech');

    // The database holds neither the token nor its secret.
    const db = new Client({ connectionString: infra.databaseUrl });
    await db.connect();
    const { rows } = await db.query(`SELECT row_to_json(k)::text AS row FROM api_keys k WHERE tenant = 'initech'`);
    await db.end();
    expect(rows).toHaveLength(1);
    const secret = token.trim().split('_')[2]!;
    expect(rows[0].row).not.toContain(secret);

    const { stdout: listing } = await run('list', '--tenant', 'initech');
    expect(listing).toContain('initech\tci\tjobs:read,jobs:write');
    expect(listing).not.toContain(secret);
    const id = listing.split('\n')[1]!.split('\t')[0]!;
    await run('revoke', id);
    expectProblem(await call('GET', '/v1/jobs', { token: token.trim() }), 401, 'revoked_api_key');

    // A bad command line is exit code 2 with the reason.
    await expect(run('create', '--tenant', 'initech', '--scopes', 'jobs:fly')).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('jobs:fly') });
  }, 60_000);

  it('answers 403 naming the scope for every operation called with a key that lacks it', async () => {
    const wrong: string[] = [];
    for (const op of operations()) {
      const needed = op.scope;
      if (needed === undefined || needed === 'any') continue;
      // Every scope that does not include the needed one.
      const others = SCOPES.filter((s) => !hasScope([s], needed));
      const r = await call(op.method, op.url, { token: await key('acme', others), body: op.body });
      if (r.status !== 403 || r.body?.code !== 'insufficient_scope' || !String(r.body.detail).includes(needed)) wrong.push(`${op.route}: ${r.status} ${r.body?.detail}`);
    }
    expect(wrong).toEqual([]);
    // The document states a scope for every operation that is not public.
    const unmapped = operations().filter((op) => op.scope === undefined && !['GET /healthz', 'GET /readyz', 'GET /metrics'].includes(op.route));
    expect(unmapped).toEqual([]);
  }, 120_000);

  it('lets a key cancel and retry only the jobs it submitted, unless it holds jobs:admin', async () => {
    const alice = await key('acme', ['jobs:read', 'jobs:write'], { name: 'alice' });
    const bob = await key('acme', ['jobs:read', 'jobs:write'], { name: 'bob' });
    const ops = await key('acme', ['jobs:admin'], { name: 'ops' });
    const job = await submit(alice);
    const denied = await call('POST', `/v1/jobs/${job.id}/cancel`, { token: bob });
    expectProblem(denied, 403, 'insufficient_scope');
    expect(denied.body.detail).toContain('jobs:admin');
    expect((await call('POST', `/v1/jobs/${job.id}/cancel`, { token: alice })).body.status).toBe('CANCELLED');
    expectProblem(await call('POST', `/v1/jobs/${job.id}/retry`, { token: bob }), 403, 'insufficient_scope');
    expect((await call('POST', `/v1/jobs/${job.id}/retry`, { token: ops })).body.status).toBe('PENDING');
    // A finished job cannot be cancelled again: 409, not 500.
    const other = await submit(alice);
    await call('POST', `/v1/jobs/${other.id}/cancel`, { token: alice });
    expectProblem(await call('POST', `/v1/jobs/${other.id}/cancel`, { token: alice }), 409, 'invalid_transition');
  });

  it('never shows or changes another tenant\'s jobs, schedules, webhooks, keys, events or audit entries: 404, as for nothing', async () => {
    const job = await submit(acme, { idempotencyKey: 'shared-key', labels: { team: 'a' } });
    expect(job).toMatchObject({ tenant: 'acme', fairnessKey: 'acme' });
    const schedule = (await call('POST', '/v1/schedules', { token: acme, body: { cron: '0 0 1 1 *', template: { backend: 'mock', payload: 1 } } })).body;
    expect(schedule.tenant).toBe('acme');
    const hook = (await call('POST', '/v1/webhooks', { token: acme, body: { url: 'http://127.0.0.1:9/hook', events: ['*'], secret: 'a-secret-of-sixteen+' } })).body;
    expect(hook.tenant).toBe('acme');
    const acmeKey = (await call('GET', '/v1/keys', { token: acme })).body.items[0];

    const notFound = [
      ['GET', `/v1/jobs/${job.id}`],
      ['POST', `/v1/jobs/${job.id}/cancel`],
      ['POST', `/v1/jobs/${job.id}/retry`],
      ['GET', `/v1/jobs/${job.id}/events`],
      ['GET', `/v1/jobs/${job.id}/logs`],
      ['GET', `/v1/schedules/${schedule.id}`],
      ['POST', `/v1/schedules/${schedule.id}/pause`],
      ['POST', `/v1/schedules/${schedule.id}/resume`],
      ['DELETE', `/v1/schedules/${schedule.id}`],
      ['GET', `/v1/webhooks/${hook.id}`],
      ['GET', `/v1/webhooks/${hook.id}/deliveries`],
      ['DELETE', `/v1/webhooks/${hook.id}`],
      ['DELETE', `/v1/keys/${acmeKey.id}`],
    ] as const;
    for (const [method, path] of notFound) {
      const r = await call(method, path, { token: globex });
      expect(`${method} ${path} ${r.status} ${r.body?.code}`).toBe(`${method} ${path} 404 not_found`);
    }
    // Still there for its owner.
    expect((await call('GET', `/v1/jobs/${job.id}`, { token: acme })).body.status).toBe('PENDING');
    expect((await call('GET', `/v1/schedules/${schedule.id}`, { token: acme })).status).toBe(200);
    expect((await call('GET', `/v1/webhooks/${hook.id}`, { token: acme })).status).toBe(200);

    // Lists, stats and the audit log hold the caller's tenant only.
    const ids = (r: { body: any }) => (r.body.items as { id: string }[]).map((i) => i.id);
    expect(ids(await call('GET', '/v1/jobs?limit=500', { token: globex }))).not.toContain(job.id);
    expect(ids(await call('GET', '/v1/jobs?limit=500', { token: acme }))).toContain(job.id);
    expect(ids(await call('GET', '/v1/schedules', { token: globex }))).toEqual([]);
    expect(ids(await call('GET', '/v1/webhooks', { token: globex }))).toEqual([]);
    expect((await call('GET', '/v1/keys', { token: globex })).body.items.every((k: { tenant: string }) => k.tenant === 'globex')).toBe(true);
    expect((await call('GET', '/v1/stats', { token: globex })).body.total).toBe(0);
    const audit = (await call('GET', '/v1/audit', { token: globex })).body.items as { tenant: string }[];
    expect(audit.every((e) => e.tenant === 'globex')).toBe(true);
    const acmeAudit = (await call('GET', `/v1/audit?targetId=${job.id}`, { token: acme })).body.items;
    expect(acmeAudit).toEqual([expect.objectContaining({ action: 'job.submit', tenant: 'acme', actor: expect.stringMatching(/^[0-9a-f-]{36}$/), actorName: 'acme-admin' })]);

    // Another tenant's job is no parent, and an idempotency key is the tenant's own.
    const dep = await call('POST', '/v1/jobs', { token: globex, body: { backend: 'mock', payload: 1, allowUnknownBackend: true, dependsOn: [job.id] } });
    expectProblem(dep, 400, 'validation_failed');
    expect(dep.body.errors).toEqual([{ field: 'dependsOn[0]', message: expect.stringContaining('does not exist') }]);
    const theirs = await submit(globex, { idempotencyKey: 'shared-key', labels: { team: 'a' } });
    expect(theirs.id).not.toBe(job.id);
    expect(theirs.tenant).toBe('globex');

    // Events: the job's events reach its tenant's keys only.
    await waitFor('the created event in acme\'s feed', async () => (await call('GET', `/v1/jobs/${job.id}/events`, { token: acme })).body.items.length > 0);
    type Page = { event: { subject: string; data: { tenant?: string } } }[];
    const globexEvents = await waitFor('globex\'s own job in its feed', async () => {
      const items = (await call('GET', '/v1/events?limit=1000', { token: globex })).body.items as Page;
      return items.some((e) => e.event.subject === theirs.id) ? items : undefined;
    });
    expect(globexEvents.filter((e) => e.event.subject === job.id)).toEqual([]);
    expect(globexEvents.every((e) => e.event.data.tenant === 'globex')).toBe(true);
    const acmeEvents = (await call('GET', '/v1/events?limit=1000', { token: acme })).body.items as { event: { subject: string } }[];
    expect(acmeEvents.some((e) => e.event.subject === job.id)).toBe(true);
  }, 60_000);

  it('records the API key and tenant of each action in the audit log', async () => {
    const token = await key('acme', ['jobs:write', 'admin'], { name: 'auditor-test' });
    const job = await submit(token);
    const entries = (await call('GET', `/v1/audit?targetId=${job.id}`, { token: acme })).body.items;
    const id = (await keys.list('acme')).find((k) => k.name === 'auditor-test')!.id;
    expect(entries).toEqual([expect.objectContaining({ actor: id, actorName: 'auditor-test', tenant: 'acme', action: 'job.submit' })]);
  });

  describe('with limits', () => {
    let limited: RunningGateway;
    beforeAll(async () => {
      limited = await startGateway(infra.env({ AUTH_DISABLED: 'false', RATE_LIMIT_PER_SECOND: '1', RATE_LIMIT_BURST: '3', TENANT_MAX_WAITING_JOBS: '2', MAX_PAYLOAD_BYTES: '64' }));
    });
    afterAll(async () => limited?.stop());

    it('answers 429 with Retry-After once a key exceeds its request rate, other keys unaffected', async () => {
      const token = await key('ratelimited', ['jobs:read']);
      const statuses: number[] = [];
      let last: Response | undefined;
      for (let i = 0; i < 5; i++) {
        last = await fetch(`${limited.url}/v1/stats`, { headers: { Authorization: `Bearer ${token}` } });
        statuses.push(last.status);
      }
      expect(statuses.slice(0, 3)).toEqual([200, 200, 200]);
      expect(statuses[4]).toBe(429);
      expect(Number(last!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(last!.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(((await last!.json()) as { code: string }).code).toBe('rate_limited');
      const other = await key('ratelimited', ['jobs:read']);
      expect((await fetch(`${limited.url}/v1/stats`, { headers: { Authorization: `Bearer ${other}` } })).status).toBe(200);
    });

    it('answers 429 quota_exceeded once a tenant has TENANT_MAX_WAITING_JOBS waiting, and 400 naming payload above MAX_PAYLOAD_BYTES', async () => {
      const client = new BlixardClient(limited.url, { apiKey: await key('quota', ['jobs:write']) });
      const job = { backend: 'mock', payload: { n: 1 }, allowUnknownBackend: true };
      await client.submit(job);
      await client.submit(job);
      const err = await client.submit(job).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BlixardApiError);
      expect((err as BlixardApiError).problem).toMatchObject({ status: 429, code: 'quota_exceeded' });
      // Another tenant is not held back.
      await new BlixardClient(limited.url, { apiKey: await key('quota-other', ['jobs:write']) }).submit(job);

      const big = await new BlixardClient(limited.url, { apiKey: await key('quota-big', ['jobs:write']) }).submit({ ...job, payload: 'x'.repeat(100) }).catch((e: unknown) => e);
      expect((big as BlixardApiError).problem).toMatchObject({ status: 400, code: 'validation_failed', errors: [expect.objectContaining({ field: 'payload', message: expect.stringContaining('MAX_PAYLOAD_BYTES') })] });
    });
  });
});
