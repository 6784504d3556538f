import { createHash } from 'node:crypto';
import { ExecutionJob, PayloadError } from '@blixard/executor-sdk';
import type { KubeJob } from './kube-api';
import { isQualifiedKey, KubernetesPayload, LABEL_VALUE } from './payload';

/**
 * The `batch/v1` Job one attempt runs as. Blixard owns retries (`backoffLimit: 0`, `restartPolicy:
 * Never`); the Job carries labels that find it again after an executor restart, and cleans itself
 * up (`ttlSecondsAfterFinished`) without an owner.
 */

export const LABELS = {
  managedBy: 'app.kubernetes.io/managed-by',
  jobId: 'blixard.io/job-id',
  attempt: 'blixard.io/attempt',
  /** The worker id, or a hash of it when it is not a valid label value (see workerLabelValue). */
  worker: 'blixard.io/worker',
} as const;
export const MANAGED_BY = 'blixard';

export const ANNOTATIONS = {
  workerId: 'blixard.io/worker-id',
  startedAt: 'blixard.io/started-at',
  timeoutMs: 'blixard.io/timeout-ms',
  queue: 'blixard.io/queue',
} as const;

/** The container's name in every Job (its log is read by this name). */
export const CONTAINER = 'job';

/** Job labels with these prefixes become the pod's node selector and tolerations. */
export const NODE_SELECTOR_LABEL_PREFIX = 'node/';
export const TOLERATION_LABEL_PREFIX = 'tolerate/';

/** Parents' results reach the container as BLIXARD_PARENTS (JSON); larger ones do not fit a pod spec well. */
export const MAX_PARENTS_BYTES = 32_768;

/** One name per attempt: a redelivered dispatch or a restarted executor finds the same Job (409 on create). */
export function jobName(jobId: string, attempt: number): string {
  return `blixard-${jobId.toLowerCase()}-${attempt}`;
}

/** A worker id as a label value: itself when it fits (≤ 63, alphanumeric ends), else `h-` + a hash. */
export function workerLabelValue(workerId: string): string {
  return workerId.length <= 63 && LABEL_VALUE.test(workerId) ? workerId : `h-${createHash('sha256').update(workerId).digest('hex').slice(0, 40)}`;
}

/** Selects every Job this worker started (after a restart with the same EXECUTOR_ID). */
export function workerSelector(workerId: string): string {
  return `${LABELS.managedBy}=${MANAGED_BY},${LABELS.worker}=${workerLabelValue(workerId)}`;
}

/** Selects the pods of one attempt's Job (by our own labels, not the controller's). */
export function attemptSelector(jobId: string, attempt: number): string {
  return `${LABELS.jobId}=${jobId.toLowerCase()},${LABELS.attempt}=${attempt}`;
}

export interface ManifestOptions {
  namespace: string;
  workerId: string;
  ttlSecondsAfterFinished: number;
  serviceAccountName: string | null;
  startedAt: Date;
}

type Toleration = NonNullable<KubernetesPayload['tolerations']>[number];

/**
 * Node selector and tolerations from the job's labels: `node/<key>=<value>` selects nodes labelled
 * `<key>=<value>`; `tolerate/<key>=<value>` tolerates a taint `<key>=<value>` (an empty value:
 * any taint with that key). The payload's own entries win over the labels'.
 */
export function placementFromLabels(labels: Record<string, string>): { nodeSelector: Record<string, string>; tolerations: Toleration[] } {
  const nodeSelector: Record<string, string> = {};
  const tolerations: Toleration[] = [];
  for (const [label, value] of Object.entries(labels)) {
    if (label.startsWith(NODE_SELECTOR_LABEL_PREFIX)) {
      const key = label.slice(NODE_SELECTOR_LABEL_PREFIX.length);
      if (!isQualifiedKey(key)) throw new PayloadError(`labels.${label}: "${key}" is not a node label key`);
      if (!LABEL_VALUE.test(value) || value.length > 63) throw new PayloadError(`labels.${label}: ${JSON.stringify(value)} is not a node label value`);
      nodeSelector[key] = value;
    } else if (label.startsWith(TOLERATION_LABEL_PREFIX)) {
      const key = label.slice(TOLERATION_LABEL_PREFIX.length);
      if (!isQualifiedKey(key)) throw new PayloadError(`labels.${label}: "${key}" is not a taint key`);
      if (!LABEL_VALUE.test(value) || value.length > 63) throw new PayloadError(`labels.${label}: ${JSON.stringify(value)} is not a taint value`);
      tolerations.push(value === '' ? { key, operator: 'Exists' } : { key, operator: 'Equal', value });
    }
  }
  return { nodeSelector, tolerations };
}

/**
 * Requests and limits: the payload's, completed from the job's scheduler-level `resources`
 * (`cpuMillis`, `memoryMb`, `gpu`) when the dispatch carries them. Requesting `nvidia.com/gpu`
 * also tolerates the `nvidia.com/gpu` taint GPU node pools carry.
 */
