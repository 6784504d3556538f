import { ApiKeyStore, createPool } from '@blixard/db';
import type { Pool } from 'pg';
import type { OpenApiDocument } from '../../../apps/gateway/src/openapi';
import { createTestInfra, TestInfra } from '../src';
import { InProcessStack, startStack } from './stack';

/**
 * A seeded fuzzer (fast-check is not a dependency): thousands of malformed, oversized, deeply
 * nested and wrong-typed requests at every operation of the OpenAPI document, with and without a
 * valid key. No answer may be a 5xx, and every 4xx must be problem+json with its fields.
 */
const SEED = Number(process.env.FUZZ_SEED ?? 20261129);
const CASES_PER_OPERATION = Number(process.env.FUZZ_CASES ?? 120);
const MAX_BODY_BYTES = 16_384;

/** mulberry32: small, fast, reproducible. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  return { next, int, pick };
}
type Rng = ReturnType<typeof prng>;

const NASTY_STRINGS = ['', ' ', '0', '-1', '1e309', 'NaN', 'null', 'true', '%', '%zz', '%00', '../../etc/passwd', '\u0000', '\ud800', '💥', 'a'.repeat(5000), '<script>', "'; DROP TABLE jobs; --", '{"a":1}', 'FAILED', 'default', 'mock', '*', 'dev.blixard.job.*', '2026-13-45T99:99:99Z', '00000000-0000-0000-0000-000000000000'];
const FIELD_NAMES = ['backend', 'payload', 'queue', 'priority', 'maxAttempts', 'timeoutMs', 'labels', 'backoff', 'idempotencyKey', 'runAt', 'delayMs', 'dependsOn', 'resources', 'constraints', 'affinity', 'worker', 'cron', 'template', 'timezone', 'overlap', 'url', 'events', 'secret', 'name', 'scopes', 'expiresAt', 'tenant', 'status', 'limit', 'weight', 'paused', 'maxConcurrency', 'rateLimit', '__proto__', 'constructor'];

function randomScalar(r: Rng): unknown {
  switch (r.int(9)) {
    case 0: return r.pick(NASTY_STRINGS);
    case 1: return r.int(2) === 0 ? r.int(1000) : -r.int(1e9);
    case 2: return r.pick([0.5, 1e308, -0, Number.MAX_SAFE_INTEGER + 2, 2 ** 31]);
    case 3: return r.next() < 0.5;
    case 4: return null;
    case 5: return 'x'.repeat(r.int(300));
    case 6: return r.pick(['jobs:read', 'admin', 'jobs:fly', 'PENDING', 'FAILED', 'http://127.0.0.1:1/x', '* * * * *', 'Europe/Nowhere']);
    default: return String.fromCharCode(...Array.from({ length: r.int(20) }, () => r.int(0xffff)));
  }
}

function randomJson(r: Rng, depth = 0): unknown {
  if (depth > 4 || r.next() < 0.35) return randomScalar(r);
  if (r.next() < 0.4) return Array.from({ length: r.int(5) }, () => randomJson(r, depth + 1));
  const obj: Record<string, unknown> = {};
  for (let i = r.int(6); i > 0; i--) obj[r.next() < 0.8 ? r.pick(FIELD_NAMES) : String(randomScalar(r))] = randomJson(r, depth + 1);
  return obj;
}

/** A lone surrogate cannot be encoded: sent as the bytes of one (invalid UTF-8), itself a good case. */
function enc(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    return '%ED%A0%80';
  }
}

function deeplyNested(n: number): string {
  return '['.repeat(n) + ']'.repeat(n);
}

