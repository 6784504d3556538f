import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { RequestMethod } from '@nestjs/common';
import { CONTROLLER_WATERMARK, METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { HealthController } from '@blixard/service';
import type { OpenApiDocument, OpenApiOperation, OpenApiParameter } from '../../../apps/gateway/src/openapi';
import { createTestInfra, TestInfra } from '../src';
import { RunningGateway, startGateway } from './stack';

/**
 * The OpenAPI document at /v1/openapi.json against the gateway that serves it: the routes Nest
 * registers and the documented operations are the same set, and what the gateway answers is
 * what the document says it answers.
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

  it('documents every route the gateway registers, with its method', () => {
    const documented = new Set(operations(doc).map((o) => o.route));
    const undocumented = registeredRoutes().filter((route) => !documented.has(route));
    expect(undocumented).toEqual([]);
  });

  it('documents no route the gateway does not register', () => {
    const registered = new Set(registeredRoutes());
    const unserved = operations(doc)
      .map((o) => o.route)
      .filter((route) => !registered.has(route));
    expect(unserved).toEqual([]);
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
});

/** Values for path parameters when probing: a well-formed id of nothing, and names that need no setup. */
const PATH_SAMPLES: Record<string, string> = { id: randomUUID(), name: 'default', key: 'openapi-probe' };

interface DocumentedOperation {
  /** `METHOD /path/{param}`, as `registeredRoutes` spells it. */
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

/**
 * Every route the gateway's controllers declare, read from Nest's metadata: each controller in
 * `apps/gateway/src/*.controller.ts` (so a new controller file is covered without editing this
 * test) and the health controller every service mounts. Nest's `:param` becomes `{param}`.
 */
function registeredRoutes(): string[] {
  const controllers: Function[] = [HealthController];
  for (const file of readdirSync(GATEWAY_SRC).filter((f) => f.endsWith('.controller.ts'))) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const exported = Object.values(require(join(GATEWAY_SRC, file)) as Record<string, unknown>);
    controllers.push(...exported.filter((v): v is Function => typeof v === 'function' && Reflect.getMetadata(CONTROLLER_WATERMARK, v) === true));
  }
  expect(controllers.length).toBeGreaterThan(1);
  return controllers.flatMap((controller) => {
    const prefixes = asList(Reflect.getMetadata(PATH_METADATA, controller));
    const proto = controller.prototype as Record<string, unknown>;
    return Object.getOwnPropertyNames(proto)
      .filter((name) => name !== 'constructor') // the class itself carries the controller's path
      .map((name) => proto[name])
      .filter((handler): handler is Function => typeof handler === 'function' && Reflect.getMetadata(PATH_METADATA, handler) !== undefined)
      .flatMap((handler) => {
        const method = RequestMethod[Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod];
        return prefixes.flatMap((prefix) => asList(Reflect.getMetadata(PATH_METADATA, handler)).map((path) => `${method} ${openApiPath(prefix, path)}`));
      });
  });
}

function asList(path: unknown): string[] {
  return Array.isArray(path) ? path.map(String) : [String(path)];
}

function openApiPath(prefix: string, path: string): string {
  const joined = `/${prefix}/${path}`.replace(/\/+/g, '/').replace(/(.)\/$/, '$1');
  return joined.replace(/:(\w+)/g, '{$1}');
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
