import type { HeartbeatMessage, Subjects, WorkerView } from '@blixard/contracts';
import { workerEvent } from '@blixard/contracts';
import { poolOf, type Db, type Prisma, type Worker } from './prisma';
import { heldOnWorkersSql } from './sql';
import { toWorkerView } from './views';

export interface WorkerStats {
  byBackend: Record<string, { workers: Record<string, number>; slots: number; busySlots: number }>;
  totals: { workers: number; online: number; slots: number; busySlots: number };
}

export interface HeartbeatOutcome {
  /** True when this heartbeat registered the worker (new, or back from lost/offline). */
  registered: boolean;
  /** Attempts the worker says it runs that Postgres no longer gives it: it should stop them. */
  orphans: { jobId: string; attempt: number }[];
}

/**
 * The registry's picture of the fleet. A heartbeat registers or refreshes a worker and renews the
 * run leases of the attempts it holds, in one transaction.
 */
export class WorkerStore {
  /** Backends some worker has registered: workers stay on record, so a name once found stays known. */
  private readonly knownBackendNames = new Set<string>();

  constructor(
    private readonly db: Db,
    private readonly options: { subjects: Subjects; source: string; runLeaseMs: number },
  ) {}

  async heartbeat(hb: HeartbeatMessage): Promise<HeartbeatOutcome> {
    return this.db.$transaction(async (tx) => {
      const prev = await tx.$queryRaw<{ status: string }[]>`SELECT status::text AS status FROM workers WHERE id = ${hb.workerId} FOR UPDATE`;
      const previousStatus = prev[0]?.status ?? null;
      const data = {
        backend: hb.backend,
        host: hb.host,
        version: hb.version,
        labels: hb.labels,
        capacity: hb.capacity,
        concurrency: hb.concurrency,
        runningJobs: hb.running,
        status: hb.status,
        lastHeartbeatAt: new Date(),
        stoppedAt: hb.status === 'OFFLINE' ? new Date() : null,
      } satisfies Prisma.WorkerUncheckedUpdateInput;
      const worker = await tx.worker.upsert({ where: { id: hb.workerId }, create: { id: hb.workerId, ...data }, update: data });
      const registered = previousStatus === null || previousStatus === 'LOST' || previousStatus === 'OFFLINE';
      if (registered && hb.status !== 'OFFLINE') await this.emit(tx, 'registered', worker, previousStatus);
      else if (hb.status !== previousStatus && (hb.status === 'OFFLINE' || hb.status === 'DRAINING')) {
        await this.emit(tx, hb.status === 'OFFLINE' ? 'offline' : 'draining', worker, previousStatus);
      }

      const ids = hb.running.map((r) => r.jobId);
      if (ids.length === 0) return { registered, orphans: [] };
      // Renew the run lease of every attempt this worker still holds. SKIP LOCKED: a job locked now
      // is being moved by a report or the reconciler (and a wait, with rows locked in no particular
      // order, could deadlock with a batch of reports); the next heartbeat renews it if it still runs.
      await tx.$executeRaw`
        UPDATE jobs SET lease_expires_at = now() + (${this.options.runLeaseMs}::int * interval '1 millisecond')
        WHERE id IN (
          SELECT id FROM jobs WHERE id = ANY(${ids}::uuid[]) AND worker_id = ${hb.workerId} AND status = 'RUNNING'
          FOR NO KEY UPDATE SKIP LOCKED)`;
      // Name the attempts it no longer holds (cancelled, superseded, finished), judged on one
      // snapshot: an attempt whose `started` report is still on its way (CLAIMED at the same
      // attempt) is still its own.
      const current = await tx.$queryRaw<{ id: string; attempt: number; status: string; worker_id: string | null }[]>`
        SELECT id, attempt, status::text AS status, worker_id FROM jobs WHERE id = ANY(${ids}::uuid[])`;
      const byId = new Map(current.map((c) => [c.id, c]));
      const orphans = hb.running.filter((r) => {
        const c = byId.get(r.jobId);
        if (!c) return false;
        const holds = c.attempt === r.attempt && (c.status === 'CLAIMED' || (c.status === 'RUNNING' && c.worker_id === hb.workerId));
        return !holds;
      });
      return { registered, orphans };
    });
  }

