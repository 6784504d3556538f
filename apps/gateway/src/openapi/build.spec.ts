import 'reflect-metadata';
import { Controller, Delete, Get, Post, Put } from '@nestjs/common';
import { HealthController } from '@blixard/service';
import { AnyKey, DocsAccess, Public, RequireScope } from '../auth';
import { buildOpenApiDocument, OpenApiDocumentError } from './build';
import { json, param, problem, uuid } from './components';
import { ApiOperation, type ApiOperationSpec } from './operation';

const ok = (operationId: string, extra: Partial<ApiOperationSpec> = {}): ApiOperationSpec => ({
  operationId,
  summary: operationId,
  tags: ['jobs'],
  responses: { '200': json({ type: 'object' }, 'Fine.') },
  ...extra,
});

@Controller('v1/things')
@RequireScope('jobs:read')
class ThingsController {
  @Get()
  @ApiOperation(ok('listThings'))
  list() {}

  @Get(':id')
  @ApiOperation(ok('getThing', { pathParameters: { id: param('JobId') } }))
  get() {}

  @Put(':id/parts/:part')
  @RequireScope('admin')
  @ApiOperation(ok('putPart', { pathParameters: { id: param('JobId'), part: { description: 'A part.', schema: uuid } }, parameters: [{ name: 'dry', in: 'query', schema: { type: 'boolean' } }] }))
  putPart() {}

  @Delete(':id')
  @AnyKey()
  @ApiOperation(ok('deleteThing', { pathParameters: { id: param('JobId') }, responses: { '204': { description: 'Gone.' }, '404': problem('No such thing.') } }))
  remove() {}

  /** Not routed: needs no description. */
  helper() {}
}

@Controller()
class OpenController {
  @Get('open')
  @Public()
  @ApiOperation(ok('getOpen'))
  open() {}

  @Get('manual')
  @DocsAccess()
  @ApiOperation(ok('getManual'))
  manual() {}

  @Post('closed')
  @ApiOperation(ok('postClosed'))
  closed() {}
}

