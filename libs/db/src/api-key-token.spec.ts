import { mayReceive } from './webhook-store';
import { newApiKeyToken } from './api-key-store';
import { createHash } from 'node:crypto';

describe('API key tokens', () => {
  it('are bk_<16 hex>_<43 base64url> with only the secret\'s SHA-256 to store', () => {
    const { token, prefix, hash } = newApiKeyToken();
    expect(token).toMatch(/^bk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    // The secret is base64url, which has '_' in it too: cut by position, not by '_'.
    const p = token.slice(3, 19);
    const secret = token.slice(20);
    expect(p).toBe(prefix);
    expect(hash).toBe(createHash('sha256').update(secret).digest('hex'));
    expect(hash).not.toContain(secret);
    expect(newApiKeyToken().token).not.toBe(token);
  });
});

describe('webhook tenancy', () => {
  const event = (type: string, data: object) => ({ specversion: '1.0', id: 'e', source: 's', type, subject: 'x', time: '', datacontenttype: 'application/json', data }) as never;
  it('delivers a tenant\'s events to its own webhooks only, and fleet events to webhooks allowed them', () => {
    const acme = { tenant: 'acme', fleet_events: false };
    expect(mayReceive(acme, event('dev.blixard.job.completed', { tenant: 'acme' }))).toBe(true);
    expect(mayReceive(acme, event('dev.blixard.job.completed', { tenant: 'globex' }))).toBe(false);
    expect(mayReceive(acme, event('dev.blixard.job.completed', {}))).toBe(false);
    expect(mayReceive({ tenant: 'default', fleet_events: false }, event('dev.blixard.job.completed', {}))).toBe(true);
    expect(mayReceive(acme, event('dev.blixard.worker.lost', {}))).toBe(false);
    expect(mayReceive({ tenant: 'acme', fleet_events: true }, event('dev.blixard.worker.lost', {}))).toBe(true);
  });
});
