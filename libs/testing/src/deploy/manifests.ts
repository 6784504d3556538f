/**
 * What the deploy tests need to read rendered Kubernetes manifests, Dockerfiles and a compose
 * file: schema validation (kubernetes-models, KEDA's models), the pods' effective environment,
 * a small NetworkPolicy evaluator, a Dockerfile reader, and a probe that runs an app's real
 * entrypoint to learn which variables it reads.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { K8sObject } from './kustomize';

type Map_ = Record<string, unknown>;

// --------------------------------------------------------------------------------------------
// Schema validation

/**
 * Validates `obj` with the model class of its apiVersion/kind: kubernetes-models for the
 * Kubernetes API, @kubernetes-models/keda for KEDA. Throws naming the object and the problem;
 * an apiVersion/kind no model knows is an error too (`extra` may validate such kinds).
 */
export function validateObject(obj: K8sObject, extra: Record<string, (o: K8sObject) => void> = {}): void {
  const id = `${obj.apiVersion} ${obj.kind} ${obj.metadata?.namespace ?? ''}/${obj.metadata?.name}`;
  const custom = extra[`${obj.apiVersion}/${obj.kind}`];
  if (custom) return custom(obj);
  const modulePath = obj.apiVersion.startsWith('keda.sh/') ? `@kubernetes-models/keda/${obj.apiVersion}` : `kubernetes-models/${obj.apiVersion}`;
  let Model: (new (o: unknown) => { validate(): void }) | undefined;
  try {
    Model = (require(modulePath) as Record<string, new (o: unknown) => { validate(): void }>)[obj.kind];
  } catch {
    Model = undefined;
  }
  if (!Model) throw new Error(`${id}: no schema for this apiVersion/kind (kubernetes-models, @kubernetes-models/keda)`);
  try {
    new Model(obj).validate();
  } catch (err) {
    throw new Error(`${id}: ${(err as Error).message}`);
  }
}

// --------------------------------------------------------------------------------------------
// Workloads and their pods

export interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  ports?: { name?: string; containerPort: number; protocol?: string }[];
  env?: { name: string; value?: string; valueFrom?: Map_ }[];
  envFrom?: { configMapRef?: { name: string; optional?: boolean }; secretRef?: { name: string; optional?: boolean }; prefix?: string }[];
  readinessProbe?: Map_;
  livenessProbe?: Map_;
  startupProbe?: Map_;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: Map_;
}

export interface Workload {
  kind: string;
  name: string;
  namespace: string;
  object: K8sObject;
  podLabels: Record<string, string>;
  podSpec: Map_ & { containers: Container[]; initContainers?: Container[]; securityContext?: Map_; serviceAccountName?: string; automountServiceAccountToken?: boolean };
}

const POD_TEMPLATE_KINDS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job']);

export function workloadsOf(objects: K8sObject[]): Workload[] {
  return objects
    .filter((o) => POD_TEMPLATE_KINDS.has(o.kind))
    .map((o) => {
      const template = (o.spec as Map_).template as { metadata?: { labels?: Record<string, string> }; spec: Workload['podSpec'] };
      return { kind: o.kind, name: o.metadata.name, namespace: o.metadata.namespace ?? 'default', object: o, podLabels: template.metadata?.labels ?? {}, podSpec: template.spec };
    });
}

export function find(objects: K8sObject[], kind: string, name: string, namespace?: string): K8sObject | undefined {
  return objects.find((o) => o.kind === kind && o.metadata.name === name && (namespace === undefined || (o.metadata.namespace ?? 'default') === namespace));
}

export function labelsMatch(selector: { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values?: string[] }[] } | undefined, labels: Record<string, string>): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = e.key in labels;
    const value = labels[e.key];
    switch (e.operator) {
      case 'In':
        if (!has || !e.values?.includes(value!)) return false;
        break;
      case 'NotIn':
        if (has && e.values?.includes(value!)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        throw new Error(`label selector operator ${e.operator} is not supported`);
    }
  }
  return true;
}

export interface ResolvedEnv {
  /** Every variable the container gets from the manifests, with its value. */
  env: Record<string, string>;
  /** Problems: references to ConfigMaps, Secrets or keys that are not there. */
  problems: string[];
}

/**
 * The environment a container gets from its manifests: envFrom ConfigMaps and Secrets, then
 * `env` (later wins, as in Kubernetes). Secrets missing from `objects` are looked up in
 * `outOfBand` (Secrets the README has users create themselves, e.g. in production).
 * `fieldRef`s resolve to what the pod would see (`metadata.name` gets a pod-like name).
 */
