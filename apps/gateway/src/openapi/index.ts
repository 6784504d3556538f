/**
 * The OpenAPI 3.1 document of the gateway, generated from the code: build.ts assembles it from the
 * controllers' routing and auth metadata and each handler's `@ApiOperation` (operation.ts), with
 * the reusable components of components.ts.
 */
export { buildOpenApiDocument, OpenApiDocumentError, routesOf, type Route } from './build';
export { ApiOperation, apiOperationOf, type ApiOperationSpec } from './operation';
export { badEncoding, body, DOCUMENT_BASE, items, json, nullable, param, problem, ref, timestamp, tooLarge, uuid } from './components';
export type { JsonSchema, OpenApiDocument, OpenApiOperation, OpenApiParameter, OpenApiResponse } from './types';
