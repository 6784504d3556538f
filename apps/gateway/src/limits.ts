import { TooManyRequestsError } from '@blixard/domain';

/**
 * Requests per API key: a token bucket per key, in this gateway's memory. With N gateway
 * replicas a key may make up to N times the rate (documented: the limit is per instance).
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    /** Tokens added per second; 0: no limit. */
    private readonly perSecond: number,
    /** The bucket's size: requests that may come at once. */
    private readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes one token for `key`: 0 when the request may go, else how many ms until it may. */
  take(key: string): number {
    if (this.perSecond <= 0) return 0;
    const now = this.now();
    const b = this.buckets.get(key) ?? { tokens: this.burst, at: now };
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.perSecond);
    b.at = now;
    this.buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - b.tokens) / this.perSecond) * 1000);
  }
}

/**
 * Jobs a tenant may have waiting. Counting on every submit would cost a scan per request, so the
 * count is read at most once a second per tenant and counted up locally in between: a burst may
 * overshoot by what other gateway replicas accepted within that second.
 */
export class TenantQuota {
  private readonly counts = new Map<string, { n: number; at: number }>();

  constructor(
    private readonly maxWaiting: number,
    private readonly countWaiting: (tenant: string, upTo: number) => Promise<number>,
    private readonly refreshMs = 1_000,
  ) {}

  /** Throws 429 `quota_exceeded` when the tenant already has its maximum of waiting jobs. */
  async check(tenant: string): Promise<void> {
    if (this.maxWaiting <= 0) return;
    let c = this.counts.get(tenant);
    if (!c || Date.now() - c.at > this.refreshMs) {
      c = { n: await this.countWaiting(tenant, this.maxWaiting), at: Date.now() };
      this.counts.set(tenant, c);
    }
    if (c.n >= this.maxWaiting) {
      throw new TooManyRequestsError('quota_exceeded', `tenant ${tenant} already has ${this.maxWaiting} waiting jobs (TENANT_MAX_WAITING_JOBS); submit again once some have run`, 5);
    }
  }

  /** A job was accepted. */
  added(tenant: string): void {
    const c = this.counts.get(tenant);
    if (c) c.n++;
  }
}
