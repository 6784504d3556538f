import { createHmac } from 'node:crypto';
import { signWebhook, verifyWebhookSignature, WEBHOOK_SIGNATURE_TOLERANCE_SECONDS } from './webhook-signature';

describe('webhook signatures (Blixard-Signature: t=<unix>,v1=<hex>)', () => {
  const secret = 'whsec_0123456789abcdef';
  const body = '{"specversion":"1.0","id":"e1","type":"dev.blixard.job.completed"}';
  const now = Date.UTC(2026, 10, 28, 12, 0, 0);
  const t = Math.floor(now / 1000);

  it('is HMAC-SHA256 over "<t>.<body>" in hex, as documented', () => {
    const expected = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
    expect(signWebhook(secret, body, t)).toBe(`t=${t},v1=${expected}`);
  });

  it('verifies a signature made with the secret over the exact body', () => {
    expect(verifyWebhookSignature(secret, signWebhook(secret, body, t), body, { now })).toEqual({ ok: true, timestamp: t });
  });

  it('refuses another secret, a changed body, a stale or future timestamp, and garbage', () => {
    const header = signWebhook(secret, body, t);
    expect(verifyWebhookSignature('another-secret-0123', header, body, { now })).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifyWebhookSignature(secret, header, body.replace('e1', 'e2'), { now })).toEqual({ ok: false, reason: 'mismatch' });
    const late = now + (WEBHOOK_SIGNATURE_TOLERANCE_SECONDS + 1) * 1000;
    expect(verifyWebhookSignature(secret, header, body, { now: late })).toEqual({ ok: false, reason: 'expired' });
    expect(verifyWebhookSignature(secret, signWebhook(secret, body, t + 3600), body, { now })).toEqual({ ok: false, reason: 'expired' });
    for (const bad of [undefined, '', 'v1=abc', `t=${t}`, `t=x,v1=${'0'.repeat(64)}`]) {
      expect(verifyWebhookSignature(secret, bad, body, { now })).toEqual({ ok: false, reason: 'malformed' });
    }
  });

  it('accepts any of several v1 signatures (secret rotation)', () => {
    const good = signWebhook(secret, body, t).split(',')[1]!;
    expect(verifyWebhookSignature(secret, `t=${t},v1=${'0'.repeat(64)},${good}`, body, { now }).ok).toBe(true);
  });
});
