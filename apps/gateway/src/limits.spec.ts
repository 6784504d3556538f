import { TooManyRequestsError } from '@blixard/domain';
import { RateLimiter, TenantQuota } from './limits';

describe('RateLimiter', () => {
  it('lets a burst through, then one request per 1/rate seconds, per key', () => {
    let now = 0;
    const limiter = new RateLimiter(2, 3, () => now);
    expect([limiter.take('a'), limiter.take('a'), limiter.take('a')]).toEqual([0, 0, 0]);
    expect(limiter.take('a')).toBe(500);
    expect(limiter.take('b')).toBe(0);
    now = 500;
    expect(limiter.take('a')).toBe(0);
    expect(limiter.take('a')).toBeGreaterThan(0);
  });

  it('does not limit with a rate of 0', () => {
    const limiter = new RateLimiter(0, 1);
    for (let i = 0; i < 100; i++) expect(limiter.take('a')).toBe(0);
  });
});

describe('TenantQuota', () => {
  it('refuses a tenant at its maximum of waiting jobs with a 429, counting accepted ones in between reads', async () => {
    let counted = 0;
    const quota = new TenantQuota(2, async () => counted, 60_000);
    await quota.check('t');
    quota.added('t');
    await quota.check('t');
    quota.added('t');
    await expect(quota.check('t')).rejects.toBeInstanceOf(TooManyRequestsError);
    await expect(quota.check('other')).resolves.toBeUndefined();
    counted = 5;
    await expect(new TenantQuota(0, async () => counted).check('t')).resolves.toBeUndefined();
  });
});
