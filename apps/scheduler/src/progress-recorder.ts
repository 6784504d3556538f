import { ProgressMessage, progressMessageSchema } from '@blixard/contracts';
import type { ProgressStore } from '@blixard/db';
import { Bus, decodeJson, Subscription } from '@blixard/messaging';
import type { Logger, Metrics } from '@blixard/telemetry';

/**
 * Stores executors' progress reports (core NATS, queue group `scheduler`: one replica gets each).
 * Throttled: per job at most one write at a time, and reports that arrive meanwhile collapse into
 * the newest, so a chatty job costs one write per round trip, not one per report.
 */
export class ProgressRecorder {
  private sub: Subscription | undefined;
  /** Per job, the newest report not yet written. */
  private readonly pending = new Map<string, ProgressMessage>();
  private readonly writing = new Set<string>();
  private readonly idle = new Set<() => void>();
  private readonly counters;

  constructor(
    private readonly o: { bus: Bus; store: ProgressStore; logger: Logger; metrics: Metrics; onStored?: () => void },
  ) {
    this.counters = {
      reports: o.metrics.counter('blixard_progress_reports_total', 'Progress reports received, by what became of them', ['result'] as const),
    };
  }

  start(): void {
    const s = this.o.bus.subjects;
    this.sub = this.o.bus.nc.subscribe(s.progressAll, { queue: 'scheduler', callback: (_err, msg) => this.receive(msg.data) });
  }

  async stop(): Promise<void> {
    this.sub?.unsubscribe();
    while (this.writing.size > 0) await new Promise<void>((r) => this.idle.add(r));
  }

  private receive(data: Uint8Array): void {
    const decoded = decodeJson(data, progressMessageSchema);
    if (!decoded.ok) {
      this.counters.reports.inc({ result: 'rejected' });
      this.o.logger.warn({ error: decoded.error }, 'rejected a malformed progress report');
      return;
    }
    const report = decoded.value;
    const queued = this.pending.get(report.jobId);
    if (queued && (queued.attempt > report.attempt || (queued.attempt === report.attempt && queued.seq >= report.seq))) {
      this.counters.reports.inc({ result: 'superseded' });
      return;
    }
    if (queued) this.counters.reports.inc({ result: 'superseded' });
    this.pending.set(report.jobId, report);
    if (!this.writing.has(report.jobId)) void this.write(report.jobId);
  }

  private async write(jobId: string): Promise<void> {
    this.writing.add(jobId);
    try {
      for (let report = this.pending.get(jobId); report; report = this.pending.get(jobId)) {
        this.pending.delete(jobId);
        try {
          const result = await this.o.store.record(report);
          this.counters.reports.inc({ result });
          if (result === 'stored') this.o.onStored?.();
        } catch (err) {
          // Progress is news: the next report carries the latest anyway.
          this.counters.reports.inc({ result: 'error' });
          this.o.logger.warn({ jobId, err: String(err) }, 'progress not stored');
        }
      }
    } finally {
      this.writing.delete(jobId);
      if (this.writing.size === 0) {
        for (const r of this.idle) r();
        this.idle.clear();
      }
    }
  }
}
