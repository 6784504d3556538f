import { OutputTail } from '@blixard/domain';
import type { JsonValue } from '@blixard/domain';
import {
  abortableSleep,
  ExecutionBackend,
  ExecutionContext,
  ExecutionFailure,
  ExecutionJob,
  ExecutionResult,
  RecoveredAttempt,
  RecoveryContext,
} from '@blixard/executor-sdk';
import { attemptState } from './attempt-state';
import type { KubeSettings } from './config';
import { ANNOTATIONS, attemptSelector, buildJobManifest, CONTAINER, jobName, LABELS, workerSelector } from './job-manifest';
import { KubeApi, KubeApiError, timeOf } from './kube-api';
import { KubernetesPayload, validateKubernetesPayload } from './payload';

/** What the backend logs through (the executor's pino logger, handed over by `recover`). */
export interface BackendLogger {
  debug(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** How long reading the log may hold up a cancel (the Job is deleted meanwhile). */
const ABORT_LOG_WAIT_MS = 1_000;

/**
 * The `kubernetes` backend: each attempt is a `batch/v1` Job (see job-manifest.ts) in
 * KUBE_NAMESPACE. It polls the Job and its pod every KUBE_POLL_INTERVAL_MS until the pod
 * succeeds or fails, then reads the end of the pod's log. A cancel or timeout deletes the Job
 * (its pods go with it). After a restart with the same EXECUTOR_ID, `recover` finds this
 * worker's Jobs by label and the runtime follows them again.
 */
export class KubernetesBackend implements ExecutionBackend<KubernetesPayload> {
  readonly name = 'kubernetes';

  constructor(
    private readonly api: KubeApi,
    private readonly settings: KubeSettings,
    private logger?: BackendLogger,
  ) {}

  capabilities() {
    return { features: ['image', 'command', 'env', 'resources', 'node-selector', 'tolerations', 'active-deadline', 'adopt-after-restart'] };
  }

  validate(payload: unknown): KubernetesPayload {
    return validateKubernetesPayload(payload);
  }

  async execute(job: ExecutionJob<KubernetesPayload>, ctx: ExecutionContext): Promise<ExecutionResult> {
    const { namespace } = this.settings;
    const manifest = buildJobManifest(job, {
      namespace,
      workerId: ctx.workerId,
      ttlSecondsAfterFinished: this.settings.jobTtlSeconds,
      serviceAccountName: this.settings.jobServiceAccount,
      startedAt: new Date(),
    });
    try {
      await this.api.createJob(namespace, manifest);
    } catch (err) {
      // 409: this attempt's Job exists already (a redelivered dispatch): follow that one.
      if (!(err instanceof KubeApiError && err.status === 409)) throw createFailure(err);
    }
    return this.follow(job.id, job.attempt, ctx);
  }

  /** Called once at start, before any dispatch: also where the backend gets the executor's logger. */
  async recover({ workerId, logger }: RecoveryContext): Promise<RecoveredAttempt[]> {
    this.logger ??= logger;
    const jobs = await this.api.listJobs(this.settings.namespace, workerSelector(workerId));
    const found: RecoveredAttempt[] = [];
    for (const j of jobs) {
      const labels = j.metadata?.labels ?? {};
      const annotations = j.metadata?.annotations ?? {};
      const jobId = labels[LABELS.jobId] ?? '';
      const attempt = Number(labels[LABELS.attempt]);
      // The worker label may be a hash: the annotation holds the id itself.
      if (!UUID.test(jobId) || !Number.isInteger(attempt) || attempt < 1 || annotations[ANNOTATIONS.workerId] !== workerId) {
        this.logger?.warn({ job: j.metadata?.name }, 'a Job with this worker\'s labels is not one of its attempts; left alone');
        continue;
      }
      const timeout = Number(annotations[ANNOTATIONS.timeoutMs]);
      found.push({
        jobId,
        attempt,
        startedAt: new Date(timeOf(annotations[ANNOTATIONS.startedAt]) ?? timeOf(j.metadata?.creationTimestamp) ?? Date.now()),
        timeoutMs: Number.isInteger(timeout) && timeout > 0 ? timeout : null,
        resume: (ctx) => this.follow(jobId, attempt, ctx),
      });
    }
    return found;
  }

  /** Polls the attempt's Job and pod until it ends, or deletes the Job when `ctx.signal` aborts. */
  private async follow(jobId: string, attempt: number, ctx: ExecutionContext): Promise<ExecutionResult> {
    const { namespace, pollIntervalMs, startTimeoutMs } = this.settings;
    const name = jobName(jobId, attempt);
    const selector = attemptSelector(jobId, attempt);
    const followingSince = Date.now();
    let pod: string | null = null;
    let lastWarning = 0;
    for (;;) {
      if (ctx.signal.aborted) return this.stop(name, pod, ctx);
      try {
        const [job, pods] = await Promise.all([this.api.getJob(namespace, name), this.api.listPods(namespace, selector)]);
        const state = attemptState({ job, pods, pendingForMs: Date.now() - followingSince, startTimeoutMs });
        pod = state.pod ?? pod;
        if (state.kind === 'succeeded') {
          const terminated = pods.find((p) => p.metadata?.name === state.pod)?.status?.containerStatuses?.find((c) => c.name === CONTAINER)?.state?.terminated;
          return { exitCode: 0, output: parseTerminationMessage(terminated?.message), stdoutTail: await this.logTail(state.pod, ctx) };
        }
        if (state.kind === 'failed') {
          const [stdoutTail] = await Promise.all([this.logTail(state.pod, ctx), state.deleteJob ? this.deleteJob(name) : undefined]);
          throw new ExecutionFailure(state.code, state.message, { exitCode: state.exitCode, retryable: state.retryable, stdoutTail });
        }
      } catch (err) {
        if (err instanceof ExecutionFailure) throw err;
        const e = err instanceof KubeApiError ? err : new KubeApiError(0, String(err));
        // Refused credentials do not fix themselves; anything else (network, 5xx, 429) may.
        if (e.status === 401 || e.status === 403) throw new ExecutionFailure('kube_api_forbidden', e.message, { retryable: true });
        if (Date.now() - lastWarning > 10_000) {
          lastWarning = Date.now();
          this.logger?.warn({ job: name, err: e.message }, 'cannot read the Job; still following it');
        }
      }
      await abortableSleep(pollIntervalMs, ctx.signal).catch(() => undefined);
    }
  }

  /** Cancel or timeout: delete the Job (the runtime reports why), keeping what the log says. */
  private async stop(name: string, pod: string | null, ctx: ExecutionContext): Promise<never> {
    const tail = Promise.race([this.logTail(pod, ctx), new Promise<undefined>((r) => setTimeout(() => r(undefined), ABORT_LOG_WAIT_MS).unref())]);
    const [stdoutTail] = await Promise.all([tail, this.deleteJob(name)]);
    throw new ExecutionFailure('aborted', `deleted the Kubernetes Job ${name} (${String(ctx.signal.reason)})`, { stdoutTail });
  }

  /** Deletes the Job, retrying a few times; one left behind still ends at its activeDeadlineSeconds (with a timeout). */
  private async deleteJob(name: string): Promise<void> {
    for (let i = 0, delay = 200; ; i++, delay *= 2) {
      try {
        await this.api.deleteJob(this.settings.namespace, name);
        return;
      } catch (err) {
        if (i >= 4) {
          this.logger?.error({ job: name, err: String(err) }, 'could not delete the Kubernetes Job');
          return;
        }
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** The end of the pod's log (stdout and stderr as Kubernetes interleaves them), or undefined. */
  private async logTail(pod: string | null, ctx: ExecutionContext): Promise<string | undefined> {
    if (!pod || ctx.outputTailBytes === 0) return undefined;
    try {
      // Lines are not bytes: ask for enough lines, then keep the last outputTailBytes.
      const text = await this.api.readPodLog(this.settings.namespace, pod, CONTAINER, Math.max(200, Math.ceil(ctx.outputTailBytes / 16)));
      const tail = new OutputTail(ctx.outputTailBytes);
      tail.push(text);
      return tail.toString();
    } catch (err) {
      this.logger?.debug({ pod, err: String(err) }, 'pod log not readable');
      return undefined;
    }
  }
}

/** Why a Job could not be created, as the attempt's failure. */
function createFailure(err: unknown): ExecutionFailure {
  const e = err instanceof KubeApiError ? err : new KubeApiError(0, String(err));
  // 400/422: the API refused the spec (a quota, an admission policy, a field it knows better).
  const invalid = e.status === 400 || e.status === 422;
  return new ExecutionFailure(invalid ? 'invalid_job_spec' : 'kube_api_error', `could not create the Kubernetes Job: ${e.message}`, { retryable: !invalid });
}

/**
 * The container's termination message (what it wrote to /dev/termination-log, at most 4 KiB) is
 * the job's output: JSON when it parses, else the text. Empty: no output.
 */
export function parseTerminationMessage(message: string | undefined): JsonValue {
  if (!message || message.trim() === '') return null;
  try {
    return JSON.parse(message) as JsonValue;
  } catch {
    return message;
  }
}
