import { Controller, Get, Header } from '@nestjs/common';
import { DocsAccess } from './auth';
import { DOCS_PAGE } from './docs-page';
import { ApiOperation } from './openapi/index';

/**
 * `/docs`: a self-contained page (no CDN, no external script) that fetches `/openapi.json` with
 * the API key typed into it and lists every operation.
 *
 * Who gets it: like `/openapi.json`, a request with any valid key (`Authorization: Bearer <key>`
 * or `X-API-Key`; e.g. `curl -H ... /docs`, or a browser extension that adds the header), since
 * nothing but health and metrics answers without a key. A request without one gets a 401
 * problem+json saying exactly that and naming the alternative: an operator who wants the docs
 * browsable (a browser cannot add the header by itself) starts the gateway with PUBLIC_DOCS=true,
 * and then `/docs` and `/openapi.json` answer anyone (as with AUTH_DISABLED). The page asks for a
 * key again in its form to fetch the document: it never sees the header that fetched it.
 */
@Controller()
export class DocsController {
  @Get('docs')
  @DocsAccess()
  @ApiOperation({
    operationId: 'getDocsPage',
    summary: 'The API documentation page',
    description: 'A self-contained HTML page (nothing loaded from elsewhere) that fetches /openapi.json with the API key typed into it. Public when the gateway runs with PUBLIC_DOCS=true.',
    tags: ['service'],
    responses: { '200': { description: 'The page.', content: { 'text/html': { schema: { type: 'string' } } } } },
  })
  @Header('Content-Type', 'text/html; charset=utf-8')
  @Header('Content-Security-Policy', "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'")
  @Header('X-Content-Type-Options', 'nosniff')
  page(): string {
    return DOCS_PAGE;
  }
}
