import type { JobStatus } from '@blixard/domain';
import type { JobProgress } from './live';

/** Wire shapes of the public HTTP API (`/v1`), shared by the gateway and the client. */
export interface JobAttemptView {
  attempt: number;
  workerId: string | null;
  outcome: 'RUNNING' | 'COMPLETED' | 'FAILED' | 'TIMED_OUT' | 'CANCELLED' | 'LEASE_EXPIRED' | 'WORKER_LOST';
  error: string | null;
  errorCode: string | null;
  exitCode: number | null;
  durationMs: number | null;
  stdoutTail: string | null;
  stderrTail: string | null;
  claimedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface JobView {
  id: string;
  /** The tenant that owns the job. */
  tenant: string;
  queue: string;
  backend: string;
  status: JobStatus;
  payload: unknown;
  priority: number;
  labels: Record<string, string>;
  attempt: number;
  maxAttempts: number;
  timeoutMs: number | null;
  backoff: { type: string; baseMs: number; maxMs: number; jitter: number };
  idempotencyKey: string | null;
  runAt: string;
  workerId: string | null;
  leaseExpiresAt: string | null;
  result: unknown;
  error: string | null;
  errorCode: string | null;
  exitCode: number | null;
  stdoutTail: string | null;
  stderrTail: string | null;
  createdAt: string;
  updatedAt: string;
  dispatchedAt: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  concurrencyKey: string | null;
  fairnessKey: string;
  onParentFailure: 'cancel' | 'run';
  scheduleId: string | null;
  /** Placement requirements as submitted (null: any worker of the backend takes the job). */
  requirements: JobRequirementsView | null;
  /** With requirements: when the job fails if no worker has taken it. */
  placementDeadlineAt: string | null;
  /** Why a PENDING job is not dispatched yet, e.g. "no worker with label gpu=true and 1 slot, 2048 MB free (...)". */
  waitReason: string | null;
  /** The latest progress its executor reported (`ctx.progress`), or null. */
  progress: JobProgress | null;
  /** Parents this job waits for (BLOCKED until they complete). */
  dependsOn?: string[];
  attempts?: JobAttemptView[];
}

export interface JobRequirementsView {
  resources: Record<string, number>;
  constraints: string[];
  affinity: { constraint: string; weight: number }[];
  worker: string | null;
}

export interface JobPage {
  items: JobView[];
  /** Pass as `cursor` to get the next page; null on the last page. */
  nextCursor: string | null;
}

export interface WorkerView {
  id: string;
  backend: string;
  host: string;
  version: string;
  status: 'ONLINE' | 'DRAINING' | 'OFFLINE' | 'LOST';
  labels: Record<string, string>;
  capacity: Record<string, number>;
  concurrency: number;
  runningJobs: { jobId: string; attempt: number }[];
  /** What attempts in flight hold on it now: slots, and the resources of placed attempts. */
  used: Record<string, number>;
  startedAt: string;
  lastHeartbeatAt: string;
}

export interface StatsView {
  byStatus: Record<JobStatus, number>;
  byBackend: Record<string, Partial<Record<JobStatus, number>>>;
  total: number;
}

/** RFC 9457 problem details, the body of every error response. */
export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  code: string;
  errors?: { field: string; message: string }[];
}

export interface ScheduleView {
  id: string;
  /** The tenant that owns the schedule and the jobs it makes. */
  tenant: string;
  name: string | null;
  cron: string;
  timezone: string;
  /** The job each fire makes (a submission without idempotencyKey, runAt, delayMs, dependsOn). */
  template: Record<string, unknown>;
  overlap: 'allow' | 'skip' | 'cancel_previous';
  catchUp: 'none' | 'latest' | 'all';
  catchUpLimit: number;
  paused: boolean;
  nextFireAt: string | null;
  lastFireAt: string | null;
  lastJobId: string | null;
  createdAt: string;
}

export interface QueueView {
  name: string;
  paused: boolean;
  maxConcurrency: number | null;
  rateLimit: { n: number; intervalMs: number } | null;
  keyConcurrency: number | null;
  keyRateLimit: { n: number; intervalMs: number } | null;
  /** How jobs with requirements pick a worker: binpack, spread, first-fit, round-robin, explicit. */
  placementPolicy: 'binpack' | 'spread' | 'first-fit' | 'round-robin' | 'explicit';
  /** Jobs of this queue by status. */
  counts: Partial<Record<JobStatus, number>>;
}

/** An API key as the API shows it: never its secret (the token is shown once, at creation). */
export interface ApiKeyView {
  id: string;
  tenant: string;
  name: string;
  scopes: string[];
  /** The token's public part: `bk_<prefix>_...`. */
  prefix: string;
  createdAt: string;
  lastUsedAt: string | null;
  expiresAt: string | null;
  revokedAt: string | null;
}

/** `POST /v1/keys` (and `blixard keys create`): the key and its token, which is not shown again. */
export interface CreatedApiKey {
  key: ApiKeyView;
  token: string;
}