export function resolveContainerEnv(w: Workload, c: Container, objects: K8sObject[], outOfBand: K8sObject[] = []): ResolvedEnv {
  const env: Record<string, string> = {};
  const problems: string[] = [];
  const dataOf = (kind: 'ConfigMap' | 'Secret', name: string, optional: boolean | undefined): Record<string, string> | undefined => {
    const o = find(objects, kind, name, w.namespace) ?? (kind === 'Secret' ? find(outOfBand, kind, name) : undefined);
    if (!o) {
      if (!optional) problems.push(`${w.kind}/${w.name} container ${c.name}: ${kind} ${name} does not exist`);
      return undefined;
    }
    if (kind === 'ConfigMap') return (o.data as Record<string, string>) ?? {};
    const decoded = Object.fromEntries(Object.entries((o.data as Record<string, string>) ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
    return { ...decoded, ...((o.stringData as Record<string, string>) ?? {}) };
  };
  for (const from of c.envFrom ?? []) {
    const ref = from.configMapRef ? (['ConfigMap', from.configMapRef] as const) : from.secretRef ? (['Secret', from.secretRef] as const) : undefined;
    if (!ref) {
      problems.push(`${w.kind}/${w.name} container ${c.name}: envFrom entry without configMapRef or secretRef`);
      continue;
    }
    for (const [k, v] of Object.entries(dataOf(ref[0], ref[1].name, ref[1].optional) ?? {})) env[`${from.prefix ?? ''}${k}`] = v;
  }
  for (const e of c.env ?? []) {
    if (e.value !== undefined || !e.valueFrom) {
      env[e.name] = e.value ?? '';
      continue;
    }
    const vf = e.valueFrom as { fieldRef?: { fieldPath: string }; configMapKeyRef?: { name: string; key: string; optional?: boolean }; secretKeyRef?: { name: string; key: string; optional?: boolean } };
    if (vf.fieldRef) {
      const field = vf.fieldRef.fieldPath;
      const value = field === 'metadata.name' ? `${w.name}-7d9f8b6c5d-x2x7q` : field === 'metadata.namespace' ? w.namespace : field === 'status.podIP' ? '10.0.0.10' : field === 'spec.nodeName' ? 'node-1' : undefined;
      if (value === undefined) problems.push(`${w.kind}/${w.name}: fieldRef ${field} is not modelled by the test`);
      else env[e.name] = value;
    } else {
      const [kind, ref] = vf.configMapKeyRef ? (['ConfigMap', vf.configMapKeyRef] as const) : (['Secret', vf.secretKeyRef!] as const);
      const data = dataOf(kind, ref.name, ref.optional);
      if (data && !(ref.key in data)) problems.push(`${w.kind}/${w.name}: ${kind} ${ref.name} has no key ${ref.key}`);
      else if (data) env[e.name] = data[ref.key]!;
    }
  }
  return { env, problems };
}

// --------------------------------------------------------------------------------------------
// NetworkPolicies

export interface Peer {
  /** The destination's (or source's) namespace, for in-cluster peers. */
  namespace?: string;
  /** An address outside the pod network (IPv4). */
  ip?: string;
  port: number | string;
  protocol?: 'TCP' | 'UDP';
}

/**
 * Whether traffic from/to the pod with `podLabels` in `namespace` is allowed by the
 * NetworkPolicies in `objects` (Kubernetes semantics: a pod no policy selects for a direction is
 * open; otherwise the union of the rules of every policy selecting it). A peer selected by a
 * podSelector (pods of other apps) never matches here: the tests only ask about namespaces and
 * addresses. Named ports resolve against the pod's own container ports (ingress).
 */
export function networkAllows(objects: K8sObject[], direction: 'Ingress' | 'Egress', pod: { namespace: string; labels: Record<string, string>; ports?: { name?: string; containerPort: number }[] }, peer: Peer): boolean {
  const policies = objects.filter(
    (o) => o.kind === 'NetworkPolicy' && (o.metadata.namespace ?? 'default') === pod.namespace && labelsMatch((o.spec as Map_).podSelector as never, pod.labels) &&
      (((o.spec as Map_).policyTypes as string[] | undefined) ?? ['Ingress']).includes(direction),
  );
  if (policies.length === 0) return true;
  const protocol = peer.protocol ?? 'TCP';
  const podPort = (p: number | string): number | undefined => (typeof p === 'number' ? p : pod.ports?.find((x) => x.name === p)?.containerPort);
  const wanted = typeof peer.port === 'number' ? peer.port : podPort(peer.port);
  for (const np of policies) {
    const rules = ((np.spec as Map_)[direction === 'Ingress' ? 'ingress' : 'egress'] as Map_[] | undefined) ?? [];
    for (const rule of rules) {
      const peers = (rule[direction === 'Ingress' ? 'from' : 'to'] as Map_[] | undefined) ?? [];
      const peerOk = peers.length === 0 || peers.some((p) => peerMatches(p, peer, pod.namespace));
      const ports = (rule.ports as { port?: number | string; protocol?: string; endPort?: number }[] | undefined) ?? [];
      const portOk = ports.length === 0 || ports.some((p) => {
        if ((p.protocol ?? 'TCP') !== protocol) return false;
        if (p.port === undefined) return true;
        // Named ports in egress rules name the destination's port: not modelled, never matches.
        const n = typeof p.port === 'number' ? p.port : direction === 'Ingress' ? podPort(p.port) : undefined;
        return n !== undefined && wanted !== undefined && (p.endPort ? wanted >= n && wanted <= p.endPort : wanted === n);
      });
      if (peerOk && portOk) return true;
    }
  }
  return false;
}

function peerMatches(p: Map_, peer: Peer, ownNamespace: string): boolean {
  if (p.ipBlock) {
    if (!peer.ip) return false;
    const block = p.ipBlock as { cidr: string; except?: string[] };
    return inCidr(peer.ip, block.cidr) && !(block.except ?? []).some((c) => inCidr(peer.ip!, c));
  }
  if (peer.namespace === undefined) return false;
  if (p.podSelector && Object.keys(p.podSelector as Map_).length > 0) return false;
  if (p.namespaceSelector) return labelsMatch(p.namespaceSelector as never, { 'kubernetes.io/metadata.name': peer.namespace });
  // A bare (empty) podSelector: every pod of the policy's own namespace.
  return peer.namespace === ownNamespace;
}

function inCidr(ip: string, cidr: string): boolean {
  if (cidr.includes(':') || ip.includes(':')) return cidr.includes(':') === ip.includes(':') && cidr === '::/0';
  const [base, bits] = cidr.split('/');
  const toInt = (a: string) => a.split('.').reduce((n, o) => (n << 8) + Number(o), 0) >>> 0;
  const mask = Number(bits) === 0 ? 0 : (~0 << (32 - Number(bits))) >>> 0;
  return (toInt(ip) & mask) === (toInt(base!) & mask);
}

/** `nats://nats.nats.svc:4222` -> the Service's namespace (`nats`) and port. */
export function serviceAddress(url: string): { namespace: string; host: string; port: number } {
  const u = new URL(url);
  const parts = u.hostname.split('.');
  if (parts.length < 3 || parts[2] !== 'svc') throw new Error(`${url}: not a <service>.<namespace>.svc address, so its namespace is unknown`);
  const defaults: Record<string, number> = { 'nats:': 4222, 'postgresql:': 5432, 'postgres:': 5432, 'http:': 80, 'https:': 443 };
  return { namespace: parts[1]!, host: u.hostname, port: u.port ? Number(u.port) : defaults[u.protocol]! };
}

// --------------------------------------------------------------------------------------------
// Dockerfiles

export interface DockerInstruction {
  instruction: string;
  args: string;
  /** Index of the build stage (0 = the first FROM). */
  stage: number;
}

/** Instructions of a Dockerfile (comments dropped, continuation lines joined). */
export function parseDockerfile(file: string): DockerInstruction[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  const out: DockerInstruction[] = [];
  let stage = -1;
  let current = '';
  for (const raw of lines) {
    const line = raw.trim();
    if (current === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.startsWith('#')) continue;
    current += (current ? ' ' : '') + line.replace(/\\$/, '').trim();
    if (line.endsWith('\\')) continue;
    const m = /^(\w+)\s*(.*)$/.exec(current);
    current = '';
    if (!m) continue;
    const instruction = m[1]!.toUpperCase();
    if (instruction === 'FROM') stage++;
    out.push({ instruction, args: m[2]!, stage });
  }
  return out;
}

/** The JSON (exec) form of CMD/ENTRYPOINT/HEALTHCHECK CMD, or undefined for the shell form. */
export function execForm(args: string): string[] | undefined {
  try {
    const v = JSON.parse(args) as unknown;
    return Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined;
  } catch {
    return undefined;
  }
}

/** `ENV A=1 B=2` (the key=value form) as an object. */
export function envInstruction(args: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S*)/g)) out[m[1]!] = m[2]!.replace(/^"|"$/g, '');
  return out;
}

