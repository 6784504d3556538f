import { createServer, IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CloudEvent as SdkCloudEvent, HTTP } from 'cloudevents';
import { BlixardApiError, BlixardClient } from '@blixard/client';
import { CloudEvent, verifyWebhookSignature, WebhookDeliveryView } from '@blixard/contracts';
import { createTestInfra, TestInfra, waitFor } from '../../../libs/testing/src';
import { InProcessStack, MockBackend, RunningGateway, startGateway, startStack } from '../../../libs/testing/test/stack';
import { RunningNotifier, startNotifier } from '../src/app';

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

/** A webhook receiver on 127.0.0.1: `/ok` answers 200, `/flaky` 500 twice then 200, `/down` always 500. */
async function startReceiver(): Promise<{ server: Server; url: string; received: Received[] }> {
  const received: Received[] = [];
  let flaky = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() });
      const status = req.url === '/ok' ? 200 : req.url === '/flaky' ? (++flaky <= 2 ? 500 : 200) : 500;
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'thanks' : 'receiver broken');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received };
}

const SECRET = 'whsec_test_0123456789abcdef';

describe('the notifier: signed webhook deliveries, retried, recorded, disabled when failing', () => {
  let infra: TestInfra;
  let stack: InProcessStack;
  let notifier: RunningNotifier;
  let strictGateway: RunningGateway;
  let client: BlixardClient;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;

  beforeAll(async () => {
    infra = await createTestInfra('webhooks');
    const env = infra.env({
      WEBHOOK_ALLOW_PRIVATE: 'true',
      WEBHOOK_RETRY_BASE_MS: '100',
      WEBHOOK_RETRY_MAX_MS: '400',
      WEBHOOK_DISABLE_AFTER_MS: '2500',
      WEBHOOK_TIMEOUT_MS: '2000',
      NOTIFIER_PORT: '0',
    });
    receiver = await startReceiver();
    stack = await startStack(env, { executors: [new MockBackend()] });
    notifier = await startNotifier(env);
    // A gateway as deployed: WEBHOOK_ALLOW_PRIVATE unset.
    const strictEnv: Record<string, string> = { ...env };
    delete strictEnv.WEBHOOK_ALLOW_PRIVATE;
    strictGateway = await startGateway(strictEnv);
    client = stack.client;
  });

  afterAll(async () => {
    await notifier?.stop();
    await strictGateway?.stop();
    await stack?.stop();
    await new Promise((r) => receiver?.server.close(r));
    await infra?.cleanup();
  });

  const deliveriesOf = (id: string) => client.webhookDeliveries(id);

  it('delivers a matching event as a CloudEvent signed with the secret, and records the attempt', async () => {
    const hook = await client.createWebhook({ url: `${receiver.url}/ok`, events: ['dev.blixard.job.completed'], secret: SECRET });
    expect(hook).toMatchObject({ url: `${receiver.url}/ok`, events: ['dev.blixard.job.completed'], enabled: true, secretSet: true });
    // The secret is stored, never returned.
    expect(JSON.stringify(await client.webhook(hook.id))).not.toContain(SECRET);
    expect(JSON.stringify(await client.webhooks())).not.toContain(SECRET);

    const job = await client.submit({ backend: 'mock', payload: { output: { delivered: true } } });
    const got = await waitFor('the delivery', () => receiver.received.find((r) => r.path === '/ok' && r.body.includes(job.id)), 15_000);
    const event = JSON.parse(got.body) as CloudEvent<{ jobId: string; result: unknown }>;
    expect(event).toMatchObject({ specversion: '1.0', type: 'dev.blixard.job.completed', subject: job.id, data: { jobId: job.id, result: { delivered: true } } });
    expect(got.headers['content-type']).toMatch(/^application\/cloudevents\+json/);
    expect(got.headers['blixard-webhook-id']).toBe(hook.id);
    expect(got.headers['blixard-event-type']).toBe('dev.blixard.job.completed');
    // The documented recipe: HMAC-SHA256 over "<t>.<raw body>", within the replay window.
    expect(verifyWebhookSignature(SECRET, got.headers['blixard-signature'] as string, got.body)).toMatchObject({ ok: true });
    expect(verifyWebhookSignature('another-secret-entirely', got.headers['blixard-signature'] as string, got.body)).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifyWebhookSignature(SECRET, got.headers['blixard-signature'] as string, got.body, { now: Date.now() + 301_000 })).toEqual({ ok: false, reason: 'expired' });
    const parsed = HTTP.toEvent({ headers: got.headers, body: got.body }) as SdkCloudEvent<unknown>;
    expect(parsed.validate()).toBe(true);
    // Only the subscribed type: this job's other events were not sent here.
    expect(receiver.received.filter((r) => r.path === '/ok' && r.body.includes(job.id))).toHaveLength(1);

    const deliveries = await waitFor('the delivery recorded as succeeded', async () => {
      const d = (await deliveriesOf(hook.id)).find((x) => x.eventId === event.id);
      return d?.status === 'succeeded' ? d : undefined;
    });
    expect(deliveries).toMatchObject({ eventType: 'dev.blixard.job.completed', attempts: [{ attempt: 1, statusCode: 200, error: null }], nextAttemptAt: null, finishedAt: expect.any(String) });
  });

  it('retries a delivery the receiver answers with 500, with growing backoff, until it succeeds', async () => {
    const hook = await client.createWebhook({ url: `${receiver.url}/flaky`, events: ['job.completed'], secret: SECRET });
    const job = await client.submit({ backend: 'mock', payload: {} });
    const delivery = await waitFor('the delivery to succeed on its third attempt', async () => {
      const d = (await deliveriesOf(hook.id)).find((x) => x.status === 'succeeded');
      return d;
    }, 20_000, 100);
    expect(delivery.attempts.map((a) => [a.attempt, a.statusCode])).toEqual([
      [1, 500],
      [2, 500],
      [3, 200],
    ]);
    expect(delivery.attempts[0]!.error).toBe('HTTP 500: receiver broken');
    const sent = receiver.received.filter((r) => r.path === '/flaky');
    expect(sent).toHaveLength(3);
    expect(sent.every((r) => r.body === sent[0]!.body && r.body.includes(job.id))).toBe(true);
    // Exponential backoff from 100 ms (20% jitter): ≥ 80 ms, then ≥ 160 ms.
    expect(sent[1]!.at - sent[0]!.at).toBeGreaterThanOrEqual(75);
    expect(sent[2]!.at - sent[1]!.at).toBeGreaterThanOrEqual(155);
    expect(sent.map((r) => r.headers['blixard-delivery-attempt'])).toEqual(['1', '2', '3']);
    // Each attempt is signed afresh, and each signature checks out.
    expect(sent.every((r) => verifyWebhookSignature(SECRET, r.headers['blixard-signature'] as string, r.body).ok)).toBe(true);
    expect((await client.webhook(hook.id)).failingSince).toBeNull();
  });

  it('disables a receiver that keeps failing, fails its pending deliveries, and says so with an event', async () => {
    const hook = await client.createWebhook({ url: `${receiver.url}/down`, events: ['dev.blixard.job.*'], secret: SECRET });
    await client.submit({ backend: 'mock', payload: {} });
    const disabled = await waitFor('the webhook disabled', async () => {
      const h = await client.webhook(hook.id);
      return h.enabled ? undefined : h;
    }, 20_000, 100);
    expect(disabled).toMatchObject({ enabled: false, disabledAt: expect.any(String), disabledReason: expect.stringMatching(/failed for \d+ s \(last: HTTP 500\)/), failingSince: expect.any(String) });
    const deliveries: WebhookDeliveryView[] = await deliveriesOf(hook.id);
    expect(deliveries.length).toBeGreaterThan(0);
    expect(deliveries.every((d) => d.status === 'failed' && d.nextAttemptAt === null)).toBe(true);
    expect(deliveries.flatMap((d) => d.attempts).every((a) => a.statusCode === 500)).toBe(true);
    const event = await waitFor('dev.blixard.webhook.disabled in the events stream', async () => {
      const res = await fetch(`${stack.gateway.url}/v1/events?type=dev.blixard.webhook.disabled`);
      const page = (await res.json()) as { items: { event: CloudEvent<{ webhookId: string; url: string }> }[] };
      return page.items.find((i) => i.event.subject === hook.id);
    });
    expect(event.event).toMatchObject({ source: '/blixard/notifier', data: { webhookId: hook.id, url: `${receiver.url}/down` } });
    // Nothing more is sent to it.
    const before = receiver.received.filter((r) => r.path === '/down').length;
    const later = await client.submit({ backend: 'mock', payload: {} });
    await client.waitForTerminal(later.id);
    await new Promise((r) => setTimeout(r, 500));
    expect(receiver.received.filter((r) => r.path === '/down').length).toBe(before);
  });

  it('refuses a URL that resolves to a loopback, private or link-local address when WEBHOOK_ALLOW_PRIVATE is unset', async () => {
    const strict = new BlixardClient(strictGateway.url);
    for (const url of [`${receiver.url}/ok`, 'http://localhost:9/hook', 'http://10.0.0.7/hook', 'http://169.254.169.254/latest/meta-data', 'http://[::1]/hook']) {
      const err = await strict.createWebhook({ url, events: ['*'], secret: SECRET }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BlixardApiError);
      expect((err as BlixardApiError).problem).toMatchObject({ status: 400, code: 'validation_failed', errors: [{ field: 'url', message: expect.stringMatching(/not a public address/) }] });
    }
    expect((await strict.webhooks()).map((h) => h.url)).not.toContain('http://10.0.0.7/hook');
  });

  it('refuses an invalid subscription, naming every bad field, and deletes one with its deliveries', async () => {
    const err = (await client.createWebhook({ url: 'ftp://example.com/x', events: ['dev.blixard.job.exploded'], secret: 'short' }).catch((e: unknown) => e)) as BlixardApiError;
    expect(err.problem.errors!.map((e) => e.field).sort()).toEqual(['events[0]', 'secret', 'url']);
    const hook = await client.createWebhook({ url: `${receiver.url}/ok`, events: ['*'], secret: SECRET });
    await client.deleteWebhook(hook.id);
    await expect(client.webhook(hook.id)).rejects.toMatchObject({ problem: { status: 404 } });
    await expect(client.webhookDeliveries(hook.id)).rejects.toMatchObject({ problem: { status: 404 } });
    const audit = await client.audit({ action: 'webhook.*', targetId: hook.id });
    expect(audit.items.map((e) => e.action)).toEqual(['webhook.delete', 'webhook.create']);
    expect(JSON.stringify(audit)).not.toContain(SECRET);
  });
});