  /**
   * Declares lost every live worker whose last heartbeat is older than `silentMs`; returns them.
   * Safe with several registries: the guarded UPDATE moves each worker once.
   */
  async markLost(silentMs: number): Promise<Worker[]> {
    return this.db.$transaction(async (tx) => {
      const lost = await tx.$queryRaw<{ id: string; status: string }[]>`
        UPDATE workers w SET status = 'LOST'
        FROM (SELECT id, status FROM workers
              WHERE status IN ('ONLINE', 'DRAINING')
                AND last_heartbeat_at < now() - (${silentMs}::int * interval '1 millisecond')
              FOR UPDATE SKIP LOCKED) old
        WHERE w.id = old.id
        RETURNING w.id, old.status::text AS status`;
      if (lost.length === 0) return [];
      const workers = await tx.worker.findMany({ where: { id: { in: lost.map((l) => l.id) } } });
      const previous = new Map(lost.map((l) => [l.id, l.status]));
      for (const w of workers) await this.emit(tx, 'lost', w, previous.get(w.id) ?? null);
      return workers;
    });
  }

  /** Whether any worker of `backend` has ever registered (a submission to another is likely a typo). */
  async knownBackends(): Promise<string[]> {
    const { rows } = await poolOf(this.db).query<{ backend: string }>(`SELECT DISTINCT backend FROM workers ORDER BY backend`);
    return rows.map((r) => r.backend);
  }

  async isKnownBackend(backend: string): Promise<boolean> {
    if (this.knownBackendNames.has(backend)) return true;
    const { rowCount } = await poolOf(this.db).query(`SELECT 1 FROM workers WHERE backend = $1 LIMIT 1`, [backend]);
    if ((rowCount ?? 0) > 0) this.knownBackendNames.add(backend);
    return (rowCount ?? 0) > 0;
  }

  /** The fleet in numbers, per backend: workers by status, slots online and in use. */
  async stats(): Promise<WorkerStats> {
    const { rows } = await poolOf(this.db).query<{ backend: string; status: string; workers: number; slots: number; busy: number }>(
      `SELECT backend, status::text AS status, count(*)::int AS workers, sum(concurrency)::int AS slots,
              sum(jsonb_array_length(running_jobs))::int AS busy
       FROM workers GROUP BY backend, status`,
    );
    const stats: WorkerStats = { byBackend: {}, totals: { workers: 0, online: 0, slots: 0, busySlots: 0 } };
    for (const r of rows) {
      const b = (stats.byBackend[r.backend] ??= { workers: {}, slots: 0, busySlots: 0 });
      b.workers[r.status] = r.workers;
      stats.totals.workers += r.workers;
      if (r.status === 'ONLINE' || r.status === 'DRAINING') {
        b.slots += r.slots;
        b.busySlots += r.busy;
        stats.totals.slots += r.slots;
        stats.totals.busySlots += r.busy;
      }
      if (r.status === 'ONLINE') stats.totals.online += r.workers;
    }
    return stats;
  }

  async list(filter: { backend?: string; status?: Worker['status'][] } = {}): Promise<WorkerView[]> {
    const rows = await this.db.worker.findMany({
      where: { ...(filter.backend ? { backend: filter.backend } : {}), ...(filter.status ? { status: { in: filter.status } } : {}) },
      orderBy: [{ backend: 'asc' }, { startedAt: 'asc' }],
    });
    const used = await this.usedBy(rows.map((w) => w.id));
    return rows.map((w) => toWorkerView(w, used.get(w.id)));
  }

  /** Per worker: slots taken by attempts in flight there, and the resources placed attempts hold. */
  async usedBy(ids: string[]): Promise<Map<string, Record<string, number>>> {
    const out = new Map<string, Record<string, number>>();
    if (ids.length === 0) return out;
    const { rows } = await poolOf(this.db).query<{ worker_id: string; resource: string; amount: number }>(
      heldOnWorkersSql('= ANY($1::text[])'),
      [ids],
    );
    for (const r of rows) out.set(r.worker_id, { ...(out.get(r.worker_id) ?? {}), [r.resource]: Number(r.amount) });
    return out;
  }

  async get(id: string): Promise<WorkerView | null> {
    const w = await this.db.worker.findUnique({ where: { id } });
    return w ? toWorkerView(w, (await this.usedBy([w.id])).get(w.id)) : null;
  }

  private async emit(tx: Prisma.TransactionClient, type: 'registered' | 'lost' | 'offline' | 'draining', w: Worker, previousStatus: string | null) {
    const event = workerEvent(type, { workerId: w.id, backend: w.backend, status: w.status, previousStatus, host: w.host }, this.options.source);
    await tx.outboxEvent.create({ data: { subject: this.options.subjects.event('worker', type), event: event as unknown as Prisma.InputJsonValue } });
  }
}
