import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Service, ServiceAccount } from 'kubernetes-models/v1';
import { Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { subjects } from '@blixard/contracts';
import { KUBE_API_PERMISSIONS } from './kube-api';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = any;

const file = path.resolve(__dirname, '../../../k8s/base/executor-kubernetes.yaml');
const docs: Doc[] = parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJSON());
const byKind = (kind: string): Doc => {
  const found = docs.filter((d) => d.kind === kind);
  expect(found).toHaveLength(1);
  return found[0];
};

describe('k8s/base/executor-kubernetes.yaml', () => {
  it('holds a valid ServiceAccount, Role, RoleBinding, Deployment, Service and KEDA ScaledObject', () => {
    expect(docs.map((d) => d.kind).sort()).toEqual(['Deployment', 'Role', 'RoleBinding', 'ScaledObject', 'Service', 'ServiceAccount']);
    new ServiceAccount(byKind('ServiceAccount')).validate();
    new Role(byKind('Role')).validate();
    new RoleBinding(byKind('RoleBinding')).validate();
    new Deployment(byKind('Deployment')).validate();
    new Service(byKind('Service')).validate();
    new ScaledObject(byKind('ScaledObject')).validate();
  });

  it('grants the executor exactly the verbs its Kubernetes calls use, no more', () => {
    const granted = new Set<string>();
    for (const rule of byKind('Role').rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[]) {
      for (const g of rule.apiGroups) for (const r of rule.resources) for (const v of rule.verbs) granted.add(`${g}|${r}|${v}`);
    }
    const used = new Set(KUBE_API_PERMISSIONS.map((p) => `${p.apiGroup}|${p.resource}|${p.verb}`));
    expect([...granted].sort()).toEqual([...used].sort());
    expect([...granted].some((g) => g.includes('*'))).toBe(false);
  });

  it('binds that Role to the account the Deployment runs as, which gets its token', () => {
    const sa = byKind('ServiceAccount').metadata.name;
    const binding = byKind('RoleBinding');
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: byKind('Role').metadata.name });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: sa }]);
    const pod = byKind('Deployment').spec.template.spec;
    expect(pod.serviceAccountName).toBe(sa);
    expect(pod.automountServiceAccountToken).toBe(true);
  });

  it('gives each pod a stable worker id (its name) and runs Jobs in its own namespace', () => {
    const env = byKind('Deployment').spec.template.spec.containers[0].env as Doc[];
    expect(env).toContainEqual({ name: 'EXECUTOR_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } });
    expect(env).toContainEqual({ name: 'KUBE_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } });
  });

  it('scales the Deployment on the lag of the kubernetes backend\'s own consumer', () => {
    const so = byKind('ScaledObject');
    const s = subjects('blixard');
    expect(so.spec.scaleTargetRef.name).toBe(byKind('Deployment').metadata.name);
    expect(so.spec.triggers[0].metadata).toMatchObject({ stream: s.streams.dispatch, consumer: s.consumers.executor('kubernetes') });
    expect(byKind('Deployment').spec.replicas).toBeUndefined();
  });
});
