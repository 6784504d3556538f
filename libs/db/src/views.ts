import type { JobAttemptView, JobEventData, JobView, WorkerView } from '@blixard/contracts';
import { formatConstraint, type JobStatus, type PlacementRequirements } from '@blixard/domain';
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
    tenant: job.tenant,
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
    requirements: requirementsView(job.requirements as PlacementRequirements | null),
    placementDeadlineAt: iso(job.placementDeadlineAt),
    waitReason: job.waitReason,
    progress: progressView(job),
  };
  if (job.parents) view.dependsOn = job.parents.map((p) => p.parentId);
  if (job.attempts) view.attempts = job.attempts.sort((a, b) => a.attempt - b.attempt).map(toAttemptView);
  return view;
}

/** The latest progress of the job's current attempt; an earlier attempt's is no longer news. */
export function progressView(job: Job): JobView['progress'] {
  if (job.progress === null || job.progressAttempt !== job.attempt) return null;
  return { fraction: job.progress, note: job.progressNote, attempt: job.progressAttempt, seq: job.progressSeq ?? 0, at: iso(job.progressAt) ?? job.updatedAt.toISOString() };
}

function requirementsView(r: PlacementRequirements | null): JobView['requirements'] {
  if (!r) return null;
  return {
    resources: r.resources,
    constraints: r.constraints.map(formatConstraint),
    affinity: r.affinity.map((a) => ({ constraint: formatConstraint(a.constraint), weight: a.weight })),
    worker: r.worker,
  };
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
    tenant: job.tenant,
  };
  if (withResult) data.result = job.result ?? null;
  return data;
}

export function toWorkerView(w: Worker, used: Record<string, number> = {}): WorkerView {
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
    used: { slots: 0, ...used },
    startedAt: w.startedAt.toISOString(),
    lastHeartbeatAt: w.lastHeartbeatAt.toISOString(),
  };
}
