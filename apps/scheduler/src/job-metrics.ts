import { Db, Job, queueDepth } from '@blixard/db';
import type { Metrics } from '@blixard/telemetry';

/**
 * The scheduler's job metrics beside the counters it keeps inline: jobs that finished
 * (completed, or failed for good) by backend and queue, and the depth of every queue by status,
 * read from Postgres at each scrape (the source of truth, so every replica reports the same).
 */
export class JobMetrics {
  private readonly completed;
  private readonly failed;

  constructor(metrics: Metrics, db: Db) {
    this.completed = metrics.counter('blixard_jobs_completed_total', 'Jobs that completed', ['backend', 'queue'] as const);
    this.failed = metrics.counter('blixard_jobs_failed_total', 'Jobs that failed for good (attempts exhausted or not retryable)', ['backend', 'queue', 'reason'] as const);
    // A queue that empties reads 0 rather than vanishing from the scrape.
    const seen = new Map<string, { backend: string; queue: string; status: string }>();
    metrics.gauge('blixard_queue_depth', 'Jobs waiting or running, by backend, queue and status', ['backend', 'queue', 'status'] as const, async (gauge) => {
      try {
        const rows = await queueDepth(db);
        for (const labels of seen.values()) gauge.set(labels, 0);
        for (const r of rows) {
          const labels = { backend: r.backend, queue: r.queue, status: r.status };
          seen.set(JSON.stringify(labels), labels);
          gauge.set(labels, r.count);
        }
      } catch (err) {
        metrics.countError(err, 'queue_depth');
      }
    });
  }

  /** Counts the jobs among `jobs` that reached COMPLETED or FAILED (call with each transition's result). */
  finished(jobs: (Job | undefined)[]): void {
    for (const job of jobs) {
      if (job?.status === 'COMPLETED') this.completed.inc({ backend: job.backend, queue: job.queue });
      else if (job?.status === 'FAILED') this.failed.inc({ backend: job.backend, queue: job.queue, reason: job.errorCode ?? 'error' });
    }
  }
}
