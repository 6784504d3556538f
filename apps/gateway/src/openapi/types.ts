import type { Scope } from '@blixard/domain';

/**
 * The shapes of the OpenAPI 3.1 document the gateway serves (the subset it uses). The document is
 * generated (build.ts): routes, methods, path parameters and access from the controllers' Nest and
 * auth metadata, each operation's prose from its `@ApiOperation`, components from components.ts.
 */

/** JSON Schema 2020-12, as OpenAPI 3.1 uses it. Loosely typed: the document is data. */
export type JsonSchema = { [keyword: string]: unknown };

export interface OpenApiDocument {
  openapi: '3.1.0';
  info: { title: string; version: string; description: string };
  servers: { url: string; description?: string }[];
  tags: { name: string; description: string }[];
  /** Every operation needs an API key unless its own `security` is empty. */
  security: Record<string, string[]>[];
  paths: Record<string, Partial<Record<'get' | 'post' | 'put' | 'delete', OpenApiOperation>>>;
  components: {
    schemas: Record<string, JsonSchema>;
    parameters: Record<string, OpenApiParameter>;
    securitySchemes: Record<string, { type: 'http' | 'apiKey'; scheme?: string; bearerFormat?: string; name?: string; in?: 'header'; description: string }>;
  };
}

export interface OpenApiOperation {
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  parameters?: (OpenApiParameter | { $ref: string })[];
  requestBody?: { required: boolean; description?: string; content: Record<string, { schema: JsonSchema }> };
  responses: Record<string, OpenApiResponse>;
  /** `[]`: no key needed (health, metrics; the docs with PUBLIC_DOCS). Absent: the document's (a key). */
  security?: Record<string, string[]>[];
  /** The scope the operation needs (`any`: any valid key): read from the same metadata the auth guard enforces. */
  'x-blixard-scope'?: Scope | 'any';
}

export interface OpenApiParameter {
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
  description?: string;
  schema: JsonSchema;
  style?: 'simple' | 'form';
  explode?: boolean;
}

export interface OpenApiResponse {
  description: string;
  headers?: Record<string, { description: string; schema: JsonSchema }>;
  content?: Record<string, { schema: JsonSchema }>;
}
