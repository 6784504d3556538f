import type { AuditPage, CloudEvent, JobLogsView, JobPage, JobView, ProblemDetails, QueueView, ScheduleView, StatsView, WebhookDeliveryView, WebhookView, WorkerView } from '@blixard/contracts';

/** A problem+json answer from the API. */
export class BlixardApiError extends Error {
  constructor(readonly problem: ProblemDetails) {
    super(`${problem.status} ${problem.code}: ${problem.detail}`);
    this.name = 'BlixardApiError';
  }
}

export interface SubmitJobRequest {
  backend: string;
  payload: unknown;
  queue?: string;
  priority?: number;
  maxAttempts?: number;
  timeoutMs?: number;
  labels?: Record<string, string>;
  backoff?: { type?: 'exponential' | 'fixed'; baseMs?: number; maxMs?: number; jitter?: number };
  idempotencyKey?: string;
  runAt?: string;
  delayMs?: number;
  concurrencyKey?: string;
  fairnessKey?: string;
  dependsOn?: string[];
  onParentFailure?: 'cancel' | 'run';
  /** Accept a backend no worker has registered yet (otherwise a 400 lists the known ones). */
  allowUnknownBackend?: boolean;
  /** Reserved on the worker while the attempt runs: cpuMillis, memoryMb, or any resource workers declare. */
  resources?: Record<string, number>;
  /** Label constraints the worker must meet: "zone=a", "zone!=a", "zone in (a,b)", "zone notin (a,b)", "gpu", "!gpu". */
  constraints?: string[];
  /** Preferences: matching workers rank higher (negative weights: lower). */
  affinity?: { constraint: string; weight?: number }[];
  /** Run on this worker only (the explicit policy). */
  worker?: string;
  /** With requirements: fail the job if no worker has taken it within this long. */
  placementDeadlineMs?: number;
}

export interface CreateScheduleRequest {
  name?: string;
  cron: string;
  timezone?: string;
  template: Omit<SubmitJobRequest, 'idempotencyKey' | 'runAt' | 'delayMs' | 'dependsOn'>;
  overlap?: 'allow' | 'skip' | 'cancel_previous';
  catchUp?: 'none' | 'latest' | 'all';
  catchUpLimit?: number;
  paused?: boolean;
}

export interface QueueControlsRequest {
  paused?: boolean;
  maxConcurrency?: number | null;
  rateLimit?: { n: number; intervalMs: number } | null;
  keyConcurrency?: number | null;
  keyRateLimit?: { n: number; intervalMs: number } | null;
  placementPolicy?: 'binpack' | 'spread' | 'first-fit' | 'round-robin' | 'explicit';
}

export interface ListJobsQuery {
  status?: string[];
  backend?: string;
  queue?: string;
  label?: Record<string, string>;
  limit?: number;
  cursor?: string;
}

const TERMINAL = ['COMPLETED', 'FAILED', 'CANCELLED'];

/** A typed client for the Blixard HTTP API (`/v1`). */
export class BlixardClient {
  constructor(
    readonly baseUrl: string,
    private readonly options: { apiKey?: string } = {},
  ) {}

  submit(job: SubmitJobRequest, init: { idempotencyKey?: string } = {}): Promise<JobView> {
    return this.request('POST', '/v1/jobs', job, init.idempotencyKey ? { 'Idempotency-Key': init.idempotencyKey } : {});
  }

  get(id: string): Promise<JobView> {
    return this.request('GET', `/v1/jobs/${encodeURIComponent(id)}`);
  }

  list(query: ListJobsQuery = {}): Promise<JobPage> {
    const p = new URLSearchParams();
    if (query.status?.length) p.set('status', query.status.join(','));
    if (query.backend) p.set('backend', query.backend);
    if (query.queue) p.set('queue', query.queue);
    for (const [k, v] of Object.entries(query.label ?? {})) p.append('label', `${k}=${v}`);
    if (query.limit) p.set('limit', String(query.limit));
    if (query.cursor) p.set('cursor', query.cursor);
    const qs = p.toString();
    return this.request('GET', `/v1/jobs${qs ? `?${qs}` : ''}`);
  }

  cancel(id: string): Promise<JobView> {
    return this.request('POST', `/v1/jobs/${encodeURIComponent(id)}/cancel`);
  }

  retry(id: string, maxAttempts?: number): Promise<JobView> {
    return this.request('POST', `/v1/jobs/${encodeURIComponent(id)}/retry`, maxAttempts === undefined ? {} : { maxAttempts });
  }

  retryMany(filter: { status?: ('FAILED' | 'CANCELLED')[]; backend?: string; queue?: string; limit?: number } = {}): Promise<{ redriven: string[] }> {
    return this.request('POST', '/v1/jobs/retry', filter);
  }

  createSchedule(schedule: CreateScheduleRequest): Promise<ScheduleView> {
    return this.request('POST', '/v1/schedules', schedule);
  }

  async schedules(): Promise<ScheduleView[]> {
    return (await this.request<{ items: ScheduleView[] }>('GET', '/v1/schedules')).items;
  }

