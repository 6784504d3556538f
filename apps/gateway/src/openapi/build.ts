import { RequestMethod } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { MetadataScanner } from '@nestjs/core';
import type { Scope } from '@blixard/domain';
import { routeAccess } from '../auth';
import { DOCUMENT_BASE, problem } from './components';
import { apiOperationOf } from './operation';
import type { OpenApiDocument, OpenApiOperation, OpenApiParameter, OpenApiResponse } from './types';
// The health endpoints live in libs/service, which cannot import the gateway: described there.
import './health';

/** A handler as Nest routes it: read from the metadata `@Controller`, `@Get`, `@Post`... leave. */
export interface Route {
  controller: Function;
  methodName: string;
  handler: Function;
  /** `GET`, `POST`, ... */
  method: string;
  /** Express's path, `/v1/jobs/:id`. */
  path: string;
}

/** Building the document failed: each problem names the handler and its route. */
export class OpenApiDocumentError extends Error {
  constructor(readonly problems: string[]) {
    super(`the OpenAPI document cannot be built:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'OpenApiDocumentError';
  }
}

const OPERATION_METHODS: Partial<Record<string, 'get' | 'post' | 'put' | 'delete'>> = { GET: 'get', POST: 'post', PUT: 'put', DELETE: 'delete' };

/** Every route a controller declares, as Nest registers it (each controller path × each handler path). */
export function routesOf(controller: Function): Route[] {
  const prefixes = asList(Reflect.getMetadata(PATH_METADATA, controller) ?? '/');
  const proto = controller.prototype as Record<string, unknown>;
  return new MetadataScanner().getAllMethodNames(proto).flatMap((methodName) => {
    const handler = proto[methodName];
    if (typeof handler !== 'function') return [];
    const paths = Reflect.getMetadata(PATH_METADATA, handler) as string | string[] | undefined;
    if (paths === undefined) return []; // not a route handler
    const method = RequestMethod[(Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod | undefined) ?? RequestMethod.GET];
    return prefixes.flatMap((prefix) => asList(paths).map((path) => ({ controller, methodName, handler, method, path: joinPath(prefix, path) })));
  });
}

/**
 * The OpenAPI document of the routes of `controllers`: each route's path, method, path parameter
 * names, access (`security`, `x-blixard-scope`, the 401/403/429 answers) from the metadata the
 * router and the auth guard act on, its prose from its `@ApiOperation`, and the components.
 * Throws `OpenApiDocumentError`, listing every problem, when a routed handler has no
 * `@ApiOperation` (so no route can exist undocumented) or its description does not fit its route.
 */
export function buildOpenApiDocument(controllers: readonly Function[], options: { publicDocs: boolean }): OpenApiDocument {
  const doc: OpenApiDocument = { ...structuredClone(DOCUMENT_BASE), paths: {} };
  const tags = new Set(doc.tags.map((t) => t.name));
  const operationIds = new Map<string, string>();
  const problems: string[] = [];
  for (const controller of controllers) {
    for (const route of routesOf(controller)) {
      const where = `${controller.name}.${route.methodName} (${route.method} ${route.path})`;
      const spec = apiOperationOf(route.handler);
      if (spec === undefined) {
        problems.push(`${where} is routed but has no @ApiOperation: describe it (apps/gateway/src/openapi/operation.ts)`);
        continue;
      }
      const method = OPERATION_METHODS[route.method];
      const segments = route.path.split('/').slice(1);
      const badSegment = segments.find((s) => !/^(:\w+|[\w.~-]*)$/.test(s));
      if (method === undefined || badSegment !== undefined) {
        problems.push(`${where}: ${method === undefined ? `method ${route.method}` : `path segment ${JSON.stringify(badSegment)}`} cannot be described`);
        continue;
      }
      const path = segments.map((s) => (s.startsWith(':') ? `{${s.slice(1)}}` : s)).join('/');
      const template = `/${path}`;
      const names = segments.filter((s) => s.startsWith(':')).map((s) => s.slice(1));

      const local: string[] = [];
      const pathParameters = names.map((name): OpenApiParameter | { $ref: string } => {
        const described = spec.pathParameters?.[name];
        if (described === undefined) {
          local.push(`describes no path parameter \`${name}\``);
          return { $ref: '' };
        }
        if ('$ref' in described) {
          const component = doc.components.parameters[described.$ref.replace('#/components/parameters/', '')];
          if (!described.$ref.startsWith('#/components/parameters/') || component?.in !== 'path' || component.name !== name) {
            local.push(`path parameter \`${name}\` refers to ${described.$ref}, which is not a path parameter named ${name}`);
          }
          return { $ref: described.$ref };
        }
        return { name, in: 'path', required: true, description: described.description, schema: described.schema };
      });
      for (const extra of Object.keys(spec.pathParameters ?? {}).filter((n) => !names.includes(n))) local.push(`describes a path parameter \`${extra}\` its route does not have`);
      for (const p of spec.parameters ?? []) if (p.in === 'path') local.push(`lists the path parameter \`${p.name}\` in \`parameters\` (use \`pathParameters\`)`);
      for (const t of spec.tags) if (!tags.has(t)) local.push(`has the tag \`${t}\`, which the document does not declare`);
      const earlier = operationIds.get(spec.operationId);
      if (earlier !== undefined) local.push(`repeats the operationId \`${spec.operationId}\` of ${earlier}`);
      else operationIds.set(spec.operationId, where);
      const item = (doc.paths[template] ??= {});
      if (item[method] !== undefined) local.push(`is a second ${route.method} ${template}`);
      if (local.length > 0) {
        problems.push(...local.map((p) => `${where} ${p}`));
        continue;
      }

      const parameters = [...pathParameters, ...(spec.parameters ?? [])];
      const operation: OpenApiOperation = {
        operationId: spec.operationId,
        summary: spec.summary,
        ...(spec.description === undefined ? {} : { description: spec.description }),
        tags: [...spec.tags],
        ...(parameters.length === 0 ? {} : { parameters }),
        ...(spec.requestBody === undefined ? {} : { requestBody: spec.requestBody }),
        responses: { ...spec.responses },
      };
      const access = routeAccess(controller, route.handler, options);
      if (access.public) {
        operation.security = [];
      } else {
        operation['x-blixard-scope'] = access.scope;
        const needs = `Needs ${access.scope === 'any' ? 'any valid API key' : `the scope \`${access.scope}\``}.`;
        operation.description = operation.description === undefined ? needs : `${operation.description} ${needs}`;
        operation.responses = { ...operation.responses, ...authProblems(access.scope) };
      }
      item[method] = operation;
    }
  }
  if (problems.length > 0) throw new OpenApiDocumentError(problems);
  // A copy of its own: nothing that serves or tests the document shares the specs' objects.
  return structuredClone(doc);
}

/** The answers of the auth guard, for an operation that needs a key. */
function authProblems(scope: Scope | 'any'): Record<string, OpenApiResponse> {
  return {
    '401': {
      ...problem('No API key, or one that is unknown, revoked or expired (`missing_api_key`, `invalid_api_key`, `revoked_api_key`, `expired_api_key`). The answer carries `WWW-Authenticate: Bearer`.'),
      headers: { 'WWW-Authenticate': { description: '`Bearer realm="blixard"`', schema: { type: 'string' } } },
    },
    ...(scope === 'any' ? {} : { '403': problem(`The API key lacks the scope \`${scope}\` (\`insufficient_scope\`).`) }),
    '429': {
      ...problem('The API key made more requests than RATE_LIMIT_PER_SECOND allows (`rate_limited`), or, on submit, the tenant has TENANT_MAX_WAITING_JOBS waiting (`quota_exceeded`).'),
      headers: { 'Retry-After': { description: 'Seconds to wait.', schema: { type: 'integer', minimum: 1 } } },
    },
  };
}

function asList(path: unknown): string[] {
  return Array.isArray(path) ? path.map(String) : [String(path)];
}

/** As Nest joins a controller's and a handler's path: one leading slash, none trailing. */
function joinPath(prefix: string, path: string): string {
  return `/${prefix}/${path}`.replace(/\/+/g, '/').replace(/(.)\/$/, '$1');
}
