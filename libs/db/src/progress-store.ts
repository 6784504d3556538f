import { jobProgressEvent, ProgressMessage, Subjects } from '@blixard/contracts';
import type { Pool } from 'pg';
import { poolOf, type Db } from './prisma';
import { inTransaction, insertOutbox, jobFromRow } from './sql';
import { toJobEventData } from './views';

/**
 * The latest progress of a running attempt, on the job row, each stored report with its
 * `dev.blixard.job.progress` event in the same transaction.
 */
export class ProgressStore {
  private readonly pool: Pool;

  constructor(
    db: Db,
    private readonly options: { subjects: Subjects; source: string },
  ) {
    this.pool = poolOf(db);
  }

  /**
   * Stores `report` if it is news: the job's current attempt, still claimed or running, from the
   * worker that holds it, and newer (by seq) than what is stored. Anything else changes nothing
   * (a late report of an earlier attempt, one overtaken by a newer one): `stale`.
   */
  async record(report: ProgressMessage): Promise<'stored' | 'stale'> {
    return inTransaction(this.pool, async (tx) => {
      // Fencing: attempt number and worker, like any report; the seq keeps the latest.
      const { rows } = await tx.query(
        `UPDATE jobs
         SET progress = $3, progress_note = $4, progress_attempt = $2, progress_seq = $5, progress_at = $6
         WHERE id = $1::uuid AND attempt = $2 AND status IN ('CLAIMED', 'RUNNING')
           AND (worker_id IS NULL OR worker_id = $7)
           AND (progress_attempt IS DISTINCT FROM $2 OR progress_seq IS NULL OR progress_seq < $5)
         RETURNING *`,
        [report.jobId, report.attempt, report.fraction, report.note, report.seq, new Date(report.at), report.workerId],
      );
      if (rows.length === 0) return 'stale';
      const job = jobFromRow(rows[0]);
      const at = job.progressAt ?? new Date();
      const event = jobProgressEvent(
        { ...toJobEventData(job, job.status), progress: { fraction: report.fraction, note: report.note, attempt: report.attempt, seq: report.seq, at: at.toISOString() } },
        this.options.source,
        at,
      );
      await insertOutbox(tx, [{ subject: this.options.subjects.event('job', 'progress'), event }]);
      return 'stored';
    });
  }
}
