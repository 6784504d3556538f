import type { ScheduleView } from '@blixard/contracts';
import {
  dueFireTimes,
  isTerminal,
  JobStatus,
  JobSubmission,
  newJobId,
  nextFireTime,
  NotFoundError,
  ScheduleDefinition,
} from '@blixard/domain';
import { captureTraceContext, traceCronFire } from '@blixard/telemetry';
import { JobStore, requestHash } from './job-store';
import { poolOf, type Db, type Prisma, type Schedule } from './prisma';
import { inTransaction } from './sql';

export interface FireOutcome {
  /** Jobs made. */
  fired: number;
  /** Fire times passed over because the previous job still ran (`overlap: "skip"`). */
  skipped: number;
  /** Running attempts cancelled by `overlap: "cancel_previous"`, whose workers must be told. */
  cancelled: { workerId: string; jobId: string; attempt: number }[];
}

/**
 * Cron schedules. Each fire time makes exactly one job, even with several schedulers: a
 * schedule is fired under its row lock (`FOR UPDATE SKIP LOCKED`), fire times up to `last_fire_at`
 * are never made again, and each job carries the idempotency key `schedule:<id>:<fireTime>`.
 */
export class ScheduleStore {
  constructor(
    private readonly db: Db,
    private readonly jobs: JobStore,
    /** How late a fire time may be handled and still count as due (catch-up policy `none`). */
    private readonly graceMs = 60_000,
  ) {}

  async create(def: ScheduleDefinition, now = new Date(), tenant = 'default'): Promise<ScheduleView> {
    const row = await this.db.schedule.create({
      data: {
        id: newJobId(),
        tenant,
        name: def.name,
        cron: def.cron,
        timezone: def.timezone,
        template: def.template as unknown as Prisma.InputJsonValue,
        overlap: def.overlap,
        catchUp: def.catchUp,
        catchUpLimit: def.catchUpLimit,
        paused: def.paused,
        nextFireAt: def.paused ? null : nextFireTime(def.cron, def.timezone, now),
        // Each fire's trace links back to the request that created the schedule.
        traceContext: (captureTraceContext() ?? undefined) as Prisma.InputJsonValue | undefined,
        createdAt: now,
        updatedAt: now,
      },
    });
    return toScheduleView(row);
  }

  /** `tenant`: that tenant's schedules only (undefined: every tenant's). */
  async list(tenant?: string): Promise<ScheduleView[]> {
    return (await this.db.schedule.findMany({ where: tenant === undefined ? {} : { tenant }, orderBy: { createdAt: 'asc' } })).map(toScheduleView);
  }

  /** Another tenant's schedule is not found, like one that never existed. */
  async get(id: string, tenant?: string): Promise<ScheduleView> {
    const row = await this.db.schedule.findUnique({ where: { id } });
    if (!row || (tenant !== undefined && row.tenant !== tenant)) throw new NotFoundError('schedule', id);
    return toScheduleView(row);
  }

  /** Pausing stops fires; resuming starts from now: fire times missed while paused are not caught up. */
  async setPaused(id: string, paused: boolean, now = new Date(), tenant?: string): Promise<ScheduleView> {
    const row = await this.db.schedule.findUnique({ where: { id } });
    if (!row || (tenant !== undefined && row.tenant !== tenant)) throw new NotFoundError('schedule', id);
    if (row.paused === paused) return toScheduleView(row);
    const updated = await this.db.schedule.update({
      where: { id },
      data: paused
        ? { paused: true, nextFireAt: null, updatedAt: now }
        : { paused: false, lastFireAt: now, nextFireAt: nextFireTime(row.cron, row.timezone, now), updatedAt: now },
    });
    return toScheduleView(updated);
  }

  async delete(id: string, tenant?: string): Promise<void> {
    const { count } = await this.db.schedule.deleteMany({ where: tenant === undefined ? { id } : { id, tenant } });
    if (count === 0) throw new NotFoundError('schedule', id);
  }

  /** When the next schedule fires (for the scheduler's timer); null when none is active. */
  async nextFireAt(): Promise<Date | null> {
    const row = await this.db.schedule.findFirst({ where: { paused: false, nextFireAt: { not: null } }, orderBy: { nextFireAt: 'asc' }, select: { nextFireAt: true } });
    return row?.nextFireAt ?? null;
  }

