import type { JobQueries, JobStore, QueueStore, ScheduleStore, WorkerStore } from '@blixard/db';
import type { JobSubmissionInput, Validator } from '@blixard/domain';

export const GATEWAY = Symbol('GATEWAY');

/** What the gateway's controllers use; built once in app.ts. */
export interface GatewayDeps {
  store: JobStore;
  queries: JobQueries;
  workers: WorkerStore;
  schedules: ScheduleStore;
  queues: QueueStore;
  /** Validators added to the built-in submission rules (a third party's, say). */
  extraValidators: Validator<JobSubmissionInput>[];
  /** Nudges the schedulers (fire and forget; they poll too): work to dispatch, or schedules changed. */
  wakeScheduler(what?: 'dispatch' | 'reconcile'): void;
  /** Tells a worker to drain. */
  drainWorker(workerId: string): void;
  /** Tells a worker to stop an attempt. */
  cancelOnWorker(workerId: string, jobId: string, attempt: number): void;
}