export function containerResources(
  payload: KubernetesPayload['resources'],
  jobResources: Record<string, number> | undefined,
): { resources: { requests?: Record<string, string>; limits?: Record<string, string> }; tolerations: Toleration[] } {
  const requests: Record<string, string> = { ...(payload?.requests ?? {}) };
  const limits: Record<string, string> = { ...(payload?.limits ?? {}) };
  const r = jobResources ?? {};
  if (r.cpuMillis && requests.cpu === undefined) requests.cpu = `${Math.ceil(r.cpuMillis)}m`;
  if (r.memoryMb && requests.memory === undefined) requests.memory = `${Math.ceil(r.memoryMb)}Mi`;
  // Extended resources such as GPUs are set as limits (a request must then equal it).
  if (r.gpu && limits['nvidia.com/gpu'] === undefined && requests['nvidia.com/gpu'] === undefined) limits['nvidia.com/gpu'] = String(Math.ceil(r.gpu));
  const gpu = limits['nvidia.com/gpu'] ?? requests['nvidia.com/gpu'];
  const tolerations: Toleration[] = gpu !== undefined && Number(gpu) > 0 ? [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }] : [];
  return {
    resources: {
      ...(Object.keys(requests).length > 0 ? { requests } : {}),
      ...(Object.keys(limits).length > 0 ? { limits } : {}),
    },
    tolerations,
  };
}

function sameToleration(a: Toleration, b: Toleration): boolean {
  return a.key === b.key && (a.operator ?? 'Equal') === (b.operator ?? 'Equal') && a.value === b.value && a.effect === b.effect;
}

/** The Job for attempt `job.attempt`. Throws PayloadError when the job's labels cannot be placed. */
export function buildJobManifest(job: ExecutionJob<KubernetesPayload> & { resources?: Record<string, number> }, o: ManifestOptions): KubeJob {
  const p = job.payload;
  const name = jobName(job.id, job.attempt);
  const labels = {
    [LABELS.managedBy]: MANAGED_BY,
    [LABELS.jobId]: job.id.toLowerCase(),
    [LABELS.attempt]: String(job.attempt),
    [LABELS.worker]: workerLabelValue(o.workerId),
  };
  const annotations: Record<string, string> = {
    [ANNOTATIONS.workerId]: o.workerId,
    [ANNOTATIONS.startedAt]: o.startedAt.toISOString(),
    [ANNOTATIONS.queue]: job.queue,
  };
  if (job.timeoutMs !== null) annotations[ANNOTATIONS.timeoutMs] = String(job.timeoutMs);

  const fromLabels = placementFromLabels(job.labels);
  const { resources, tolerations: resourceTolerations } = containerResources(p.resources, job.resources);
  const nodeSelector = { ...fromLabels.nodeSelector, ...(p.nodeSelector ?? {}) };
  const tolerations: Toleration[] = [];
  for (const t of [...(p.tolerations ?? []), ...fromLabels.tolerations, ...resourceTolerations]) {
    if (!tolerations.some((x) => sameToleration(x, t))) tolerations.push(t);
  }

  // The job learns who it is (at-least-once: it should key its side effects by these).
  const env: Record<string, string> = { BLIXARD_JOB_ID: job.id, BLIXARD_ATTEMPT: String(job.attempt) };
  if (job.parents.length > 0) {
    const parents = JSON.stringify(job.parents);
    if (Buffer.byteLength(parents) > MAX_PARENTS_BYTES) {
      throw new PayloadError(`the parents' results are ${Buffer.byteLength(parents)} bytes; at most ${MAX_PARENTS_BYTES} reach a kubernetes job (BLIXARD_PARENTS)`);
    }
    env.BLIXARD_PARENTS = parents;
  }
  Object.assign(env, p.env);

  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, namespace: o.namespace, labels, annotations },
    spec: {
      // Blixard owns retries: a failed pod is a failed attempt.
      backoffLimit: 0,
      ...(job.timeoutMs !== null ? { activeDeadlineSeconds: Math.max(1, Math.ceil(job.timeoutMs / 1000)) } : {}),
      ttlSecondsAfterFinished: o.ttlSecondsAfterFinished,
      template: {
        metadata: { labels, annotations: { [ANNOTATIONS.workerId]: o.workerId } },
        spec: {
          restartPolicy: 'Never',
          enableServiceLinks: false,
          ...(o.serviceAccountName
            ? { serviceAccountName: o.serviceAccountName }
            : { automountServiceAccountToken: false }),
          ...(Object.keys(nodeSelector).length > 0 ? { nodeSelector } : {}),
          ...(tolerations.length > 0 ? { tolerations } : {}),
          containers: [
            {
              name: CONTAINER,
              image: p.image,
              ...(p.command ? { command: p.command } : {}),
              ...(p.args ? { args: p.args } : {}),
              ...(p.workingDir ? { workingDir: p.workingDir } : {}),
              ...(p.imagePullPolicy ? { imagePullPolicy: p.imagePullPolicy } : {}),
              env: Object.entries(env).map(([k, value]) => ({ name: k, value })),
              ...(Object.keys(resources).length > 0 ? { resources } : {}),
            },
          ],
        },
      },
    },
  };
}
