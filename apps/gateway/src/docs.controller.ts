import { Controller, Get, Header } from '@nestjs/common';
import { Public } from './auth';
import { DOCS_PAGE } from './docs-page';

/**
 * `/docs`: a self-contained page (no CDN, no external script) that fetches `/openapi.json` with
 * the API key typed into it and lists every operation. The page itself holds no data, so it is
 * served without a key; the document it loads needs one.
 */
@Controller()
export class DocsController {
  @Get('docs')
  @Public()
  @Header('Content-Type', 'text/html; charset=utf-8')
  @Header('Content-Security-Policy', "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'")
  @Header('X-Content-Type-Options', 'nosniff')
  page(): string {
    return DOCS_PAGE;
  }
}
