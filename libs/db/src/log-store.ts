import type { LogLine } from '@blixard/contracts';
import type { Pool } from 'pg';
import { poolOf, type Db } from './prisma';
import { inTransaction } from './sql';

export interface LogStoreOptions {
  /** LOG_MAX_BYTES_PER_ATTEMPT: job output stored per attempt; `system` lines do not count. */
  maxBytesPerAttempt: number;
}

export interface AttemptLogSummary {
  bytes: number;
  lines: number;
  lastSeq: number;
  truncated: boolean;
  droppedLines: number;
  droppedBytes: number;
  /** The attempt's end marker arrived and every line up to it is stored. */
  complete: boolean;
}

const EMPTY: AttemptLogSummary = { bytes: 0, lines: 0, lastSeq: 0, truncated: false, droppedLines: 0, droppedBytes: 0, complete: false };

/**
 * Attempts' output lines in Postgres, in chunks of consecutive lines (`job_log_chunks`), with a
 * summary row per attempt (`job_log_attempts`) that bounds what is stored and says whether the
 * log is complete. Appends are idempotent (a line whose seq is already stored is skipped), so the
 * stream may redeliver and several archivers may share the work.
 */
export class LogStore {
  private readonly pool: Pool;

  constructor(
    db: Db,
    private readonly options: LogStoreOptions,
  ) {
    this.pool = poolOf(db);
  }

  /**
   * Stores `lines` (consecutive lines of one attempt, in seq order). Lines already stored are
   * skipped; job output past the cap is dropped, the first dropped line replaced by a `system`
   * line that says so. Throws on an unknown job (foreign key, code 23503).
   */
  async append(jobId: string, attempt: number, lines: LogLine[]): Promise<{ stored: number; skipped: number; dropped: number }> {
    if (lines.length === 0) return { stored: 0, skipped: 0, dropped: 0 };
    return inTransaction(this.pool, async (tx) => {
      const summary = await this.lockSummary(tx, jobId, attempt);
      const min = lines[0]!.seq;
      const max = lines[lines.length - 1]!.seq;
      // The ranges already stored that this batch overlaps (a redelivery, or another archiver's batch).
      const { rows: covered } = await tx.query<{ first_seq: number; last_seq: number }>(
        `SELECT first_seq, last_seq FROM job_log_chunks
         WHERE job_id = $1::uuid AND attempt = $2 AND first_seq <= $4 AND last_seq >= $3`,
        [jobId, attempt, min, max],
      );
      const fresh = lines.filter((l) => !covered.some((c) => l.seq >= c.first_seq && l.seq <= c.last_seq));
      let bytes = summary.bytes;
      let truncated = summary.truncated;
      let dropped = 0;
      let droppedBytes = 0;
      const keep: LogLine[] = [];
      for (const l of fresh) {
        const size = Buffer.byteLength(l.line) + 1;
        if (l.stream === 'system') {
          keep.push(l);
          continue;
        }
        if (!truncated && bytes + size > this.options.maxBytesPerAttempt) {
          truncated = true;
          keep.push({ seq: l.seq, stream: 'system', at: l.at, line: `[blixard] stored output truncated: this attempt reached LOG_MAX_BYTES_PER_ATTEMPT (${this.options.maxBytesPerAttempt} bytes); further lines are dropped` });
        }
        if (truncated) {
          dropped++;
          droppedBytes += size;
          continue;
        }
        bytes += size;
        keep.push(l);
      }
      if (keep.length > 0) {
        await tx.query(
          `INSERT INTO job_log_chunks (job_id, attempt, first_seq, last_seq, lines, bytes) VALUES ($1::uuid, $2, $3, $4, $5::jsonb, $6)`,
          [jobId, attempt, keep[0]!.seq, keep[keep.length - 1]!.seq, JSON.stringify(keep), bytes - summary.bytes],
        );
      }
      await tx.query(
        `UPDATE job_log_attempts
         SET bytes = $3, lines = lines + $4, last_seq = GREATEST(last_seq, $5), truncated = $6,
             dropped_lines = dropped_lines + $7, dropped_bytes = dropped_bytes + $8
         WHERE job_id = $1::uuid AND attempt = $2`,
        [jobId, attempt, bytes, keep.length, keep.length > 0 ? keep[keep.length - 1]!.seq : 0, truncated, dropped, droppedBytes],
      );
      return { stored: keep.length, skipped: lines.length - fresh.length, dropped };
    });
  }

