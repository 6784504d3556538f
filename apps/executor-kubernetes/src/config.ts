import { existsSync, readFileSync } from 'node:fs';
import { ConfigError, loadConfig } from '@blixard/config';

const KUBE_KEYS = [
  'kubeNamespace', 'kubeApiUrl', 'kubeToken', 'kubeInsecureSkipTlsVerify',
  'kubeJobTtlSeconds', 'kubePollIntervalMs', 'kubeStartTimeoutMs', 'kubeJobServiceAccount',
] as const;

/** Where the in-cluster service account's namespace is mounted. */
const IN_CLUSTER_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

/** How the executor reaches the cluster and shapes its Jobs (the `KUBE_*` variables). */
export interface KubeSettings {
  namespace: string;
  /** Set: talk to this API server with `token`. Unset: KUBECONFIG, ~/.kube/config or in-cluster. */
  apiUrl: string | null;
  token: string | null;
  insecureSkipTlsVerify: boolean;
  jobTtlSeconds: number;
  pollIntervalMs: number;
  startTimeoutMs: number;
  jobServiceAccount: string | null;
}

// RFC 1123 label: what Kubernetes accepts as a namespace or service account name.
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** Reads and checks the `KUBE_*` variables; throws one ConfigError naming every bad one. */
export function loadKubeSettings(env: Record<string, string | undefined> = process.env, namespaceFile = IN_CLUSTER_NAMESPACE_FILE): KubeSettings {
  const c = loadConfig(KUBE_KEYS, env);
  const problems: string[] = [];
  const namespace = c.kubeNamespace || (existsSync(namespaceFile) ? readFileSync(namespaceFile, 'utf8').trim() : 'default');
  if (!DNS_LABEL.test(namespace)) problems.push(`KUBE_NAMESPACE=${JSON.stringify(namespace)} is not a namespace name (lower-case letters, digits, -)`);
  if (c.kubeApiUrl) {
    let url: URL | undefined;
    try {
      url = new URL(c.kubeApiUrl);
    } catch {
      problems.push(`KUBE_API_URL=${JSON.stringify(c.kubeApiUrl)} is not a URL`);
    }
    if (url && url.protocol !== 'http:' && url.protocol !== 'https:') problems.push(`KUBE_API_URL=${JSON.stringify(c.kubeApiUrl)} must be http(s)`);
  } else if (c.kubeToken) {
    problems.push('KUBE_TOKEN is set without KUBE_API_URL (a kubeconfig carries its own credentials)');
  }
  if (c.kubeJobServiceAccount && !DNS_SUBDOMAIN.test(c.kubeJobServiceAccount)) {
    problems.push(`KUBE_JOB_SERVICE_ACCOUNT=${JSON.stringify(c.kubeJobServiceAccount)} is not a service account name`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    namespace,
    apiUrl: c.kubeApiUrl || null,
    token: c.kubeToken || null,
    insecureSkipTlsVerify: c.kubeInsecureSkipTlsVerify,
    jobTtlSeconds: c.kubeJobTtlSeconds,
    pollIntervalMs: c.kubePollIntervalMs,
    startTimeoutMs: c.kubeStartTimeoutMs,
    jobServiceAccount: c.kubeJobServiceAccount || null,
  };
}
