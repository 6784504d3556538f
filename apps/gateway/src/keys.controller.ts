import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Req } from '@nestjs/common';
import type { Request } from 'express';
import type { ApiKeyView, CreatedApiKey } from '@blixard/contracts';
import { FieldError, isPlainObject, isUuid, KEY_NAME_MAX, NotFoundError, onlyKnownFields, parseScopes, TENANT_PATTERN, ValidationError } from '@blixard/domain';
import { AuditLog } from './audit-log';
import { principalOf, RequireScope } from './auth';
import { ApiOperation, badEncoding, body, items, json, problem, ref, tooLarge, uuid } from './openapi/index';
import { GATEWAY, GatewayDeps } from './deps';

/**
 * API keys of the caller's tenant (`admin` scope). The token is in the creation's answer only;
 * afterwards only its prefix is shown. Keys of other tenants are made with `blixard keys create`.
 */
@Controller('v1/keys')
@RequireScope('admin')
export class KeysController {
  constructor(
    @Inject(GATEWAY) private readonly deps: GatewayDeps,
    private readonly audit: AuditLog,
  ) {}

  /** `{ name, scopes, expiresAt? }`: 201 with the token, shown this once. */
  @Post()
  @ApiOperation({
    operationId: 'createApiKey',
    summary: 'Create an API key for this tenant',
    description: 'The answer holds the token, shown this once: only its SHA-256 is stored.',
    tags: ['keys'],
    requestBody: body(ref('CreateApiKey')),
    responses: {
      '201': json(ref('CreatedApiKey'), 'The key and its token.'),
      '400': problem('A field is invalid (each is listed in `errors`), or the body is not JSON.'),
      '413': tooLarge,
    },
  })
  async create(@Body() body: unknown, @Req() req: Request): Promise<CreatedApiKey> {
    const tenant = principalOf(req).tenant;
    const input = validateNewKey(body, tenant);
    const created = await this.deps.keys.create({ ...input, tenant });
    await this.audit.record(req, 'key.create', { type: 'api_key', id: created.key.id }, { name: created.key.name, scopes: created.key.scopes });
    return created;
  }

  @Get()
  @ApiOperation({
    operationId: 'listApiKeys',
    summary: 'List this tenant\'s API keys',
    tags: ['keys'],
    responses: { '200': json(items(ref('ApiKey')), 'Newest first, revoked ones too; never a secret.') },
  })
  async list(@Req() req: Request): Promise<{ items: ApiKeyView[] }> {
    return { items: await this.deps.keys.list(principalOf(req).tenant) };
  }

  /** Revokes the key at once: every later request with it is a 401. */
  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({
    operationId: 'revokeApiKey',
    summary: 'Revoke an API key',
    description: 'Every later request with it is a 401 `revoked_api_key`.',
    tags: ['keys'],
    pathParameters: { id: { description: 'An API key id.', schema: uuid } },
    responses: {
      '204': { description: 'Revoked (or already revoked).' },
      '400': problem('The id is not a UUID, or ' + badEncoding + '.'),
      '404': problem('No such key in this tenant.'),
    },
  })
  async revoke(@Param('id') id: string, @Req() req: Request): Promise<void> {
    if (!isUuid(id)) throw new ValidationError([{ field: 'id', message: 'is not an API key id (a UUID)' }]);
    const key = await this.deps.keys.revoke(id, principalOf(req).tenant);
    if (!key) throw new NotFoundError('api key', id);
    await this.audit.record(req, 'key.revoke', { type: 'api_key', id }, { name: key.name });
  }
}

function validateNewKey(body: unknown, tenant: string): { name: string; scopes: string[]; expiresAt: Date | null } {
  if (!isPlainObject(body)) throw new ValidationError([{ field: '', message: 'the request body must be a JSON object' }]);
  const errors: FieldError[] = onlyKnownFields('', body, ['name', 'scopes', 'expiresAt', 'tenant']);
  const { name, expiresAt } = body;
  if (typeof name !== 'string' || name.trim().length === 0 || name.length > KEY_NAME_MAX) errors.push({ field: 'name', message: `must be a string of 1-${KEY_NAME_MAX} characters` });
  const { scopes, errors: scopeErrors } = parseScopes(body.scopes);
  errors.push(...scopeErrors);
  let expires: Date | null = null;
  if (expiresAt !== undefined && expiresAt !== null) {
    expires = typeof expiresAt === 'string' ? new Date(expiresAt) : new Date(NaN);
    if (Number.isNaN(expires.getTime())) errors.push({ field: 'expiresAt', message: 'must be an ISO 8601 time' });
    else if (expires.getTime() <= Date.now()) errors.push({ field: 'expiresAt', message: 'must be in the future' });
  }
  // A key makes keys for its own tenant only; the operator's CLI makes them for any.
  if (body.tenant !== undefined && (typeof body.tenant !== 'string' || !TENANT_PATTERN.test(body.tenant) || body.tenant !== tenant)) {
    errors.push({ field: 'tenant', message: `must be this key's own tenant (${tenant}); use \`blixard keys create\` for another` });
  }
  if (errors.length > 0) throw new ValidationError(errors);
  return { name: (name as string).trim(), scopes, expiresAt: expires };
}