  /**
   * The executors' end markers (nothing after `lastSeq` will come for the attempt), many in one
   * statement (most attempts print nothing: one row each, no lock dance).
   * Throws on an unknown job (23503): the caller then applies them one by one.
   */
  async endMany(markers: { jobId: string; attempt: number; lastSeq: number; droppedLines: number; droppedBytes: number; at: number }[]): Promise<void> {
    if (markers.length === 0) return;
    // One row may be named once per statement: the last marker of an attempt wins (they are equal).
    markers = [...new Map(markers.map((m) => [`${m.jobId}:${m.attempt}`, m])).values()];
    await this.pool.query(
      `INSERT INTO job_log_attempts AS a (job_id, attempt, end_seq, ended_at, dropped_lines, dropped_bytes, truncated)
       SELECT j, n, e, t, dl, db, dl > 0
       FROM unnest($1::uuid[], $2::int[], $3::int[], $4::timestamptz[], $5::int[], $6::int[]) AS m(j, n, e, t, dl, db)
       ON CONFLICT (job_id, attempt) DO UPDATE
       SET end_seq = EXCLUDED.end_seq, ended_at = COALESCE(a.ended_at, EXCLUDED.ended_at),
           dropped_lines = GREATEST(a.dropped_lines, EXCLUDED.dropped_lines), dropped_bytes = GREATEST(a.dropped_bytes, EXCLUDED.dropped_bytes),
           truncated = a.truncated OR EXCLUDED.truncated`,
      [
        markers.map((m) => m.jobId),
        markers.map((m) => m.attempt),
        markers.map((m) => m.lastSeq),
        markers.map((m) => new Date(m.at)),
        markers.map((m) => m.droppedLines),
        markers.map((m) => m.droppedBytes),
      ],
    );
  }

  /** The stored lines of an attempt after `afterSeq`, in order, with its summary. */
  async read(jobId: string, attempt: number, afterSeq = 0): Promise<{ lines: LogLine[]; summary: AttemptLogSummary }> {
    const [{ rows: chunks }, summary] = await Promise.all([
      this.pool.query<{ lines: LogLine[] }>(
        `SELECT lines FROM job_log_chunks WHERE job_id = $1::uuid AND attempt = $2 AND last_seq > $3 ORDER BY first_seq`,
        [jobId, attempt, afterSeq],
      ),
      this.summary(jobId, attempt),
    ]);
    const lines = chunks.flatMap((c) => c.lines).filter((l) => l.seq > afterSeq);
    lines.sort((a, b) => a.seq - b.seq);
    return { lines, summary };
  }

  async summary(jobId: string, attempt: number): Promise<AttemptLogSummary> {
    const { rows } = await this.pool.query<RawSummary>(`SELECT * FROM job_log_attempts WHERE job_id = $1::uuid AND attempt = $2`, [jobId, attempt]);
    return rows[0] ? fromRaw(rows[0]) : { ...EMPTY };
  }

  private async lockSummary(tx: Pick<Pool, 'query'>, jobId: string, attempt: number): Promise<AttemptLogSummary> {
    await tx.query(`INSERT INTO job_log_attempts (job_id, attempt) VALUES ($1::uuid, $2) ON CONFLICT DO NOTHING`, [jobId, attempt]);
    const { rows } = await tx.query<RawSummary>(`SELECT * FROM job_log_attempts WHERE job_id = $1::uuid AND attempt = $2 FOR UPDATE`, [jobId, attempt]);
    return fromRaw(rows[0]!);
  }
}

interface RawSummary {
  bytes: number;
  lines: number;
  last_seq: number;
  truncated: boolean;
  dropped_lines: number;
  dropped_bytes: number;
  end_seq: number | null;
  ended_at: Date | null;
}

function fromRaw(r: RawSummary): AttemptLogSummary {
  return {
    bytes: r.bytes,
    lines: r.lines,
    lastSeq: r.last_seq,
    truncated: r.truncated,
    droppedLines: r.dropped_lines,
    droppedBytes: r.dropped_bytes,
    complete: r.ended_at !== null && r.end_seq !== null && r.last_seq >= r.end_seq,
  };
}