describe('buildOpenApiDocument', () => {
  it('takes paths, methods, path parameters and access from the routing and auth metadata, the prose from @ApiOperation', () => {
    const doc = buildOpenApiDocument([ThingsController, OpenController], { publicDocs: false });
    expect(Object.fromEntries(Object.entries(doc.paths).map(([path, item]) => [path, Object.keys(item)]))).toEqual({
      '/v1/things': ['get'],
      '/v1/things/{id}': ['get', 'delete'],
      '/v1/things/{id}/parts/{part}': ['put'],
      '/open': ['get'],
      '/manual': ['get'],
      '/closed': ['post'],
    });
    const put = doc.paths['/v1/things/{id}/parts/{part}']!.put!;
    expect(put.parameters).toEqual([
      { $ref: '#/components/parameters/JobId' },
      { name: 'part', in: 'path', required: true, description: 'A part.', schema: uuid },
      { name: 'dry', in: 'query', schema: { type: 'boolean' } },
    ]);
    // The handler's scope wins over the controller's; a route that says nothing needs admin.
    const scopes = Object.values(doc.paths).flatMap((item) => Object.values(item).map((op) => [op!.operationId, op!['x-blixard-scope'] ?? null, op!.security ?? null]));
    expect(scopes).toEqual([
      ['listThings', 'jobs:read', null],
      ['getThing', 'jobs:read', null],
      ['deleteThing', 'any', null],
      ['putPart', 'admin', null],
      ['getOpen', null, []],
      ['getManual', 'any', null],
      ['postClosed', 'admin', null],
    ]);
    expect(Object.keys(put.responses)).toEqual(['200', '401', '403', '429']);
    expect(put.description).toBe('Needs the scope `admin`.');
    expect(Object.keys(doc.paths['/v1/things/{id}']!.delete!.responses)).toEqual(['204', '401', '404', '429']); // any key: no 403
    expect(doc.paths['/open']!.get!.responses).toEqual({ '200': json({ type: 'object' }, 'Fine.') });
    expect(doc.components.schemas.Job).toBeDefined();
  });

  it('publishes the documentation routes without a key only under PUBLIC_DOCS', () => {
    const manual = (publicDocs: boolean) => buildOpenApiDocument([OpenController], { publicDocs }).paths['/manual']!.get!;
    expect(manual(false)).toMatchObject({ 'x-blixard-scope': 'any' });
    expect(manual(false).security).toBeUndefined();
    expect(manual(true).security).toEqual([]);
    expect(manual(true)['x-blixard-scope']).toBeUndefined();
    expect(Object.keys(manual(true).responses)).toEqual(['200']);
  });

  it('throws, naming each handler, when a routed handler has no @ApiOperation', () => {
    @Controller('v1/sneaky')
    @RequireScope('jobs:read')
    class SneakyController {
      @Get()
      @ApiOperation(ok('listSneaky'))
      list() {}

      @Post(':id/poke')
      poke() {}

      @Get('peek')
      peek() {}
    }
    const build = () => buildOpenApiDocument([ThingsController, SneakyController], { publicDocs: false });
    expect(build).toThrow(OpenApiDocumentError);
    expect(build).toThrow(/SneakyController\.poke \(POST \/v1\/sneaky\/:id\/poke\) is routed but has no @ApiOperation/);
    expect(() => build()).toThrow(/SneakyController\.peek \(GET \/v1\/sneaky\/peek\)/);
  });

  it('throws when a description does not fit its route', () => {
    @Controller('v1/bad')
    class BadController {
      @Get(':id')
      @ApiOperation(ok('noPathParameter'))
      a() {}

      @Get(':id/x')
      @ApiOperation(ok('wrongRef', { pathParameters: { id: param('QueueName') } }))
      b() {}

      @Get('y')
      @ApiOperation(ok('extraPathParameter', { pathParameters: { id: param('JobId') } }))
      c() {}

      @Get('z')
      @ApiOperation(ok('listThings'))
      d() {}

      @Get('w')
      @ApiOperation(ok('unknownTag', { tags: ['gadgets'] }))
      e() {}
    }
    let error: unknown;
    try {
      buildOpenApiDocument([ThingsController, BadController], { publicDocs: false });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(OpenApiDocumentError);
    expect((error as OpenApiDocumentError).problems).toEqual([
      'BadController.a (GET /v1/bad/:id) describes no path parameter `id`',
      'BadController.b (GET /v1/bad/:id/x) path parameter `id` refers to #/components/parameters/QueueName, which is not a path parameter named id',
      'BadController.c (GET /v1/bad/y) describes a path parameter `id` its route does not have',
      'BadController.d (GET /v1/bad/z) repeats the operationId `listThings` of ThingsController.list (GET /v1/things)',
      'BadController.e (GET /v1/bad/w) has the tag `gadgets`, which the document does not declare',
    ]);
  });

  it('throws when two handlers claim the same method and path', () => {
    @Controller('v1/things')
    class TwinController {
      @Get()
      @ApiOperation(ok('listThingsAgain'))
      list() {}
    }
    expect(() => buildOpenApiDocument([ThingsController, TwinController], { publicDocs: false })).toThrow(/TwinController\.list \(GET \/v1\/things\) is a second GET \/v1\/things/);
  });

  it('describes the health, readiness and metrics endpoints of libs/service as public', () => {
    const doc = buildOpenApiDocument([HealthController], { publicDocs: false });
    expect(Object.entries(doc.paths).map(([path, item]) => [path, item.get?.operationId, item.get?.security])).toEqual([
      ['/healthz', 'getLiveness', []],
      ['/readyz', 'getReadiness', []],
      ['/metrics', 'getMetrics', []],
    ]);
  });
});
