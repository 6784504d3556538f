import type { JobAttemptView, JobEventData, JobView, WorkerView } from '@blixard/contracts';
import type { JobStatus } from '@blixard/domain';
import type { Job, JobAttempt, Worker } from './prisma';

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

export function toAttemptView(a: JobAttempt): JobAttemptView {
  return {
    attempt: a.attempt,
    workerId: a.workerId,
    outcome: a.outcome,
    error: a.error,
    errorCode: a.errorCode,
    exitCode: a.exitCode,
    durationMs: a.durationMs,
    stdoutTail: a.stdoutTail,
    stderrTail: a.stderrTail,
    claimedAt: a.claimedAt.toISOString(),
    startedAt: iso(a.startedAt),
    finishedAt: iso(a.finishedAt),
  };
}

export function toJobView(job: Job & { attempts?: JobAttempt[]; parents?: { parentId: string }[] }): JobView {
  const view: JobView = {
    id: job.id,
    queue: job.queue,
    backend: job.backend,
    status: job.status,
    payload: job.payload,
    priority: job.priority,
    labels: job.labels as Record<string, string>,
    attempt: job.attempt,
    maxAttempts: job.maxAttempts,
    timeoutMs: job.timeoutMs,
    backoff: job.backoff as JobView['backoff'],
    idempotencyKey: job.idempotencyKey,
    runAt: job.runAt.toISOString(),
    workerId: job.workerId,
    leaseExpiresAt: iso(job.leaseExpiresAt),
    result: job.result ?? null,
    error: job.error,
    errorCode: job.errorCode,
    exitCode: job.exitCode,
    stdoutTail: job.stdoutTail,
    stderrTail: job.stderrTail,
    createdAt: job.createdAt.toISOString(),
    updatedAt: job.updatedAt.toISOString(),
    dispatchedAt: iso(job.dispatchedAt),
    startedAt: iso(job.startedAt),
    finishedAt: iso(job.finishedAt),
    concurrencyKey: job.concurrencyKey,
    fairnessKey: job.fairnessKey,
    onParentFailure: job.onParentFailure as 'cancel' | 'run',
    scheduleId: job.scheduleId,
  };
  if (job.parents) view.dependsOn = job.parents.map((p) => p.parentId);
  if (job.attempts) view.attempts = job.attempts.sort((a, b) => a.attempt - b.attempt).map(toAttemptView);
  return view;
}

export function toJobEventData(job: Job, previousStatus: JobStatus | null, withResult = false): JobEventData {
  const data: JobEventData = {
    jobId: job.id,
    queue: job.queue,
    backend: job.backend,
    status: job.status,
    previousStatus,
    attempt: job.attempt,
    maxAttempts: job.maxAttempts,
    workerId: job.workerId,
    runAt: iso(job.runAt),
    createdAt: job.createdAt.toISOString(),
    startedAt: iso(job.startedAt),
    finishedAt: iso(job.finishedAt),
    error: job.error ? { code: job.errorCode, message: job.error } : null,
    exitCode: job.exitCode,
  };
  if (withResult) data.result = job.result ?? null;
  return data;
}

export function toWorkerView(w: Worker): WorkerView {
  return {
    id: w.id,
    backend: w.backend,
    host: w.host,
    version: w.version,
    status: w.status,
    labels: w.labels as Record<string, string>,
    capacity: w.capacity as Record<string, number>,
    concurrency: w.concurrency,
    runningJobs: w.runningJobs as WorkerView['runningJobs'],
    startedAt: w.startedAt.toISOString(),
    lastHeartbeatAt: w.lastHeartbeatAt.toISOString(),
  };
}
