import type { KubeSettings } from './config';
import { KubeApi, KubeApiError, KubeJob, KubePod } from './kube-api';

/**
 * KubeApi over @kubernetes/client-node (1.4.0). The library is ESM-only and this app is CommonJS:
 * it is loaded with a dynamic `import()` when the executor starts (Node 20.19+).
 *
 * Credentials: KUBE_API_URL (+ KUBE_TOKEN) when set; otherwise the library's defaults, in order
 * KUBECONFIG, ~/.kube/config, the in-cluster service account.
 */
export async function createClientNodeApi(settings: KubeSettings): Promise<KubeApi> {
  const k8s = await import('@kubernetes/client-node');
  const kc = new k8s.KubeConfig();
  if (settings.apiUrl) {
    // The library refuses http:// unless told to skip TLS checks; there is no TLS to check there
    // (`kubectl proxy`, a local API server).
    const plainHttp = settings.apiUrl.startsWith('http:');
    kc.loadFromClusterAndUser(
      { name: 'blixard', server: settings.apiUrl, skipTLSVerify: plainHttp || settings.insecureSkipTlsVerify },
      { name: 'blixard', ...(settings.token ? { token: settings.token } : {}) },
    );
  } else {
    kc.loadFromDefault();
  }
  const batch = kc.makeApiClient(k8s.BatchV1Api);
  const core = kc.makeApiClient(k8s.CoreV1Api);

  // The library's objects are class instances with the API's field names: structurally ours.
  return {
    createJob: (namespace, job) => call(() => batch.createNamespacedJob({ namespace, body: job as never })) as Promise<KubeJob>,
    async getJob(namespace, name) {
      try {
        return (await call(() => batch.readNamespacedJob({ namespace, name }))) as KubeJob;
      } catch (err) {
        if (err instanceof KubeApiError && err.status === 404) return null;
        throw err;
      }
    },
    async deleteJob(namespace, name) {
      try {
        // Background: the Job goes at once, the garbage collector then deletes its pods.
        await call(() => batch.deleteNamespacedJob({ namespace, name, propagationPolicy: 'Background' }));
      } catch (err) {
        if (err instanceof KubeApiError && err.status === 404) return;
        throw err;
      }
    },
    listJobs: async (namespace, labelSelector) => ((await call(() => batch.listNamespacedJob({ namespace, labelSelector }))).items ?? []) as KubeJob[],
    listPods: async (namespace, labelSelector) => ((await call(() => core.listNamespacedPod({ namespace, labelSelector }))).items ?? []) as KubePod[],
    readPodLog: (namespace, pod, container, tailLines) => call(() => core.readNamespacedPodLog({ namespace, name: pod, container, tailLines })),
  };
}

/** Runs one call, turning the library's ApiException (and network errors) into KubeApiError. */
async function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toKubeApiError(err);
  }
}

export function toKubeApiError(err: unknown): KubeApiError {
  if (err instanceof KubeApiError) return err;
  const e = err as { code?: unknown; body?: unknown; message?: string };
  if (typeof e?.code === 'number') {
    // The body is the API's Status object, as JSON text or already parsed.
    let status: { message?: string; reason?: string } = {};
    if (typeof e.body === 'string') {
      try {
        status = JSON.parse(e.body) as typeof status;
      } catch {
        status = { message: e.body };
      }
    } else if (e.body && typeof e.body === 'object') status = e.body as typeof status;
    return new KubeApiError(e.code, `Kubernetes API ${e.code}${status.reason ? ` ${status.reason}` : ''}: ${status.message ?? 'no message'}`, status.reason);
  }
  return new KubeApiError(0, `Kubernetes API unreachable: ${e?.message ?? String(err)}`);
}
