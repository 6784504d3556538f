import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DueDelivery } from '@blixard/db';
import { verifyWebhookSignature } from '@blixard/contracts';
import { deliverWebhook } from './deliver';

describe('one webhook delivery attempt', () => {
  let server: Server;
  let port: number;
  const hits: { url: string; signature: string; body: string }[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        hits.push({ url: req.url ?? '', signature: String(req.headers['blixard-signature']), body });
        if (req.url === '/redirect') res.writeHead(302, { location: '/ok' }).end();
        else if (req.url === '/slow') setTimeout(() => res.writeHead(200).end(), 1_000);
        else res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const delivery = (url: string): DueDelivery => ({
    id: '0192f0c4-8f3e-7aaa-8bbb-0123456789ab',
    webhookId: '0192f0c4-8f3e-7aaa-8bbb-0123456789ac',
    url,
    secret: 'a-secret-of-16-chars',
    eventId: 'e-1',
    eventType: 'dev.blixard.job.completed',
    event: { specversion: '1.0', id: 'e-1', source: '/t', type: 'dev.blixard.job.completed', subject: 's', time: new Date().toISOString(), datacontenttype: 'application/json', data: {} },
    attempt: 1,
    createdAt: new Date(),
  });

  it('posts the signed event and reports a 2xx as success', async () => {
    const outcome = await deliverWebhook(delivery(`http://127.0.0.1:${port}/ok`), { timeoutMs: 2_000, allowPrivate: true });
    expect(outcome).toMatchObject({ ok: true, statusCode: 200, error: null });
    const hit = hits.at(-1)!;
    expect(verifyWebhookSignature('a-secret-of-16-chars', hit.signature, hit.body).ok).toBe(true);
  });

  it('refuses at connection time an address that is not public, literal or resolved (DNS rebinding)', async () => {
    const before = hits.length;
    for (const url of [`http://127.0.0.1:${port}/ok`, `http://localhost:${port}/ok`]) {
      const outcome = await deliverWebhook(delivery(url), { timeoutMs: 2_000, allowPrivate: false });
      expect(outcome).toMatchObject({ ok: false, statusCode: null, error: expect.stringMatching(/not a public address/) });
    }
    expect(hits.length).toBe(before);
  });

  it('does not follow a redirect, and gives up on a receiver slower than the timeout', async () => {
    expect(await deliverWebhook(delivery(`http://127.0.0.1:${port}/redirect`), { timeoutMs: 2_000, allowPrivate: true })).toMatchObject({ ok: false, statusCode: 302 });
    expect(await deliverWebhook(delivery(`http://127.0.0.1:${port}/slow`), { timeoutMs: 200, allowPrivate: true })).toMatchObject({ ok: false, statusCode: null, error: expect.stringMatching(/no answer within WEBHOOK_TIMEOUT_MS \(200 ms\)/) });
  });
});