  schedule(id: string): Promise<ScheduleView> {
    return this.request('GET', `/v1/schedules/${encodeURIComponent(id)}`);
  }

  pauseSchedule(id: string): Promise<ScheduleView> {
    return this.request('POST', `/v1/schedules/${encodeURIComponent(id)}/pause`);
  }

  resumeSchedule(id: string): Promise<ScheduleView> {
    return this.request('POST', `/v1/schedules/${encodeURIComponent(id)}/resume`);
  }

  deleteSchedule(id: string): Promise<void> {
    return this.request('DELETE', `/v1/schedules/${encodeURIComponent(id)}`);
  }

  setQueue(name: string, controls: QueueControlsRequest): Promise<QueueView> {
    return this.request('PUT', `/v1/queues/${encodeURIComponent(name)}`, controls);
  }

  queue(name: string): Promise<QueueView> {
    return this.request('GET', `/v1/queues/${encodeURIComponent(name)}`);
  }

  setFairnessWeight(key: string, weight: number): Promise<{ key: string; weight: number }> {
    return this.request('PUT', `/v1/fairness/${encodeURIComponent(key)}`, { weight });
  }

  stats(): Promise<StatsView> {
    return this.request('GET', '/v1/stats');
  }

  workers(): Promise<WorkerView[]> {
    return this.request('GET', '/v1/workers');
  }

  worker(id: string): Promise<WorkerView> {
    return this.request('GET', `/v1/workers/${encodeURIComponent(id)}`);
  }

  workerStats(): Promise<{ byBackend: Record<string, { workers: Record<string, number>; slots: number; busySlots: number }>; totals: { workers: number; online: number; slots: number; busySlots: number } }> {
    return this.request('GET', '/v1/workers/stats');
  }

  /** Asks a worker to drain: finish (or hand back) its work, go offline and exit. */
  drainWorker(id: string): Promise<WorkerView> {
    return this.request('POST', `/v1/workers/${encodeURIComponent(id)}/drain`);
  }

  /** The stored output lines of an attempt (default: the current one). */
  logs(id: string, attempt?: number): Promise<JobLogsView> {
    return this.request('GET', `/v1/jobs/${encodeURIComponent(id)}/logs${attempt === undefined ? '' : `?attempt=${attempt}`}`);
  }

  /** The job's events the stream holds (oldest first); follow them live with `readSse` on `/v1/jobs/:id/events`. */
  jobEvents(id: string, query: { after?: number; limit?: number } = {}): Promise<{ items: { seq: number; event: CloudEvent<Record<string, unknown>> }[]; lastSeq: number | null; more: boolean }> {
    const p = queryString(query);
    return this.request('GET', `/v1/jobs/${encodeURIComponent(id)}/events${p ? `?${p}` : ''}`);
  }

  createWebhook(webhook: { url: string; events: string[]; secret: string }): Promise<WebhookView> {
    return this.request('POST', '/v1/webhooks', webhook);
  }

  async webhooks(): Promise<WebhookView[]> {
    return (await this.request<{ items: WebhookView[] }>('GET', '/v1/webhooks')).items;
  }

  webhook(id: string): Promise<WebhookView> {
    return this.request('GET', `/v1/webhooks/${encodeURIComponent(id)}`);
  }

  deleteWebhook(id: string): Promise<void> {
    return this.request('DELETE', `/v1/webhooks/${encodeURIComponent(id)}`);
  }

  async webhookDeliveries(id: string, query: { status?: 'pending' | 'succeeded' | 'failed'; limit?: number } = {}): Promise<WebhookDeliveryView[]> {
    const p = queryString(query);
    return (await this.request<{ items: WebhookDeliveryView[] }>('GET', `/v1/webhooks/${encodeURIComponent(id)}/deliveries${p ? `?${p}` : ''}`)).items;
  }

  /** The audit log, newest first: `action` exact or a prefix like `job.*`, `since` an ISO time. */
  audit(query: { action?: string; since?: string; actor?: string; targetId?: string; limit?: number; cursor?: string } = {}): Promise<AuditPage> {
    const p = queryString(query);
    return this.request('GET', `/v1/audit${p ? `?${p}` : ''}`);
  }

  /** Polls until the job is COMPLETED, FAILED or CANCELLED (or `timeoutMs` passes). */
  async waitForTerminal(id: string, { timeoutMs = 30_000, intervalMs = 50 } = {}): Promise<JobView> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const job = await this.get(id);
      if (TERMINAL.includes(job.status)) return job;
      if (Date.now() > deadline) throw new Error(`job ${id} still ${job.status} after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }

  private async request<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const res = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        ...(this.options.apiKey ? { Authorization: `Bearer ${this.options.apiKey}` } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    const parsed = text ? (JSON.parse(text) as unknown) : undefined;
    if (!res.ok) throw new BlixardApiError(parsed as ProblemDetails);
    return parsed as T;
  }
}

function queryString(query: Record<string, string | number | undefined>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) p.set(k, String(v));
  return p.toString();
}
