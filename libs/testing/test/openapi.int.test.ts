import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Controller, Get } from '@nestjs/common';
import { CONTROLLER_WATERMARK } from '@nestjs/common/constants';
import type { Pool } from 'pg';
import { ApiKeyStore, createPool } from '@blixard/db';
import { hasScope, Scope, SCOPES } from '@blixard/domain';
import { HealthController } from '@blixard/service';
import { RequireScope } from '../../../apps/gateway/src/auth';
import { buildOpenApiDocument, OpenApiDocumentError, type OpenApiDocument, type OpenApiOperation, type OpenApiParameter } from '../../../apps/gateway/src/openapi';
import { createTestInfra, TestInfra } from '../src';
import { RunningGateway, startGateway } from './stack';

/**
 * The OpenAPI document at /v1/openapi.json against the gateway that serves it: it is generated
 * from the gateway's controllers (a routed handler without `@ApiOperation` cannot be built), it is
 * valid OpenAPI 3.1, what the gateway answers is what the document says it answers, the scope it
 * states for each operation is the one enforced, and the documentation itself needs a key unless
 * PUBLIC_DOCS=true.
 */
describe('the OpenAPI document of the gateway', () => {
  let infra: TestInfra;
  let gateway: RunningGateway;
  let doc: OpenApiDocument;

  beforeAll(async () => {
    infra = await createTestInfra('openapi');
    gateway = await startGateway(infra.env());
    const res = await fetch(`${gateway.url}/v1/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    doc = (await res.json()) as OpenApiDocument;
  });

  afterAll(async () => {
    await gateway?.stop();
    await infra?.cleanup();
  });

  it('is an OpenAPI 3.1.0 document of the Blixard API', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info).toMatchObject({ title: 'Blixard', version: '0.1.0', description: expect.any(String) });
    expect(doc.servers).toEqual([{ url: 'http://localhost:8080' }]);
    expect(Object.keys(doc.components.schemas)).toEqual(
      expect.arrayContaining(['Job', 'JobAttempt', 'JobPage', 'Worker', 'Stats', 'Schedule', 'Queue', 'Problem', 'SubmitJob', 'CreateSchedule', 'QueueControls']),
    );
  });

  it('validates against the OpenAPI 3.1 schema with a standard validator', async () => {
    // @seriousme/openapi-schema-validator is ESM-only, which Jest (CommonJS) cannot load: it runs
    // in a node child process that reads the document on stdin.
    const script = `
      import { Validator } from '@seriousme/openapi-schema-validator';
      let text = '';
      for await (const chunk of process.stdin) text += chunk;
      const result = await new Validator().validate(JSON.parse(text));
      process.stdout.write(JSON.stringify(result));`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: join(__dirname, '..', '..', '..'), stdio: ['pipe', 'pipe', 'inherit'] });
    child.stdin.end(JSON.stringify(doc));
    let out = '';
    for await (const chunk of child.stdout) out += String(chunk);
    const result = JSON.parse(out) as { valid: boolean; errors?: unknown };
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('is the document generated from the gateway\'s controllers and the health endpoints', () => {
    expect(buildOpenApiDocument([HealthController, ...gatewayControllers()], { publicDocs: false })).toEqual(doc);
  });

  it('cannot be built when a routed handler lacks @ApiOperation: the error names the handler and its route', () => {
    @Controller('v1/gadgets')
    @RequireScope('jobs:read')
    class GadgetsController {
      @Get(':id')
      get(): void {}
    }
    const build = () => buildOpenApiDocument([HealthController, ...gatewayControllers(), GadgetsController], { publicDocs: false });
    expect(build).toThrow(OpenApiDocumentError);
    expect(build).toThrow('GadgetsController.get (GET /v1/gadgets/:id) is routed but has no @ApiOperation');
  });

  it('answers a request to each documented operation with a status and media type documented for it', async () => {
    const mismatches: string[] = [];
    for (const { route, method, path, operation } of operations(doc)) {
      const url = gateway.url + path.replace(/\{(\w+)\}/g, (_, name: string) => PATH_SAMPLES[name] ?? name);
      // A body with an unknown field: refused by every validator, so probing changes nothing.
      const init: RequestInit = operation.requestBody
        ? { method: method.toUpperCase(), headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ openapiProbe: true }) }
        : { method: method.toUpperCase() };
      const res = await fetch(url, init);
      const text = await res.text();
      const documented = operation.responses[String(res.status)];
      const mediaType = res.headers.get('content-type')?.split(';')[0]?.trim() ?? null;
      const documentedTypes = Object.keys(documented?.content ?? {});
      if (res.status === 404 && text.includes('no route for')) mismatches.push(`${route}: not served`);
      else if (!documented) mismatches.push(`${route}: answered an undocumented ${res.status}`);
      else if (documentedTypes.length === 0 ? text !== '' : !documentedTypes.includes(mediaType ?? '')) {
        mismatches.push(`${route}: ${res.status} as ${mediaType}, documented as ${documentedTypes.join(', ') || 'no content'}`);
      }
    }
    expect(mismatches).toEqual([]);
  });

  it('answers POST /v1/jobs 201 when it creates a job and 200 when the Idempotency-Key replays it, as documented', async () => {
    const submit = operations(doc).find((o) => o.route === 'POST /v1/jobs')!.operation;
    expect(submit.parameters).toContainEqual(expect.objectContaining({ name: 'Idempotency-Key', in: 'header' }));
    expect(Object.keys(submit.responses)).toEqual(expect.arrayContaining(['201', '200', '400', '409', '413']));

    const headers = { 'Content-Type': 'application/json', 'Idempotency-Key': `openapi-${randomUUID()}` };
    const body = JSON.stringify({ backend: 'mock', payload: { n: 1 }, allowUnknownBackend: true });
    const first = await fetch(`${gateway.url}/v1/jobs`, { method: 'POST', headers, body });
    const replay = await fetch(`${gateway.url}/v1/jobs`, { method: 'POST', headers, body });
    expect([first.status, replay.status]).toEqual([201, 200]);
    expect(((await replay.json()) as { id: string }).id).toBe(((await first.json()) as { id: string }).id);
  });

  it('resolves every $ref within the document', () => {
    const refs = collectRefs(doc);
    expect(refs.length).toBeGreaterThan(0);
    expect(refs.filter((ref) => resolve(doc, ref) === undefined)).toEqual([]);
  });

  it('documents a 400 for every operation that takes a request body or a path parameter', () => {
    const without400 = operations(doc)
      .filter(({ path, operation }) => operation.requestBody !== undefined || path.includes('{'))
      .filter(({ operation }) => operation.responses['400'] === undefined)
      .map((o) => o.route);
    expect(without400).toEqual([]);
  });

  it('sends every 4xx as application/problem+json with the Problem schema', () => {
    const wrong = operations(doc).flatMap(({ route, operation }) =>
      Object.entries(operation.responses)
        .filter(([status]) => status.startsWith('4'))
        .filter(([, response]) => JSON.stringify(response.content) !== JSON.stringify({ 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } }))
        .map(([status]) => `${route} ${status}`),
    );
    expect(wrong).toEqual([]);
  });

  it('declares each path template parameter as a required path parameter, and no others', () => {
    const wrong = operations(doc).flatMap(({ route, path, operation }) => {
      const inTemplate = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!).sort();
      const declared = (operation.parameters ?? [])
        .map((p) => ('$ref' in p ? (resolve(doc, p.$ref) as OpenApiParameter) : p))
        .filter((p) => p.in === 'path');
      const names = declared.map((p) => p.name).sort();
      return JSON.stringify(names) === JSON.stringify(inTemplate) && declared.every((p) => p.required === true) ? [] : [route];
    });
    expect(wrong).toEqual([]);
  });

  it('gives every operation a unique operationId, a summary and at least one success response', () => {
    const ops = operations(doc);
    const ids = ops.map((o) => o.operation.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    const incomplete = ops
      .filter(({ operation }) => !operation.summary || !Object.keys(operation.responses).some((s) => s.startsWith('2')))
      .map((o) => o.route);
    expect(incomplete).toEqual([]);
  });

  describe('behind API keys (AUTH_DISABLED=false)', () => {
    let pool: Pool;
    let keys: ApiKeyStore;
    /** A gateway with auth on, and one that also has PUBLIC_DOCS=true. */
    let secured: RunningGateway;
    let publicDocs: RunningGateway;
    const tokens = new Map<string, string>();
    /** A key of the tenant `openapi` holding exactly `scopes` (made once per set). */
    const keyWith = async (scopes: readonly Scope[]): Promise<string> => {
      const id = [...scopes].sort().join(',');
      if (!tokens.has(id)) tokens.set(id, (await keys.create({ tenant: 'openapi', name: `openapi ${id}`, scopes: [...scopes] })).token);
      return tokens.get(id)!;
    };
    const DOCS_ROUTES = ['/docs', '/openapi.json', '/v1/openapi.json'];

    beforeAll(async () => {
      pool = createPool(infra.databaseUrl, 2);
      keys = new ApiKeyStore(pool);
      secured = await startGateway(infra.env({ AUTH_DISABLED: 'false', RATE_LIMIT_PER_SECOND: '0' }));
      publicDocs = await startGateway(infra.env({ AUTH_DISABLED: 'false', RATE_LIMIT_PER_SECOND: '0', PUBLIC_DOCS: 'true' }));
    });

    afterAll(async () => {
      await secured?.stop();
      await publicDocs?.stop();
      await pool?.end();
    });

    it('answers /docs and /openapi.json 401 without a key, saying how to reach them: a key or PUBLIC_DOCS', async () => {
      for (const path of DOCS_ROUTES) {
        const res = await fetch(secured.url + path);
        expect(`${path} ${res.status} ${res.headers.get('content-type')}`).toBe(`${path} 401 application/problem+json; charset=utf-8`);
        expect(res.headers.get('www-authenticate')).toBe('Bearer realm="blixard"');
        const body = (await res.json()) as { code: string; detail: string };
        expect(body.code).toBe('missing_api_key');
        expect(body.detail).toContain('Authorization: Bearer <key>');
        expect(body.detail).toContain('PUBLIC_DOCS=true');
      }
      const bad = await fetch(`${secured.url}/docs`, { headers: { Authorization: `Bearer bk_${'0'.repeat(16)}_${'A'.repeat(43)}` } });
      expect(bad.status).toBe(401);
      expect(((await bad.json()) as { code: string }).code).toBe('invalid_api_key');
    });

    it('answers /docs and /openapi.json 200 to a key of any scope', async () => {
      for (const scope of ['workers:read', 'webhooks:admin'] as const) {
        const headers = { Authorization: `Bearer ${await keyWith([scope])}` };
        const page = await fetch(`${secured.url}/docs`, { headers });
        expect([page.status, page.headers.get('content-type')]).toEqual([200, 'text/html; charset=utf-8']);
        expect(await page.text()).toContain('<title>Blixard API</title>');
        for (const path of ['/openapi.json', '/v1/openapi.json']) {
          const res = await fetch(secured.url + path, { headers: { 'X-API-Key': headers.Authorization.slice(7) } });
          expect(res.status).toBe(200);
          expect(((await res.json()) as OpenApiDocument).openapi).toBe('3.1.0');
        }
      }
    });

    it('answers /docs and /openapi.json 200 without a key under PUBLIC_DOCS=true, and says so in the document; other routes still need a key', async () => {
      for (const path of DOCS_ROUTES) expect(`${path} ${(await fetch(publicDocs.url + path)).status}`).toBe(`${path} 200`);
      expect((await fetch(`${publicDocs.url}/v1/jobs`)).status).toBe(401);
      const published = (await (await fetch(`${publicDocs.url}/openapi.json`)).json()) as OpenApiDocument;
      expect(operations(published).map((o) => o.route)).toEqual(operations(doc).map((o) => o.route));
      for (const { route, method, path, operation } of operations(published)) {
        if (DOCS_ROUTES.includes(path)) {
          expect(`${route} ${JSON.stringify(operation.security)} ${operation['x-blixard-scope']}`).toBe(`${route} [] undefined`);
          expect(operation.responses['401']).toBeUndefined();
        } else {
          // Every other operation is documented exactly as without PUBLIC_DOCS.
          expect(operation).toEqual((doc.paths[path] as Record<string, OpenApiOperation>)[method]);
        }
      }
      // Without PUBLIC_DOCS the document says they need a key, of any scope.
      for (const path of DOCS_ROUTES) expect(doc.paths[path]!.get).toMatchObject({ 'x-blixard-scope': 'any' });
    });

    it('enforces, for each operation, exactly the scope the document states (x-blixard-scope), and no key where it states none', async () => {
      const securedDoc = (await (await fetch(`${secured.url}/openapi.json`, { headers: { Authorization: `Bearer ${await keyWith(['workers:read'])}` } })).json()) as OpenApiDocument;
      expect(securedDoc).toEqual(doc);
      const wrong: string[] = [];
      const call = async (method: string, path: string, operation: OpenApiOperation, token?: string) => {
        const url = secured.url + path.replace(/\{(\w+)\}/g, (_, name: string) => PATH_SAMPLES[name] ?? name);
        const headers: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
        // A body with an unknown field: refused by every validator, so probing changes nothing.
        const init: RequestInit = operation.requestBody
          ? { method: method.toUpperCase(), headers: { ...headers, 'Content-Type': 'application/json' }, body: JSON.stringify({ openapiProbe: true }) }
          : { method: method.toUpperCase(), headers };
        const res = await fetch(url, init);
        const text = await res.text();
        return { status: res.status, problem: res.status >= 400 && text.startsWith('{') ? (JSON.parse(text) as { code?: string; detail?: string }) : undefined };
      };
      let checked = 0;
      for (const { route, method, path, operation } of operations(securedDoc)) {
        const scope = operation['x-blixard-scope'];
        const anonymous = await call(method, path, operation);
        if (operation.security !== undefined && operation.security.length === 0) {
          if (scope !== undefined) wrong.push(`${route}: public, yet states the scope ${scope}`);
          if (anonymous.status === 401 || anonymous.status === 403) wrong.push(`${route}: documented public, answered ${anonymous.status} without a key`);
          continue;
        }
        if (scope === undefined) {
          wrong.push(`${route}: needs a key but states no scope`);
          continue;
        }
        if (anonymous.status !== 401) wrong.push(`${route}: answered ${anonymous.status} without a key`);
        // The stated scope alone is enough ('any': a key with one unrelated scope).
        const enough = await call(method, path, operation, await keyWith(scope === 'any' ? ['workers:read'] : [scope]));
        if (enough.status === 401 || enough.status === 403) wrong.push(`${route}: answered ${enough.status} to a key holding exactly ${scope}`);
        // Every other scope together is not (there is none to leave out for 'any').
        if (scope !== 'any') {
          const others = SCOPES.filter((s) => !hasScope([s], scope));
          const short = await call(method, path, operation, await keyWith(others));
          if (short.status !== 403 || short.problem?.code !== 'insufficient_scope' || !String(short.problem.detail).includes(scope)) wrong.push(`${route}: answered ${short.status} to a key with every scope but ${scope}`);
        }
        checked++;
      }
      expect(wrong).toEqual([]);
      expect(checked).toBeGreaterThan(30);
    }, 120_000);
  });
});

/** Values for path parameters when probing: a well-formed id of nothing, and names that need no setup. */
const PATH_SAMPLES: Record<string, string> = { id: randomUUID(), name: 'default', key: 'openapi-probe' };

interface DocumentedOperation {
  /** `METHOD /path/{param}`. */
  route: string;
  method: string;
  path: string;
  operation: OpenApiOperation;
}

function operations(doc: OpenApiDocument): DocumentedOperation[] {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item).map(([method, operation]) => ({ route: `${method.toUpperCase()} ${path}`, method, path, operation: operation! })),
  );
}

const GATEWAY_SRC = join(__dirname, '../../../apps/gateway/src');

/** Every controller class in `apps/gateway/src/*.controller.ts` (a new file is covered without editing this test). */
function gatewayControllers(): Function[] {
  const controllers: Function[] = [];
  for (const file of readdirSync(GATEWAY_SRC).filter((f) => f.endsWith('.controller.ts'))) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const exported = Object.values(require(join(GATEWAY_SRC, file)) as Record<string, unknown>);
    controllers.push(...exported.filter((v): v is Function => typeof v === 'function' && Reflect.getMetadata(CONTROLLER_WATERMARK, v) === true));
  }
  expect(controllers.length).toBeGreaterThan(5);
  return controllers;
}

function collectRefs(node: unknown): string[] {
  if (Array.isArray(node)) return node.flatMap(collectRefs);
  if (typeof node !== 'object' || node === null) return [];
  return Object.entries(node).flatMap(([k, v]) => (k === '$ref' && typeof v === 'string' ? [v] : collectRefs(v)));
}

/** A local JSON pointer (`#/components/schemas/Job`) in the document, or undefined. */
function resolve(doc: unknown, ref: string): unknown {
  if (!ref.startsWith('#/')) return undefined;
  return ref
    .slice(2)
    .split('/')
    .map((token) => token.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce<unknown>((node, token) => (typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[token] : undefined), doc);
}
