import type { JobPage, JobView, StatsView } from '@blixard/contracts';
import { JOB_STATUSES, JobStatus, ValidationError } from '@blixard/domain';
import type { Db, Prisma } from './prisma';
import { toJobView } from './views';

export interface JobFilter {
  status?: JobStatus[];
  backend?: string;
  queue?: string;
  /** Jobs carrying every one of these labels. */
  labels?: Record<string, string>;
  /** One tenant's jobs only. */
  tenant?: string;
}

export const MAX_PAGE_SIZE = 500;

/** Reads for the API: one job with its attempts, pages of jobs, counts. */
export class JobQueries {
  constructor(private readonly db: Db) {}

  /** `tenant`: null when the job belongs to another tenant (the caller answers 404, as for no job). */
  async get(id: string, tenant?: string): Promise<JobView | null> {
    const job = await this.db.job.findUnique({ where: { id }, include: { attempts: true, parents: { select: { parentId: true } } } });
    if (!job || (tenant !== undefined && job.tenant !== tenant)) return null;
    return toJobView(job);
  }

  /** The owner of a job (tenant and submitting key), or null when there is no such job in `tenant`. */
  async owner(id: string, tenant?: string): Promise<{ tenant: string; submittedBy: string | null } | null> {
    const job = await this.db.job.findUnique({ where: { id }, select: { tenant: true, submittedBy: true } });
    if (!job || (tenant !== undefined && job.tenant !== tenant)) return null;
    return job;
  }

  /**
   * How many of the tenant's jobs wait (BLOCKED, SCHEDULED or PENDING), counting no further than
   * `upTo` (the quota: past it the exact number does not matter, and counting it would be slow).
   */
  async waitingCount(tenant: string, upTo: number): Promise<number> {
    const rows = await this.db.$queryRawUnsafe<{ n: number }[]>(
      `SELECT count(*)::int AS n FROM (SELECT 1 FROM jobs WHERE tenant = $1 AND status IN ('BLOCKED', 'SCHEDULED', 'PENDING') LIMIT $2) t`,
      tenant,
      upTo,
    );
    return rows[0]?.n ?? 0;
  }

  /** Newest first; `cursor` is the opaque `nextCursor` of the previous page. */
  async list(filter: JobFilter, limit = 50, cursor?: string): Promise<JobPage> {
    const where: Prisma.JobWhereInput = {};
    if (filter.status?.length) where.status = { in: filter.status };
    if (filter.backend) where.backend = filter.backend;
    if (filter.queue) where.queue = filter.queue;
    if (filter.tenant !== undefined) where.tenant = filter.tenant;
    if (filter.labels && Object.keys(filter.labels).length > 0) {
      where.AND = Object.entries(filter.labels).map(([k, v]) => ({ labels: { path: [k], equals: v } }));
    }
    if (cursor !== undefined) where.id = { lt: decodeCursor(cursor) };
    const rows = await this.db.job.findMany({ where, orderBy: { id: 'desc' }, take: limit + 1 });
    const items = rows.slice(0, limit).map((j) => toJobView(j));
    const last = items[items.length - 1];
    return { items, nextCursor: rows.length > limit && last ? encodeCursor(last.id) : null };
  }

  async stats(tenant?: string): Promise<StatsView> {
    const groups = await this.db.job.groupBy({ by: ['backend', 'status'], where: tenant === undefined ? {} : { tenant }, _count: { _all: true } });
    const byStatus = Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])) as Record<JobStatus, number>;
    const byBackend: StatsView['byBackend'] = {};
    let total = 0;
    for (const g of groups) {
      const n = g._count._all;
      byStatus[g.status] += n;
      (byBackend[g.backend] ??= {})[g.status] = n;
      total += n;
    }
    return { byStatus, byBackend, total };
  }
}

/** Statuses of jobs still waiting or running: what queue depth counts (finished jobs are counters). */
const OPEN_STATUSES: JobStatus[] = ['BLOCKED', 'SCHEDULED', 'PENDING', 'CLAIMED', 'RUNNING'];

/** Open jobs by backend, queue and status, for the queue-depth gauge (read at each scrape). */
export async function queueDepth(db: Db): Promise<{ backend: string; queue: string; status: JobStatus; count: number }[]> {
  const groups = await db.job.groupBy({ by: ['backend', 'queue', 'status'], where: { status: { in: OPEN_STATUSES } }, _count: { _all: true } });
  return groups.map((g) => ({ backend: g.backend, queue: g.queue, status: g.status, count: g._count._all }));
}

// Job ids are UUIDv7, so id order is creation order: the cursor is the last id seen.
function encodeCursor(id: string): string {
  return Buffer.from(id).toString('base64url');
}

function decodeCursor(cursor: string): string {
  const id = Buffer.from(cursor, 'base64url').toString();
  if (!/^[0-9a-f-]{36}$/.test(id)) throw new ValidationError([{ field: 'cursor', message: 'is not a cursor returned by this API' }]);
  return id;
}
