import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Query, Req } from '@nestjs/common';
import type { Request } from 'express';
import { EVENT_TYPES, eventTypeMatches, WebhookDeliveryView, WebhookView } from '@blixard/contracts';
import { FieldError, isUuid, NotFoundError, validateWebhookSubscription, ValidationError } from '@blixard/domain';
import { AddressNotAllowedError, assertPublicUrl } from '@blixard/service';
import { AuditLog } from './audit-log';
import { GATEWAY, GatewayDeps } from './deps';
import { principalOf, RequireScope } from './auth';
import { ApiOperation, badEncoding, body, items, json, param, problem, ref, tooLarge } from './openapi/index';
import { hasScope } from '@blixard/domain';

/**
 * Webhook subscriptions: the notifier POSTs each matching event to `url`, signed with `secret`
 * (HMAC-SHA256, header `Blixard-Signature`), retried with backoff. The secret is never returned.
 */
@Controller('v1/webhooks')
@RequireScope('webhooks:admin')
export class WebhooksController {
  constructor(
    @Inject(GATEWAY) private readonly deps: GatewayDeps,
    private readonly audit: AuditLog,
  ) {}

  /** `{ url, events, secret }`: a URL that resolves to a non-public address is a 400 (unless WEBHOOK_ALLOW_PRIVATE). */
  @Post()
  @ApiOperation({
    operationId: 'createWebhook',
    summary: 'Subscribe a URL to events',
    description:
      'Every event whose type matches one of `events` is POSTed to `url` as a CloudEvent (`application/cloudevents+json`), signed: ' +
      '`Blixard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`. Receivers should refuse a `t` more than 300 s from their clock. ' +
      'A delivery that does not get a 2xx is retried with exponential backoff for WEBHOOK_RETRY_FOR_MS; a webhook failing for WEBHOOK_DISABLE_AFTER_MS is disabled ' +
      '(event `dev.blixard.webhook.disabled`). A URL resolving to a loopback, private or link-local address is refused unless WEBHOOK_ALLOW_PRIVATE. The secret is never returned.',
    tags: ['webhooks'],
    requestBody: body(ref('CreateWebhook')),
    responses: {
      '201': json(ref('Webhook'), 'The subscription (without its secret).'),
      '400': problem('A field is invalid (`validation_failed`), or the URL does not resolve to a public address.'),
      '413': tooLarge,
    },
  })
  async create(@Body() body: unknown, @Req() req: Request): Promise<WebhookView> {
    const input = validateWebhookSubscription(body, EVENT_TYPES, eventTypeMatches);
    try {
      await assertPublicUrl(new URL(input.url), this.deps.live.webhookAllowPrivate);
    } catch (err) {
      if (err instanceof AddressNotAllowedError) throw new ValidationError([{ field: 'url', message: err.message }]);
      throw err;
    }
    const principal = principalOf(req);
    const view = await this.deps.live.webhooks.create({ ...input, tenant: principal.tenant, fleetEvents: hasScope(principal.scopes, 'workers:read') });
    await this.audit.record(req, 'webhook.create', { type: 'webhook', id: view.id }, { url: view.url, events: view.events });
    return view;
  }

  @Get()
  @ApiOperation({
    operationId: 'listWebhooks',
    summary: 'List webhooks',
    tags: ['webhooks'],
    responses: { '200': json(items(ref('Webhook')), 'Every subscription, oldest first.') },
  })
  async list(@Req() req: Request): Promise<{ items: WebhookView[] }> {
    return { items: await this.deps.live.webhooks.list(principalOf(req).tenant) };
  }

  @Get(':id')
  @ApiOperation({
    operationId: 'getWebhook',
    summary: 'Get a webhook',
    tags: ['webhooks'],
    pathParameters: { id: param('WebhookId') },
    responses: {
      '200': json(ref('Webhook'), 'The subscription (without its secret).'),
      '400': problem(`The id is not a UUID, or ${badEncoding}.`),
      '404': problem('No such webhook.'),
    },
  })
  async get(@Param('id') id: string, @Req() req: Request): Promise<WebhookView> {
    const view = await this.deps.live.webhooks.get(webhookId(id), principalOf(req).tenant);
    if (!view) throw new NotFoundError('webhook', id);
    return view;
  }

  /** Deletes the subscription and its delivery history; nothing more is sent to it. */
  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({
    operationId: 'deleteWebhook',
    summary: 'Delete a webhook',
    description: 'Nothing more is delivered to it; its delivery history goes with it.',
    tags: ['webhooks'],
    pathParameters: { id: param('WebhookId') },
    responses: {
      '204': { description: 'Deleted.' },
      '400': problem(`The id is not a UUID, or ${badEncoding}.`),
      '404': problem('No such webhook.'),
    },
  })
  async delete(@Param('id') id: string, @Req() req: Request): Promise<void> {
    const tenant = principalOf(req).tenant;
    const existing = await this.deps.live.webhooks.get(webhookId(id), tenant);
    if (!existing || !(await this.deps.live.webhooks.delete(id, tenant))) throw new NotFoundError('webhook', id);
    await this.audit.record(req, 'webhook.delete', { type: 'webhook', id }, { url: existing.url });
  }

  /** Deliveries, newest first, each with every attempt: `?status=pending|succeeded|failed&limit=`. */
  @Get(':id/deliveries')
  @ApiOperation({
    operationId: 'listWebhookDeliveries',
    summary: "A webhook's deliveries and their attempts",
    tags: ['webhooks'],
    pathParameters: { id: param('WebhookId') },
    parameters: [
      { name: 'status', in: 'query', description: 'Only deliveries in this state.', schema: { enum: ['pending', 'succeeded', 'failed'] } },
      { name: 'limit', in: 'query', description: 'At most this many, newest first.', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
    ],
    responses: {
      '200': json(items(ref('WebhookDelivery')), 'Deliveries, newest first, each with every attempt.'),
      '400': problem(`The id is not a UUID, a parameter is invalid, or ${badEncoding}.`),
      '404': problem('No such webhook.'),
    },
  })
  async deliveries(@Param('id') id: string, @Query() query: Record<string, unknown>, @Req() req: Request): Promise<{ items: WebhookDeliveryView[] }> {
    const errors: FieldError[] = [];
    if (!isUuid(id)) errors.push({ field: 'id', message: 'is not a webhook id (a UUID)' });
    if (query.status !== undefined && !['pending', 'succeeded', 'failed'].includes(query.status as string)) errors.push({ field: 'status', message: 'must be pending, succeeded or failed' });
    let limit = 100;
    if (query.limit !== undefined) {
      limit = Number(query.limit);
      if (typeof query.limit !== 'string' || !Number.isInteger(limit) || limit < 1 || limit > 1000) errors.push({ field: 'limit', message: 'must be an integer from 1 to 1000' });
    }
    for (const k of Object.keys(query)) if (!['status', 'limit'].includes(k)) errors.push({ field: k, message: 'is not a known query parameter' });
    if (errors.length > 0) throw new ValidationError(errors);
    const items = await this.deps.live.webhooks.deliveries(id, limit, query.status as string | undefined, principalOf(req).tenant);
    if (!items) throw new NotFoundError('webhook', id);
    return { items };
  }
}

function webhookId(id: string): string {
  if (!isUuid(id)) throw new ValidationError([{ field: 'id', message: 'is not a webhook id (a UUID)' }]);
  return id;
}