/** One request: a body (or raw text), a content type, path parameters and a query string. */
function randomRequest(r: Rng, path: string, method: string, ids: string[]): { url: string; init: RequestInit; kind: string } {
  const url = path.replace(/\{(\w+)\}/g, () => {
    const v = r.next() < 0.5 ? r.pick(ids) : String(randomScalar(r));
    // Send raw bytes sometimes (bad percent-encoding), encoded otherwise.
    return r.next() < 0.2 ? v.replace(/[/?#\s]/g, '') : enc(v);
  });
  const query = Array.from({ length: r.int(4) }, () => `${enc(r.next() < 0.6 ? r.pick(['status', 'limit', 'cursor', 'label', 'backend', 'queue', 'after', 'type', 'follow', 'attempt', 'since', 'action', 'actor']) : String(randomScalar(r)))}=${enc(String(randomScalar(r)))}`).join('&');
  const headers: Record<string, string> = {};
  let body: string | undefined;
  let kind = 'json';
  const roll = r.int(12);
  if (method !== 'GET') {
    if (roll === 0) { body = '{"backend": "mock", "payload": '; kind = 'malformed'; }
    else if (roll === 1) { body = JSON.stringify({ payload: 'x'.repeat(MAX_BODY_BYTES + r.int(5000)) }); kind = 'oversized'; }
    else if (roll === 2) { body = deeplyNested(2_000 + r.int(3_000)); kind = 'deep'; }
    else if (roll === 3) { body = JSON.stringify(randomJson(r)); headers['Content-Type'] = r.pick(['text/plain', 'application/xml', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']); kind = 'content-type'; }
    else if (roll === 4) { body = JSON.stringify({ backend: 'mock', payload: JSON.parse(deeplyNested(60)), allowUnknownBackend: true }); kind = 'nested-payload'; }
    else if (roll === 5) { body = '\u0000\u0001\u0002'; kind = 'binary'; }
    else body = JSON.stringify(randomJson(r));
    headers['Content-Type'] ??= 'application/json';
  }
  if (r.next() < 0.1) headers['Content-Type'] = 'application/json; charset=utf-7';
  return { url: `${url}${query ? `?${query}` : ''}`, init: { method, headers, body }, kind };
}

describe('the public API under fuzzing', () => {
  let infra: TestInfra;
  let stack: InProcessStack;
  let pool: Pool;
  let doc: OpenApiDocument;
  let admin: string;
  const ids: string[] = [];

  beforeAll(async () => {
    infra = await createTestInfra('fuzz');
    stack = await startStack(infra.env({ AUTH_DISABLED: 'false', RATE_LIMIT_PER_SECOND: '0', MAX_BODY_BYTES: String(MAX_BODY_BYTES), WEBHOOK_ALLOW_PRIVATE: 'true', PAYLOAD_VALIDATE_TIMEOUT_MS: '50' }), { registry: false });
    pool = createPool(infra.databaseUrl, 2);
    admin = (await new ApiKeyStore(pool).create({ tenant: 'fuzz', name: 'fuzzer', scopes: ['admin'] })).token;
    const auth = { Authorization: `Bearer ${admin}`, 'Content-Type': 'application/json' };
    doc = (await (await fetch(`${stack.gateway.url}/openapi.json`, { headers: auth })).json()) as OpenApiDocument;
    // Real objects, so that some requests reach past the "not found" checks.
    const job = await (await fetch(`${stack.gateway.url}/v1/jobs`, { method: 'POST', headers: auth, body: JSON.stringify({ backend: 'mock', payload: 1, allowUnknownBackend: true }) })).json();
    const schedule = await (await fetch(`${stack.gateway.url}/v1/schedules`, { method: 'POST', headers: auth, body: JSON.stringify({ cron: '0 0 1 1 *', template: { backend: 'mock', payload: 1 } }) })).json();
    const hook = await (await fetch(`${stack.gateway.url}/v1/webhooks`, { method: 'POST', headers: auth, body: JSON.stringify({ url: 'http://127.0.0.1:9/x', events: ['*'], secret: 'sixteen-chars-secret' }) })).json();
    ids.push((job as { id: string }).id, (schedule as { id: string }).id, (hook as { id: string }).id, 'default', 'some-worker');
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
    await pool?.end();
    await infra?.cleanup();
  });

  it('answers thousands of malformed requests to every operation without a 5xx, each error a problem+json', async () => {
    const r = prng(SEED);
    const failures: string[] = [];
    const kinds: Record<string, number> = {};
    let cases = 0;
    const operations = Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item).map((method) => ({ path, method: method.toUpperCase() })));
    const work: { url: string; init: RequestInit; kind: string; route: string }[] = [];
    for (const { path, method } of operations) {
      for (let i = 0; i < CASES_PER_OPERATION; i++) {
        const req = randomRequest(r, path, method, ids);
        const auth = r.int(10);
        const headers = req.init.headers as Record<string, string>;
        if (auth === 0) headers.Authorization = String(randomScalar(r)).replace(/[^\x20-\x7e]/g, '');
        else if (auth === 1) headers['X-API-Key'] = `bk_${'0'.repeat(16)}_${'x'.repeat(43)}`;
        else if (auth !== 2) headers.Authorization = `Bearer ${admin}`;
        work.push({ ...req, route: `${method} ${path}` });
      }
    }
    const worker = async () => {
      for (let item = work.shift(); item; item = work.shift()) {
        cases++;
        kinds[item.kind] = (kinds[item.kind] ?? 0) + 1;
        let res: Response;
        try {
          res = await fetch(`${stack.gateway.url}${item.url}`, { ...item.init, signal: AbortSignal.timeout(15_000) });
        } catch (err) {
          failures.push(`${item.route} ${item.kind} ${item.url.slice(0, 120)}: no answer (${String(err)})`);
          continue;
        }
        const type = res.headers.get('content-type') ?? '';
        if (type.startsWith('text/event-stream')) {
          await res.body?.cancel();
          continue;
        }
        const text = await res.text();
        if (res.status >= 500) {
          failures.push(`${item.route} ${item.kind} ${item.url.slice(0, 120)}: ${res.status} ${text.slice(0, 200)}`);
          continue;
        }
        if (res.status >= 400) {
          let p: Record<string, unknown> = {};
          try {
            p = JSON.parse(text) as Record<string, unknown>;
          } catch {
            // checked below
          }
          const ok =
            type.startsWith('application/problem+json') &&
            typeof p.type === 'string' && typeof p.title === 'string' && p.status === res.status && typeof p.detail === 'string' &&
            (p.errors === undefined || (Array.isArray(p.errors) && p.errors.every((e: { field?: unknown; message?: unknown }) => typeof e.field === 'string' && typeof e.message === 'string'))) &&
            !/\bat .*\.(js|ts):\d+/.test(text);
          if (!ok) failures.push(`${item.route} ${item.kind} ${item.url.slice(0, 120)}: ${res.status} ${type} ${text.slice(0, 200)}`);
        }
      }
    };
    await Promise.all(Array.from({ length: 6 }, worker));
    // The gateway is still up and answering.
    expect((await fetch(`${stack.gateway.url}/healthz`)).status).toBe(200);
    process.stdout.write(`fuzz: ${cases} requests over ${operations.length} operations (seed ${SEED}); by kind ${JSON.stringify(kinds)}\n`);
    expect(failures.slice(0, 25)).toEqual([]);
    expect(cases).toBeGreaterThanOrEqual(operations.length * CASES_PER_OPERATION);
  }, 300_000);
});
