import type { QueueView } from '@blixard/contracts';
import { applyQueueControls, JobStatus, NO_QUEUE_CONTROLS, PlacementPolicy, QueueSettings, ValidationError } from '@blixard/domain';
import type { Db, Queue } from './prisma';

/** Queue controls (pause, concurrency and rate limits) and fairness weights. */
export class QueueStore {
  constructor(private readonly db: Db) {}

  /** Applies a `PUT /v1/queues/:name` body; a queue needs no row until it is given controls. */
  async update(name: string, body: unknown): Promise<QueueView> {
    return this.db.$transaction(async (tx) => {
      await tx.$executeRaw`INSERT INTO queues (name) VALUES (${name}) ON CONFLICT (name) DO NOTHING`;
      // Row lock: two concurrent updates of one queue apply one after the other.
      await tx.$queryRaw`SELECT name FROM queues WHERE name = ${name} FOR UPDATE`;
      const current = toControls(await tx.queue.findUniqueOrThrow({ where: { name } }));
      const next = applyQueueControls(current, body);
      await tx.queue.update({
        where: { name },
        data: {
          paused: next.paused,
          maxConcurrency: next.maxConcurrency,
          rateLimitN: next.rateLimit?.n ?? null,
          rateLimitIntervalMs: next.rateLimit?.intervalMs ?? null,
          keyConcurrency: next.keyConcurrency,
          keyRateLimitN: next.keyRateLimit?.n ?? null,
          keyRateLimitIntervalMs: next.keyRateLimit?.intervalMs ?? null,
          placementPolicy: next.placementPolicy,
          updatedAt: new Date(),
        },
      });
      return { name, ...next, counts: {} };
    }).then(async (view) => ({ ...view, counts: (await this.counts(name)).get(name) ?? {} }));
  }

  async get(name: string): Promise<QueueView> {
    const row = await this.db.queue.findUnique({ where: { name } });
    return { name, ...(row ? toControls(row) : NO_QUEUE_CONTROLS), counts: (await this.counts(name)).get(name) ?? {} };
  }

  /** Every queue that has controls or jobs. */
  async list(): Promise<QueueView[]> {
    const rows = await this.db.queue.findMany();
    const counts = await this.counts();
    const names = new Set([...rows.map((r) => r.name), ...counts.keys()]);
    const byName = new Map(rows.map((r) => [r.name, r]));
    return [...names].sort().map((name) => ({ name, ...(byName.has(name) ? toControls(byName.get(name)!) : NO_QUEUE_CONTROLS), counts: counts.get(name) ?? {} }));
  }

  async setWeight(key: string, body: unknown): Promise<{ key: string; weight: number }> {
    const weight = (body as { weight?: unknown } | null)?.weight;
    const extra = body && typeof body === 'object' ? Object.keys(body).filter((k) => k !== 'weight') : [];
    if (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 1 || weight > 1000 || extra.length > 0) {
      throw new ValidationError([{ field: 'weight', message: 'must be an integer from 1 to 1000 (the only field)' }]);
    }
    await this.db.fairnessWeight.upsert({ where: { key }, create: { key, weight }, update: { weight } });
    return { key, weight };
  }

  async weights(): Promise<{ key: string; weight: number }[]> {
    return this.db.fairnessWeight.findMany({ orderBy: { key: 'asc' } });
  }

  private async counts(queue?: string): Promise<Map<string, Partial<Record<JobStatus, number>>>> {
    const groups = await this.db.job.groupBy({ by: ['queue', 'status'], _count: { _all: true }, where: queue ? { queue } : {} });
    const out = new Map<string, Partial<Record<JobStatus, number>>>();
    for (const g of groups) (out.get(g.queue) ?? out.set(g.queue, {}).get(g.queue)!)[g.status] = g._count._all;
    return out;
  }
}

function toControls(q: Queue): QueueSettings {
  return {
    paused: q.paused,
    maxConcurrency: q.maxConcurrency,
    rateLimit: q.rateLimitN !== null && q.rateLimitIntervalMs !== null ? { n: q.rateLimitN, intervalMs: q.rateLimitIntervalMs } : null,
    keyConcurrency: q.keyConcurrency,
    keyRateLimit: q.keyRateLimitN !== null && q.keyRateLimitIntervalMs !== null ? { n: q.keyRateLimitN, intervalMs: q.keyRateLimitIntervalMs } : null,
    placementPolicy: q.placementPolicy as PlacementPolicy,
  };
}
