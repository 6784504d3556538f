import { Controller, Get, Inject, OnModuleInit } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { DocsAccess } from './auth';
import { GATEWAY, GatewayDeps } from './deps';
import { ApiOperation, buildOpenApiDocument, json, OpenApiDocument } from './openapi/index';

const documentOperation = (operationId: string, summary: string) =>
  ApiOperation({ operationId, summary, tags: ['service'], responses: { '200': json({ type: 'object' }, 'The OpenAPI 3.1 document of this API.') } });

/**
 * The public HTTP API as an OpenAPI 3.1 document, for clients, code generators and API consoles.
 * It is built once, when the gateway starts, from every controller the app routes (Nest's
 * discovery): a routed handler without `@ApiOperation` stops the gateway at start, naming it.
 * Any valid key may read it, whatever its scopes; with PUBLIC_DOCS=true, anyone.
 */
@Controller()
export class OpenApiController implements OnModuleInit {
  private doc: OpenApiDocument | undefined;

  constructor(
    private readonly discovery: DiscoveryService,
    @Inject(GATEWAY) private readonly deps: GatewayDeps,
  ) {}

  onModuleInit(): void {
    const controllers = this.discovery.getControllers().flatMap((wrapper) => (typeof wrapper.metatype === 'function' ? [wrapper.metatype] : []));
    this.doc = buildOpenApiDocument(controllers, { publicDocs: this.deps.publicDocs });
  }

  @Get('v1/openapi.json')
  @DocsAccess()
  @documentOperation('getOpenApiDocument', 'This document')
  document(): OpenApiDocument {
    return this.doc!;
  }

  @Get('openapi.json')
  @DocsAccess()
  @documentOperation('getOpenApiDocumentAtRoot', 'This document (also at /v1/openapi.json)')
  documentAtRoot(): OpenApiDocument {
    return this.doc!;
  }
}
