import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Service } from 'kubernetes-models/v1';
import { subjects } from '@blixard/contracts';
import { DockerBackend } from './docker-backend';
import { loadDockerSettings } from './docker-config';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = any;

const file = path.resolve(__dirname, '../../../k8s/base/executor-docker.yaml');
const docs: Doc[] = parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJSON());
const byKind = (kind: string): Doc => {
  const found = docs.filter((d) => d.kind === kind);
  expect(found).toHaveLength(1);
  return found[0];
};
const pod = (): Doc => byKind('Deployment').spec.template.spec;
const container = (): Doc => pod().containers[0];
const env = (): Record<string, string> =>
  Object.fromEntries((container().env as { name: string; value?: string }[]).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));

describe('k8s/base/executor-docker.yaml', () => {
  it('holds a valid Deployment, Service and KEDA ScaledObject', () => {
    expect(docs.map((d) => d.kind).sort()).toEqual(['Deployment', 'ScaledObject', 'Service']);
    new Deployment(byKind('Deployment')).validate();
    new Service(byKind('Service')).validate();
    new ScaledObject(byKind('ScaledObject')).validate();
  });

  it('configures the backend with settings it accepts', () => {
    const settings = loadDockerSettings(env());
    expect(settings).toEqual({ socketPath: '/var/run/docker.sock', networks: ['none', 'bridge'], scratchDir: '/var/lib/blixard/docker-scratch' });
  });

  it('mounts the node engine socket, and the scratch directory at the same path as on the node', () => {
    const volumes = Object.fromEntries((pod().volumes as Doc[]).map((v) => [v.name, v]));
    const mounts = Object.fromEntries((container().volumeMounts as Doc[]).map((m) => [m.name, m.mountPath]));
    const settings = loadDockerSettings(env());
    expect(volumes['docker-socket'].hostPath).toEqual({ path: '/var/run/docker.sock', type: 'Socket' });
    expect(mounts['docker-socket']).toBe(settings.socketPath);
    expect(volumes.scratch.hostPath.path).toBe(settings.scratchDir);
    expect(mounts.scratch).toBe(settings.scratchDir);
  });

  it('gives each pod a stable worker id (its name), so a restarted executor adopts the containers it left', () => {
    const id = (container().env as Doc[]).find((e) => e.name === 'EXECUTOR_ID');
    expect(id.valueFrom.fieldRef.fieldPath).toBe('metadata.name');
  });

  it("scales the Deployment on the lag of the docker backend's own consumer", () => {
    const so = byKind('ScaledObject');
    const s = subjects('blixard');
    const name = new DockerBackend(loadDockerSettings({})).name;
    expect(so.spec.scaleTargetRef.name).toBe(byKind('Deployment').metadata.name);
    expect(so.spec.triggers[0].metadata).toMatchObject({ stream: s.streams.dispatch, consumer: s.consumers.executor(name) });
    expect(byKind('Deployment').spec.replicas).toBeUndefined();
  });
});
