import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { PolicyRule } from './fake-kube-api';

export const NAMESPACE = 'blixard-jobs';
export const TOKEN = 'test-service-account-token';

/** The rules of the Role the executor is deployed with: the fake API server enforces them. */
export function roleRules(): PolicyRule[] {
  const file = path.resolve(__dirname, '../../../k8s/base/executor-kubernetes.yaml');
  const role = parseAllDocuments(readFileSync(file, 'utf8'))
    .map((d) => d.toJSON() as { kind?: string; rules?: PolicyRule[] })
    .find((d) => d.kind === 'Role');
  if (!role?.rules) throw new Error(`no Role with rules in ${file}`);
  return role.rules;
}

/** What the executor process needs on top of the test infrastructure's environment. */
export function kubeExecutorEnv(base: Record<string, string>, apiUrl: string, workerId: string): Record<string, string> {
  return {
    ...base,
    EXECUTOR_ID: workerId,
    EXECUTOR_CONCURRENCY: '8',
    KUBE_API_URL: apiUrl,
    KUBE_TOKEN: TOKEN,
    KUBE_NAMESPACE: NAMESPACE,
    KUBE_POLL_INTERVAL_MS: '250',
    KUBE_START_TIMEOUT_MS: '1500',
    KUBE_JOB_TTL_SECONDS: '300',
  };
}
