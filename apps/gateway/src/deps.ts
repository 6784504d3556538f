import type { ApiKeyStore, JobQueries, JobStore, QueueStore, ScheduleStore, WorkerStore } from '@blixard/db';
import type { JobSubmissionInput, Validator } from '@blixard/domain';
import type { LiveDeps } from './live-deps';
import type { TenantQuota } from './limits';

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
  /** A new job was written (not an idempotent replay): counted (`blixard_jobs_submitted_total`) and logged. */
  jobSubmitted(job: { id: string; backend: string; queue: string }): void;
  /**
   * Asks a live executor of `backend` whether it can run `payload`: its error message, or null
   * when it can (or when no executor answered: the executor then judges it at run time).
   */
  validatePayload(backend: string, payload: unknown): Promise<string | null>;
  /** Tells a worker to drain. */
  drainWorker(workerId: string): void;
  /** Tells a worker to stop an attempt. */
  cancelOnWorker(workerId: string, jobId: string, attempt: number): void;
  /** Events, logs, webhooks and the audit log (live-deps.ts). */
  live: LiveDeps;
  /** API keys (auth.ts checks them; `/v1/keys` manages them). */
  keys: ApiKeyStore;
  /** TENANT_MAX_WAITING_JOBS. */
  quota: TenantQuota;
  /** AUTH_DISABLED: every request is tenant `default` with every scope. */
  authDisabled: boolean;
  /** PUBLIC_DOCS: `/docs` and `/openapi.json` answer without a key (the document says so). */
  publicDocs: boolean;
}
