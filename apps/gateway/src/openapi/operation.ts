import type { JsonSchema, OpenApiOperation, OpenApiParameter, OpenApiResponse } from './types';

const API_OPERATION = 'blixard:openapi:operation';

/**
 * What a handler says about itself in the OpenAPI document: the prose and the schemas. Where it
 * is routed (path, method), its path parameters' names and who may call it are not here: build.ts
 * reads them from the same Nest and auth metadata the router and the guard use.
 */
export interface ApiOperationSpec {
  /** Unique across the API; client generators name their methods after it. */
  operationId: string;
  summary: string;
  description?: string;
  /** Tags of the document (components.ts); at least one. */
  tags: [string, ...string[]];
  /**
   * Each path parameter of the route, by name: a `$ref` to a path parameter in the components
   * (whose name must match), or its description and schema. Every one must be described.
   */
  pathParameters?: Record<string, { $ref: string } | { description: string; schema: JsonSchema }>;
  /** Query and header parameters. */
  parameters?: OpenApiParameter[];
  requestBody?: OpenApiOperation['requestBody'];
  /** Every answer but the 401, 403 and 429 of authentication, which are added from the route's access. */
  responses: Record<string, OpenApiResponse>;
}

/**
 * Describes a routed handler in the OpenAPI document. Every handler a gateway controller routes
 * needs one: building the document (at gateway start) throws, naming the handler, when one lacks it.
 */
export function ApiOperation(spec: ApiOperationSpec): MethodDecorator {
  return (_target, _key, descriptor) => {
    Reflect.defineMetadata(API_OPERATION, spec, descriptor.value as object);
    return descriptor;
  };
}

/** The handler's `@ApiOperation`, if it has one. */
export function apiOperationOf(handler: Function): ApiOperationSpec | undefined {
  return Reflect.getMetadata(API_OPERATION, handler) as ApiOperationSpec | undefined;
}