  /** Fires every due schedule (up to `limit` schedules), applying its catch-up and overlap policies. */
  async fireDue(limit: number): Promise<FireOutcome> {
    return inTransaction(poolOf(this.db), async (tx) => {
      const { rows: due } = await tx.query<{ id: string; now: Date }>(
        `SELECT id, now() AS now FROM schedules
         WHERE NOT paused AND next_fire_at <= now()
         ORDER BY next_fire_at
         LIMIT $1
         FOR UPDATE SKIP LOCKED`,
        [limit],
      );
      const outcome: FireOutcome = { fired: 0, skipped: 0, cancelled: [] };
      for (const { id, now: dbNow } of due) {
        const { rows: [row] } = await tx.query(`SELECT * FROM schedules WHERE id = $1`, [id]);
        const s = {
          cron: row.cron as string,
          timezone: row.timezone as string,
          catchUp: row.catch_up as string,
          catchUpLimit: row.catch_up_limit as number,
          overlap: row.overlap as string,
          template: row.template as unknown,
          lastFireAt: row.last_fire_at as Date | null,
          lastJobId: row.last_job_id as string | null,
          createdAt: row.created_at as Date,
        };
        const now = new Date(dbNow);
        const def = { cron: s.cron, timezone: s.timezone, catchUp: s.catchUp as ScheduleDefinition['catchUp'], catchUpLimit: s.catchUpLimit };
        const since = new Date(s.lastFireAt ?? s.createdAt);
        const times = dueFireTimes(def, since, now, this.graceMs);
        const template = s.template as unknown as JobSubmission;
        let lastJobId = s.lastJobId;
        for (const t of times) {
          if (lastJobId !== null && s.overlap !== 'allow') {
            const { rows: [prev] } = await tx.query<{ status: string }>(`SELECT status::text AS status FROM jobs WHERE id = $1`, [lastJobId]);
            if (prev && !isTerminal(prev.status as JobStatus)) {
              if (s.overlap === 'skip') {
                outcome.skipped++;
                continue;
              }
              const { notify } = await this.jobs.cancelInTx(tx, lastJobId, `superseded by the ${t.toISOString()} fire of schedule ${id}`);
              if (notify) outcome.cancelled.push({ ...notify, jobId: lastJobId });
            }
          }
          const key = `schedule:${id}:${t.toISOString()}`;
          const { rows: [existing] } = await tx.query<{ id: string }>(`SELECT id FROM jobs WHERE tenant = $3 AND queue = $1 AND idempotency_key = $2`, [template.queue, key, row.tenant]);
          if (existing) {
            lastJobId = existing.id;
            continue;
          }
          const submission: JobSubmission = { ...template, idempotencyKey: key, runAt: null, dependsOn: [] };
          // The fire is the root of its job's trace (the job stores its context), linked to the schedule's creation.
          const job = await traceCronFire(id, t, row.trace_context, () => this.jobs.insertJob(tx, submission, requestHash(template), now, { scheduleId: id, tenant: row.tenant as string }));
          lastJobId = job.id;
          outcome.fired++;
        }
        // Every fire time up to now is handled, fired or not: none is ever made later.
        const handledUpTo = dueFireTimes({ ...def, catchUp: 'latest' }, since, now, 0)[0] ?? since;
        await tx.query(`UPDATE schedules SET last_fire_at = $2, last_job_id = $3, next_fire_at = $4, updated_at = $5 WHERE id = $1`, [
          id,
          handledUpTo,
          lastJobId,
          nextFireTime(s.cron, s.timezone, now),
          now,
        ]);
      }
      return outcome;
    });
  }
}

export function toScheduleView(s: Schedule): ScheduleView {
  return {
    id: s.id,
    tenant: s.tenant,
    name: s.name,
    cron: s.cron,
    timezone: s.timezone,
    template: s.template as Record<string, unknown>,
    overlap: s.overlap as ScheduleView['overlap'],
    catchUp: s.catchUp as ScheduleView['catchUp'],
    catchUpLimit: s.catchUpLimit,
    paused: s.paused,
    nextFireAt: s.nextFireAt?.toISOString() ?? null,
    lastFireAt: s.lastFireAt?.toISOString() ?? null,
    lastJobId: s.lastJobId,
    createdAt: s.createdAt.toISOString(),
  };
}
