import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { configMapHash, K8sObject, kustomizeBuild } from './kustomize';

/**
 * The renderer against outputs of kustomize 5.5 (`kubectl kustomize`, recorded once from a real
 * binary): CI has no kustomize, so what the deploy test renders rests on these.
 */
describe('kustomizeBuild', () => {
  let dir: string;
  const write = (file: string, text: string) => {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    writeFileSync(path.join(dir, file), text);
  };

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'kustomize-spec-'));
    write('base/kustomization.yaml', `
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: ns1
labels:
  - pairs: { team: a }
    includeTemplates: true
resources:
  - app.yaml
configMapGenerator:
  - name: cfg
    literals:
      - A=1
      - B="x<y&z>"
images:
  - name: repo/app
    newTag: v1
`);
    write('base/app.yaml', `
apiVersion: apps/v1
kind: Deployment
metadata: { name: app }
spec:
  selector: { matchLabels: { app: app } }
  template:
    metadata: { labels: { app: app } }
    spec:
      containers:
        - name: app
          image: repo/app
          envFrom: [{ configMapRef: { name: cfg } }]
          resources: { limits: { cpu: "1" } }
        - name: side
          image: other/side:1
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: sa }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: rb }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: r }
subjects: [{ kind: ServiceAccount, name: sa }]
---
apiVersion: v1
kind: Secret
metadata: { name: gone }
stringData: { K: v }
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: { name: app }
spec:
  scaleTargetRef: { name: app }
  triggers: [{ type: cpu, metadata: { value: "50" } }]
`);
    write('overlay/kustomization.yaml', `
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [../base]
replicas: [{ name: app, count: 3 }]
configMapGenerator:
  - name: cfg
    behavior: merge
    literals: [B=2]
images:
  - { name: repo/app, newName: reg.example/app, newTag: v2 }
patches:
  - patch: |-
      apiVersion: apps/v1
      kind: Deployment
      metadata: { name: app }
      spec:
        template:
          spec:
            containers:
              - name: app
                resources: { requests: { cpu: 100m } }
  - patch: |-
      $patch: delete
      apiVersion: v1
      kind: Secret
      metadata: { name: gone }
  - target: { group: keda.sh, kind: ScaledObject }
    patch: |-
      - op: add
        path: /spec/triggers/-
        value: { type: memory, metadata: { value: "60" } }
`);
  });

  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const byKind = (objects: K8sObject[], kind: string) => objects.find((o) => o.kind === kind)!;

  it("hashes a generated ConfigMap's name as kustomize does, and renames its references", () => {
    expect(configMapHash({ A: '1' })).toBe('89g4tffbfk');
    const base = kustomizeBuild(path.join(dir, 'base'));
    expect(byKind(base, 'ConfigMap').metadata.name).toBe('cfg-mg826695md'); // Go escapes <, &, >
    expect((byKind(base, 'Deployment').spec as any).template.spec.containers[0].envFrom[0].configMapRef.name).toBe('cfg-mg826695md');
  });

  it('renders an overlay exactly as kustomize 5.5: merge, replicas, images, strategic and JSON patches, namespace, labels', () => {
    const objects = kustomizeBuild(path.join(dir, 'overlay'));
    const label = { team: 'a' };
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(['ConfigMap/cfg-66h9cbh964', 'Deployment/app', 'RoleBinding/rb', 'ScaledObject/app', 'ServiceAccount/sa']);
    expect(byKind(objects, 'ConfigMap')).toEqual({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cfg-66h9cbh964', namespace: 'ns1', labels: label }, data: { A: '1', B: '2' } });
    expect(byKind(objects, 'Deployment')).toEqual({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'app', namespace: 'ns1', labels: label },
      spec: {
        replicas: 3,
        selector: { matchLabels: { app: 'app' } },
        template: {
          metadata: { labels: { app: 'app', team: 'a' } },
          spec: {
            containers: [
              { name: 'app', image: 'reg.example/app:v2', envFrom: [{ configMapRef: { name: 'cfg-66h9cbh964' } }], resources: { limits: { cpu: '1' }, requests: { cpu: '100m' } } },
              { name: 'side', image: 'other/side:1' },
            ],
          },
        },
      },
    });
    expect((byKind(objects, 'RoleBinding') as any).subjects).toEqual([{ kind: 'ServiceAccount', name: 'sa', namespace: 'ns1' }]);
    expect((byKind(objects, 'ScaledObject').spec as any).triggers).toEqual([{ type: 'cpu', metadata: { value: '50' } }, { type: 'memory', metadata: { value: '60' } }]);
  });

  it('refuses what it does not implement, and patches that match nothing', () => {
    write('odd/kustomization.yaml', 'resources: [../base]\nnamePrefix: x-\n');
    expect(() => kustomizeBuild(path.join(dir, 'odd'))).toThrow(/field "namePrefix" is not supported/);
    write('miss/kustomization.yaml', 'resources: [../base]\npatches:\n  - patch: |-\n      apiVersion: apps/v1\n      kind: Deployment\n      metadata: { name: nope }\n      spec: { replicas: 2 }\n');
    expect(() => kustomizeBuild(path.join(dir, 'miss'))).toThrow(/matches nothing/);
  });
});
