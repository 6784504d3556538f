import { CONTAINER } from './job-manifest';
import { KubeCondition, KubeContainerStatus, KubeJob, KubePod, timeOf } from './kube-api';

/**
 * Where an attempt's Job stands, read from the Job and its pods: pure, so every case (including
 * the ones no fake cluster produces) is unit-tested. The backend polls and calls this each time.
 */
export type AttemptState =
  | { kind: 'pending'; pod: string | null; note: string }
  | { kind: 'running'; pod: string }
  | { kind: 'succeeded'; pod: string | null }
  | {
      kind: 'failed';
      pod: string | null;
      code: string;
      message: string;
      exitCode: number | null;
      retryable: boolean;
      /** The Job is still active (its pod cannot start): delete it. A finished one is left to its TTL. */
      deleteJob: boolean;
    };

/** Waiting reasons that mean the image will not run: fail at once instead of waiting out a timeout. */
const IMAGE_FAILURES = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull', 'RegistryUnavailable']);
/** The pod spec cannot become a container (a missing Secret or ConfigMap, a bad mount). */
const CONFIG_FAILURES = new Set(['CreateContainerConfigError', 'CreateContainerError', 'RunContainerError']);

function condition(conditions: KubeCondition[] | undefined, type: string): KubeCondition | undefined {
  return conditions?.find((c) => c.type === type && c.status === 'True');
}

function containerOf(pod: KubePod): KubeContainerStatus | undefined {
  const all = pod.status?.containerStatuses ?? [];
  return all.find((c) => c.name === CONTAINER) ?? all[0];
}

/** The pod that speaks for the attempt: the newest one not being deleted (backoffLimit 0 makes one). */
export function currentPod(pods: KubePod[]): KubePod | undefined {
  const live = pods.filter((p) => !p.metadata?.deletionTimestamp);
  const pool = live.length > 0 ? live : pods;
  return [...pool].sort((a, b) => (timeOf(b.metadata?.creationTimestamp) ?? 0) - (timeOf(a.metadata?.creationTimestamp) ?? 0))[0];
}

export interface StateInput {
  job: KubeJob | null;
  pods: KubePod[];
  /** How long the attempt has been waiting for its pod to start (ms). */
  pendingForMs: number;
  startTimeoutMs: number;
}

export function attemptState({ job, pods, pendingForMs, startTimeoutMs }: StateInput): AttemptState {
  if (!job) {
    return { kind: 'failed', pod: null, code: 'job_deleted', message: 'the Kubernetes Job was deleted before it finished', exitCode: null, retryable: true, deleteJob: false };
  }
  const pod = currentPod(pods);
  const podName = pod?.metadata?.name ?? null;
  const phase = pod?.status?.phase;
  const container = pod ? containerOf(pod) : undefined;
  const terminated = container?.state?.terminated;
  const jobFailed = condition(job.status?.conditions, 'Failed');

  if (phase === 'Succeeded') return { kind: 'succeeded', pod: podName };
  if (phase === 'Failed') {
    const exitCode = terminated?.exitCode ?? null;
    const podReason = pod?.status?.reason;
    if (podReason === 'DeadlineExceeded' || jobFailed?.reason === 'DeadlineExceeded') {
      return { kind: 'failed', pod: podName, code: 'deadline_exceeded', message: 'the Job ran past its activeDeadlineSeconds (the attempt timeout)', exitCode, retryable: true, deleteJob: false };
    }
    if (podReason === 'Evicted') {
      return { kind: 'failed', pod: podName, code: 'evicted', message: `the pod was evicted: ${pod?.status?.message ?? 'no message'}`, exitCode, retryable: true, deleteJob: false };
    }
    if (terminated?.reason === 'OOMKilled') {
      return { kind: 'failed', pod: podName, code: 'oom_killed', message: `the container ran out of memory (OOMKilled, exit code ${exitCode ?? 'unknown'})`, exitCode, retryable: true, deleteJob: false };
    }
    const why = [terminated?.reason && terminated.reason !== 'Error' ? terminated.reason : undefined, terminated?.message, podReason, pod?.status?.message].filter(Boolean).join(': ');
    const message = exitCode === null ? `the pod failed${why ? `: ${why}` : ''}` : `exited with code ${exitCode}${why ? ` (${why})` : ''}`;
    return { kind: 'failed', pod: podName, code: 'exit_code', message, exitCode, retryable: true, deleteJob: false };
  }
  // The pod may be gone (evicted and collected) while the Job says how it ended.
  if (condition(job.status?.conditions, 'Complete')) return { kind: 'succeeded', pod: podName };
  if (jobFailed) {
    const deadline = jobFailed.reason === 'DeadlineExceeded';
    return {
      kind: 'failed',
      pod: podName,
      code: deadline ? 'deadline_exceeded' : 'job_failed',
      message: `the Job failed: ${jobFailed.reason ?? 'no reason'}${jobFailed.message ? `: ${jobFailed.message}` : ''}`,
      exitCode: terminated?.exitCode ?? null,
      retryable: true,
      deleteJob: false,
    };
  }
  if (phase === 'Running' || phase === 'Unknown') return { kind: 'running', pod: podName! };

  // Pending (or no pod yet): fail at once on what cannot get better, else wait up to the start timeout.
  const waiting = container?.state?.waiting;
  if (waiting?.reason && IMAGE_FAILURES.has(waiting.reason)) {
    return {
      kind: 'failed',
      pod: podName,
      code: 'image_pull_failed',
      message: `the image could not be pulled: ${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}`,
      exitCode: null,
      retryable: waiting.reason !== 'InvalidImageName',
      deleteJob: true,
    };
  }
  if (waiting?.reason && CONFIG_FAILURES.has(waiting.reason)) {
    return { kind: 'failed', pod: podName, code: 'container_config_error', message: `the container could not be created: ${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}`, exitCode: null, retryable: true, deleteJob: true };
  }
  const scheduled = pod?.status?.conditions?.find((c) => c.type === 'PodScheduled');
  const unschedulable = scheduled?.status === 'False' && scheduled.reason === 'Unschedulable';
  if (pendingForMs > startTimeoutMs) {
    const secs = Math.round(startTimeoutMs / 1000);
    if (unschedulable) {
      return { kind: 'failed', pod: podName, code: 'unschedulable', message: `no node could take the pod within ${secs} s: ${scheduled?.message ?? 'Unschedulable'}`, exitCode: null, retryable: true, deleteJob: true };
    }
    const what = pod ? `the pod stayed Pending${waiting?.reason ? ` (${waiting.reason})` : ''}` : 'no pod was created for the Job';
    return { kind: 'failed', pod: podName, code: 'start_timeout', message: `${what} for more than ${secs} s (KUBE_START_TIMEOUT_MS)`, exitCode: null, retryable: true, deleteJob: true };
  }
  const note = !pod ? 'waiting for the Job to create its pod' : unschedulable ? `unschedulable: ${scheduled?.message ?? ''}` : `pending${waiting?.reason ? ` (${waiting.reason})` : ''}`;
  return { kind: 'pending', pod: podName, note };
}
