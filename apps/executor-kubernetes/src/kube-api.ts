/**
 * The handful of Kubernetes API calls the backend makes, behind one small interface: the real
 * implementation (client-node-api.ts) loads @kubernetes/client-node, which is ESM-only, at run
 * time; anything else (a test double) implements the same six calls.
 *
 * Only the fields the backend reads are typed here; objects from the API carry many more.
 */

export interface KubeObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** RFC 3339 from the wire; @kubernetes/client-node turns it into a Date. */
  creationTimestamp?: Date | string;
  deletionTimestamp?: Date | string;
}

export interface KubeCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

export interface KubeJob {
  apiVersion?: string;
  kind?: string;
  metadata?: KubeObjectMeta;
  spec?: Record<string, unknown>;
  status?: {
    active?: number;
    succeeded?: number;
    failed?: number;
    startTime?: Date | string;
    completionTime?: Date | string;
    conditions?: KubeCondition[];
  };
}

export interface KubeContainerState {
  waiting?: { reason?: string; message?: string };
  running?: { startedAt?: Date | string };
  terminated?: { exitCode: number; reason?: string; message?: string; signal?: number };
}

export interface KubeContainerStatus {
  name: string;
  state?: KubeContainerState;
  lastState?: KubeContainerState;
}

export interface KubePod {
  metadata?: KubeObjectMeta;
  status?: {
    phase?: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown' | string;
    reason?: string;
    message?: string;
    startTime?: Date | string;
    conditions?: KubeCondition[];
    containerStatuses?: KubeContainerStatus[];
  };
}

export interface KubeApi {
  /** Creates the Job; throws KubeApiError 409 when one of that name exists. */
  createJob(namespace: string, job: KubeJob): Promise<KubeJob>;
  /** The Job, or null when it does not exist (deleted, or collected after its TTL). */
  getJob(namespace: string, name: string): Promise<KubeJob | null>;
  /** Deletes the Job and (in the background) its pods; a Job already gone is not an error. */
  deleteJob(namespace: string, name: string): Promise<void>;
  listJobs(namespace: string, labelSelector: string): Promise<KubeJob[]>;
  listPods(namespace: string, labelSelector: string): Promise<KubePod[]>;
  /** The last `tailLines` lines of the container's log (stdout and stderr interleaved). */
  readPodLog(namespace: string, pod: string, container: string, tailLines: number): Promise<string>;
}

/** What the API answered when it refused a call. `status` 0: no answer (network, TLS). */
export class KubeApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** The `reason` of the API's Status object (AlreadyExists, NotFound, Invalid, Forbidden...). */
    readonly reason?: string,
  ) {
    super(message);
    this.name = 'KubeApiError';
  }
}

/**
 * Every permission the calls above need, one entry per call. The Role in
 * k8s/base/executor-kubernetes.yaml grants exactly these (a test keeps the two equal).
 */
export const KUBE_API_PERMISSIONS = [
  { call: 'createJob', apiGroup: 'batch', resource: 'jobs', verb: 'create' },
  { call: 'getJob', apiGroup: 'batch', resource: 'jobs', verb: 'get' },
  { call: 'deleteJob', apiGroup: 'batch', resource: 'jobs', verb: 'delete' },
  { call: 'listJobs', apiGroup: 'batch', resource: 'jobs', verb: 'list' },
  { call: 'listPods', apiGroup: '', resource: 'pods', verb: 'list' },
  { call: 'readPodLog', apiGroup: '', resource: 'pods/log', verb: 'get' },
] as const satisfies readonly { call: keyof KubeApi; apiGroup: string; resource: string; verb: string }[];

/** A timestamp from the API (a Date from client-node, a string from plain JSON) in epoch ms. */
export function timeOf(t: Date | string | undefined): number | undefined {
  if (t === undefined || t === null) return undefined;
  const ms = t instanceof Date ? t.getTime() : Date.parse(t);
  return Number.isFinite(ms) ? ms : undefined;
}
