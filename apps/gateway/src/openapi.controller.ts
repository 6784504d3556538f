import { Controller, Get } from '@nestjs/common';
import { OPENAPI_DOCUMENT, OpenApiDocument } from './openapi';

/** The public HTTP API as an OpenAPI 3.1 document, for clients, code generators and API consoles. */
@Controller('v1')
export class OpenApiController {
  @Get('openapi.json')
  document(): OpenApiDocument {
    return OPENAPI_DOCUMENT;
  }
}
