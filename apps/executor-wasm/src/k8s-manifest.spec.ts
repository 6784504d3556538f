import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Service } from 'kubernetes-models/v1';
import { subjects } from '@blixard/contracts';
import { WasmBackend } from './wasm-backend';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = any;

const file = path.resolve(__dirname, '../../../k8s/base/executor-wasm.yaml');
const docs: Doc[] = parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJSON());
const byKind = (kind: string): Doc => {
  const found = docs.filter((d) => d.kind === kind);
  expect(found).toHaveLength(1);
  return found[0];
};
const container = (): Doc => byKind('Deployment').spec.template.spec.containers[0];

describe('k8s/base/executor-wasm.yaml', () => {
  it('holds a valid Deployment, Service and KEDA ScaledObject', () => {
    expect(docs.map((d) => d.kind).sort()).toEqual(['Deployment', 'ScaledObject', 'Service']);
    new Deployment(byKind('Deployment')).validate();
    new Service(byKind('Service')).validate();
    new ScaledObject(byKind('ScaledObject')).validate();
  });

  it('configures the backend with values it accepts, with modules and scratch on their own volumes', () => {
    const env = Object.fromEntries((container().env as { name: string; value: string }[]).map((e) => [e.name, e.value]));
    const backend = WasmBackend.fromEnv(env);
    expect(backend.capabilities().features).toContain('module-dir');
    const mounts = Object.fromEntries((container().volumeMounts as { name: string; mountPath: string }[]).map((m) => [m.mountPath, m.name]));
    expect(mounts[env.WASM_MODULE_DIR!]).toBe('modules');
    expect(mounts[env.WASM_SCRATCH_DIR!]).toBe('scratch');
  });

  it('scales the Deployment on the lag of the wasm backend\'s own consumer', () => {
    const so = byKind('ScaledObject');
    const s = subjects('blixard');
    expect(so.spec.scaleTargetRef.name).toBe(byKind('Deployment').metadata.name);
    expect(so.spec.triggers[0].metadata).toMatchObject({ stream: s.streams.dispatch, consumer: s.consumers.executor(new WasmBackend().name) });
    expect(byKind('Deployment').spec.replicas).toBeUndefined();
  });
});
