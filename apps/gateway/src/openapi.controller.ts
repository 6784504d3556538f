import { Controller, Get } from '@nestjs/common';
import { OPENAPI_DOCUMENT, OpenApiDocument } from './openapi';
import { AnyKey } from './auth';

/** The public HTTP API as an OpenAPI 3.1 document, for clients, code generators and API consoles. */
@Controller()
export class OpenApiController {
  /** Any valid key may read it, whatever its scopes. */
  @Get(['openapi.json', 'v1/openapi.json'])
  @AnyKey()
  document(): OpenApiDocument {
    return OPENAPI_DOCUMENT;
  }
}