// --------------------------------------------------------------------------------------------
// Which variables an app reads

export interface ConfigReads {
  /** Every environment variable the process looked up, in order. */
  reads: string[];
  /** It got as far as its first outgoing connection (its configuration loaded and validated). */
  connected: boolean;
  exitCode: number | null;
  stderr: string;
}

/**
 * Runs `command` (an app's real entrypoint, e.g. `node apps/gateway/dist/main.js`) from `cwd`
 * with exactly `env`, recording every variable it reads until it opens its first connection
 * (libs/testing/jest/record-env.js), and stops it there. Point the addresses in `env` anywhere:
 * nothing is connected to.
 */
export function recordConfigReads(command: string[], env: Record<string, string>, cwd: string, timeoutMs = 60_000): Promise<ConfigReads> {
  const [node, ...args] = command;
  if (node !== 'node') throw new Error(`cannot record ${command.join(' ')}: only node entrypoints are supported`);
  const dir = mkdtempSync(path.join(tmpdir(), 'blixard-env-'));
  const out = path.join(dir, 'reads.txt');
  const preload = path.join(cwd, 'libs', 'testing', 'jest', 'record-env.js');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-r', preload, ...args], { cwd, env: { ...env, RECORD_ENV_TO: out }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      let lines: string[] = [];
      try {
        lines = readFileSync(out, 'utf8').split('\n').filter(Boolean);
      } catch {
        // the preload never ran
      }
      rmSync(dir, { recursive: true, force: true });
      resolve({ reads: lines.filter((l) => l !== '<connect>'), connected: lines.includes('<connect>'), exitCode: code, stderr });
    });
  });
}
