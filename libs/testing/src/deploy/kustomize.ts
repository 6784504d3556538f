/**
 * `kustomize build` for the subset of kustomize that k8s/ uses, so CI can render every overlay
 * offline (no kustomize or kubectl binary is installable here). It follows kustomize 5's order of
 * operations at each level (resources, components, generators, then patches, namespace, labels,
 * replicas, images; ConfigMap hash suffixes and the references to them last) and refuses any
 * kustomization field it does not implement, so a manifest can never be rendered silently wrong:
 * extend this file when k8s/ starts using something new. Where kubectl is installed, the deploy
 * test also compares this renderer's output with `kubectl kustomize`.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';

export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; [k: string]: unknown }; [k: string]: unknown };

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonMap = { [k: string]: Json };

/** One resource during the build: the object plus what kustomize tracks beside it. */
interface Resource {
  obj: K8sObject;
  /** The name before the hash suffix (what patches, generators and references use). */
  originalName: string;
  /** A generated ConfigMap that gets a content-hash suffix at the end of the build. */
  hashSuffix: boolean;
}

interface Kustomization {
  apiVersion?: string;
  kind?: string;
  resources?: string[];
  components?: string[];
  namespace?: string;
  labels?: { pairs: Record<string, string>; includeSelectors?: boolean; includeTemplates?: boolean }[];
  commonLabels?: Record<string, string>;
  configMapGenerator?: { name: string; namespace?: string; behavior?: 'create' | 'merge' | 'replace'; literals?: string[]; envs?: string[]; files?: string[]; options?: { disableNameSuffixHash?: boolean; labels?: Record<string, string>; annotations?: Record<string, string> } }[];
  images?: { name: string; newName?: string; newTag?: string; digest?: string }[];
  replicas?: { name: string; count: number }[];
  patches?: { path?: string; patch?: string; target?: PatchTarget; options?: Record<string, unknown> }[];
}

interface PatchTarget {
  group?: string;
  version?: string;
  kind?: string;
  name?: string;
  namespace?: string;
  labelSelector?: string;
}

const SUPPORTED_FIELDS = new Set(['apiVersion', 'kind', 'resources', 'components', 'namespace', 'labels', 'commonLabels', 'configMapGenerator', 'images', 'replicas', 'patches']);

/** Kinds kustomize's namespace transformer leaves alone (cluster-scoped). */
const CLUSTER_SCOPED = new Set([
  'Namespace', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'PersistentVolume', 'StorageClass',
  'PriorityClass', 'ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration', 'APIService', 'ClusterScaledObject', 'ClusterTriggerAuthentication',
]);

/** Workload kinds whose pod template the `labels` transformer reaches with includeTemplates. */
const TEMPLATE_PATHS: Record<string, string[][]> = {
  Deployment: [['spec', 'template']],
  ReplicaSet: [['spec', 'template']],
  DaemonSet: [['spec', 'template']],
  StatefulSet: [['spec', 'template']],
  Job: [['spec', 'template']],
  CronJob: [['spec', 'jobTemplate'], ['spec', 'jobTemplate', 'spec', 'template']],
};

/** Strategic-merge keys of the core list fields k8s/ patches (the Kubernetes schema's patchMergeKey). */
const CORE_MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  env: 'name',
  envFrom: '',
  volumes: 'name',
  volumeMounts: 'mountPath',
  imagePullSecrets: 'name',
  hostAliases: 'ip',
  topologySpreadConstraints: 'topologyKey',
};
/** For kinds without a schema (CRDs), kustomize (kyaml) merges lists whose items carry one of these. */
const ASSOCIATIVE_KEYS = ['mountPath', 'devicePath', 'ip', 'type', 'topologyKey', 'name', 'containerPort'];
const CORE_GROUPS = new Set(['', 'apps', 'batch', 'policy', 'autoscaling', 'networking.k8s.io', 'rbac.authorization.k8s.io']);

export class KustomizeError extends Error {
  constructor(where: string, message: string) {
    super(`${where}: ${message}`);
    this.name = 'KustomizeError';
  }
}

/** Renders the kustomization in `dir` like `kustomize build dir`. */
export function kustomizeBuild(dir: string): K8sObject[] {
  const resources = accumulate(path.resolve(dir), false);
  applyHashSuffixes(resources);
  return resources.map((r) => r.obj);
}

function readKustomization(dir: string, component: boolean): Kustomization {
  const file = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'].map((f) => path.join(dir, f)).find((f) => existsSync(f));
  if (!file) throw new KustomizeError(dir, 'no kustomization.yaml');
  const k = parseOne(file) as Kustomization & Record<string, unknown>;
  const expectedKind = component ? 'Component' : 'Kustomization';
  if ((k.kind ?? 'Kustomization') !== expectedKind) throw new KustomizeError(file, `kind ${String(k.kind)}, expected ${expectedKind}`);
  for (const field of Object.keys(k)) {
    if (!SUPPORTED_FIELDS.has(field)) throw new KustomizeError(file, `field "${field}" is not supported by this renderer (libs/testing/src/deploy/kustomize.ts)`);
  }
  return k;
}

function parseOne(file: string): unknown {
  const docs = parseYamlDocs(file);
  if (docs.length !== 1) throw new KustomizeError(file, `expected one YAML document, found ${docs.length}`);
  return docs[0];
}

function parseYamlDocs(file: string, text = readFileSync(file, 'utf8')): unknown[] {
  return parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length > 0) throw new KustomizeError(file, d.errors.map((e) => e.message).join('; '));
      return d.toJS() as unknown;
    })
    .filter((d) => d !== null && d !== undefined);
}

function accumulate(dir: string, component: boolean, into: Resource[] = []): Resource[] {
  const k = readKustomization(dir, component);
  const where = path.join(dir, 'kustomization.yaml');
  for (const entry of k.resources ?? []) {
    const p = path.resolve(dir, entry);
    if (!existsSync(p)) throw new KustomizeError(where, `resource ${entry} does not exist`);
    if (statSync(p).isDirectory()) {
      for (const r of accumulate(p, false)) addResource(into, r, where);
    } else {
      for (const doc of parseYamlDocs(p)) addResource(into, toResource(doc, p), where);
    }
  }
  for (const entry of k.components ?? []) {
    const p = path.resolve(dir, entry);
    if (!existsSync(p) || !statSync(p).isDirectory()) throw new KustomizeError(where, `component ${entry} is not a directory`);
    accumulate(p, true, into);
  }
  runGenerators(dir, k, into);
  runTransformers(dir, k, into);
  return into;
}

function toResource(doc: unknown, file: string): Resource {
  const obj = doc as K8sObject;
  if (!isMap(doc) || typeof obj.apiVersion !== 'string' || typeof obj.kind !== 'string' || !isMap(obj.metadata as unknown) || typeof obj.metadata.name !== 'string') {
    throw new KustomizeError(file, 'every document needs apiVersion, kind and metadata.name');
  }
  return { obj, originalName: obj.metadata.name, hashSuffix: false };
}

function idOf(r: Resource): string {
  return `${groupOf(r.obj.apiVersion)}/${r.obj.kind}/${r.obj.metadata.namespace ?? ''}/${r.originalName}`;
}

function addResource(into: Resource[], r: Resource, where: string): void {
  if (into.some((x) => idOf(x) === idOf(r))) throw new KustomizeError(where, `resource ${idOf(r)} is defined twice`);
  into.push(r);
}

function groupOf(apiVersion: string): string {
  return apiVersion.includes('/') ? apiVersion.split('/')[0]! : '';
}

// --------------------------------------------------------------------------------------------
// Generators

function runGenerators(dir: string, k: Kustomization, resources: Resource[]): void {
  const where = path.join(dir, 'kustomization.yaml');
  for (const g of k.configMapGenerator ?? []) {
    for (const field of Object.keys(g)) {
      if (!['name', 'namespace', 'behavior', 'literals', 'envs', 'options'].includes(field)) {
        throw new KustomizeError(where, `configMapGenerator field "${field}" is not supported by this renderer`);
      }
    }
    const data: Record<string, string> = {};
    for (const envFile of g.envs ?? []) {
      for (const line of readFileSync(path.resolve(dir, envFile), 'utf8').split('\n')) {
        if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
        Object.assign(data, parseLiteral(line, where));
      }
    }
    for (const literal of g.literals ?? []) Object.assign(data, parseLiteral(literal, where));
    const behavior = g.behavior ?? 'create';
    const existing = resources.find((r) => r.obj.kind === 'ConfigMap' && r.originalName === g.name && (g.namespace === undefined || r.obj.metadata.namespace === g.namespace));
    if (behavior === 'create') {
      if (existing) throw new KustomizeError(where, `configMapGenerator ${g.name}: a ConfigMap of that name exists (use behavior: merge or replace)`);
      const obj: K8sObject = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: g.name }, data };
      if (g.namespace) obj.metadata.namespace = g.namespace;
      if (g.options?.labels) obj.metadata.labels = { ...g.options.labels };
      if (g.options?.annotations) obj.metadata.annotations = { ...g.options.annotations };
      resources.push({ obj, originalName: g.name, hashSuffix: !g.options?.disableNameSuffixHash });
    } else {
      if (!existing) throw new KustomizeError(where, `configMapGenerator ${g.name} (behavior ${behavior}): no ConfigMap of that name to ${behavior}`);
      existing.obj.data = behavior === 'merge' ? { ...((existing.obj.data as Record<string, string>) ?? {}), ...data } : data;
    }
  }
}

/** `KEY=VALUE`; surrounding quotes of the value are removed, as kustomize does. */
function parseLiteral(literal: string, where: string): Record<string, string> {
  const i = literal.indexOf('=');
  if (i <= 0) throw new KustomizeError(where, `literal ${JSON.stringify(literal)} is not KEY=VALUE`);
  let value = literal.slice(i + 1);
  if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.at(-1) === value[0]) value = value.slice(1, -1);
  return { [literal.slice(0, i).trim()]: value };
}

// --------------------------------------------------------------------------------------------
// Transformers, in kustomize's order

function runTransformers(dir: string, k: Kustomization, resources: Resource[]): void {
  const where = path.join(dir, 'kustomization.yaml');
  for (const p of k.patches ?? []) applyPatchEntry(dir, where, p, resources);
  if (k.namespace) setNamespace(k.namespace, resources);
  for (const l of k.labels ?? []) {
    for (const field of Object.keys(l)) {
      if (!['pairs', 'includeSelectors', 'includeTemplates'].includes(field)) throw new KustomizeError(where, `labels field "${field}" is not supported by this renderer`);
    }
    addLabels(resources, l.pairs, !!l.includeSelectors, !!l.includeTemplates || !!l.includeSelectors);
  }
  if (k.commonLabels) addLabels(resources, k.commonLabels, true, true);
  for (const r of k.replicas ?? []) {
    const targets = resources.filter((x) => ['Deployment', 'ReplicaSet', 'StatefulSet'].includes(x.obj.kind) && x.originalName === r.name);
    if (targets.length === 0) throw new KustomizeError(where, `replicas: no Deployment/StatefulSet named ${r.name}`);
    for (const t of targets) ((t.obj.spec ??= {}) as JsonMap).replicas = r.count;
  }
  for (const image of k.images ?? []) setImage(resources, image, where);
}

function applyPatchEntry(dir: string, where: string, entry: NonNullable<Kustomization['patches']>[number], resources: Resource[]): void {
  if (entry.options) throw new KustomizeError(where, 'patch options are not supported by this renderer');
  if ((entry.path === undefined) === (entry.patch === undefined)) throw new KustomizeError(where, 'a patch needs exactly one of path and patch');
  const source = entry.path !== undefined ? path.resolve(dir, entry.path) : where;
  const text = entry.path !== undefined ? readFileSync(source, 'utf8') : entry.patch!;
  const docs = parseYamlDocs(source, text);
  if (docs.length === 1 && Array.isArray(docs[0])) {
    // JSON 6902: a list of operations, for the resources the target selects.
    if (!entry.target) throw new KustomizeError(source, 'a JSON 6902 patch needs a target');
    const targets = select(resources, entry.target);
    if (targets.length === 0) throw new KustomizeError(source, `patch target ${JSON.stringify(entry.target)} matches nothing`);
    for (const t of targets) t.obj = applyJson6902(t.obj as unknown as Json, docs[0] as JsonMap[], `${source} on ${idOf(t)}`) as unknown as K8sObject;
    return;
  }
  for (const doc of docs) {
    if (!isMap(doc)) throw new KustomizeError(source, 'a strategic merge patch must be a mapping');
    const patch = doc as unknown as K8sObject;
    let targets: Resource[];
    if (entry.target) {
      targets = select(resources, entry.target);
    } else {
      if (typeof patch.kind !== 'string' || typeof patch.metadata?.name !== 'string') throw new KustomizeError(source, 'a strategic merge patch without target needs kind and metadata.name');
      targets = resources.filter(
        (r) => r.obj.kind === patch.kind && r.originalName === patch.metadata.name && groupOf(r.obj.apiVersion) === groupOf(patch.apiVersion ?? '') &&
          (patch.metadata.namespace === undefined || r.obj.metadata.namespace === patch.metadata.namespace),
      );
    }
    if (targets.length === 0) throw new KustomizeError(source, `patch for ${patch.kind ?? '?'}/${patch.metadata?.name ?? '?'} matches nothing`);
    for (const t of targets) {
      if ((patch as JsonMap)['$patch'] === 'delete') {
        resources.splice(resources.indexOf(t), 1);
        continue;
      }
      const { metadata, ...rest } = patch as unknown as JsonMap;
      const patchBody: JsonMap = { ...rest };
      // The patch's identity selects the resource; its other metadata (labels, ...) is merged.
      if (isMap(metadata)) {
        const { name: _n, namespace: _ns, ...meta } = metadata as JsonMap;
        if (Object.keys(meta).length > 0) patchBody.metadata = meta;
      }
      delete patchBody.apiVersion;
      delete patchBody.kind;
      const core = CORE_GROUPS.has(groupOf(t.obj.apiVersion));
      t.obj = strategicMerge(t.obj as unknown as JsonMap, patchBody, core, source) as unknown as K8sObject;
    }
  }
}

function select(resources: Resource[], target: PatchTarget): Resource[] {
  for (const field of Object.keys(target)) {
    if (!['group', 'version', 'kind', 'name', 'namespace', 'labelSelector'].includes(field)) throw new KustomizeError('patch target', `field "${field}" is not supported by this renderer`);
  }
  const labels = (target.labelSelector ?? '').split(',').filter(Boolean).map((s) => {
    const [k, v] = s.split('=');
    if (!k || v === undefined) throw new KustomizeError('patch target', `labelSelector ${JSON.stringify(target.labelSelector)}: only key=value pairs are supported`);
    return [k.trim(), v.trim()] as const;
  });
  return resources.filter((r) => {
    const [group, version] = r.obj.apiVersion.includes('/') ? r.obj.apiVersion.split('/') : ['', r.obj.apiVersion];
    if (target.group !== undefined && target.group !== group) return false;
    if (target.version !== undefined && target.version !== version) return false;
    if (target.kind !== undefined && target.kind !== r.obj.kind) return false;
    if (target.name !== undefined && !new RegExp(`^(?:${target.name})$`).test(r.originalName)) return false;
    if (target.namespace !== undefined && target.namespace !== r.obj.metadata.namespace) return false;
    return labels.every(([k, v]) => r.obj.metadata.labels?.[k] === v);
  });
}

function setNamespace(namespace: string, resources: Resource[]): void {
  for (const r of resources) {
    if (!CLUSTER_SCOPED.has(r.obj.kind)) r.obj.metadata.namespace = namespace;
    if (r.obj.kind === 'RoleBinding' || r.obj.kind === 'ClusterRoleBinding') {
      for (const s of (r.obj.subjects as JsonMap[] | undefined) ?? []) {
        if (s.kind === 'ServiceAccount' && s.namespace === undefined) s.namespace = namespace;
      }
    }
  }
}

function addLabels(resources: Resource[], pairs: Record<string, string>, selectors: boolean, templates: boolean): void {
  for (const r of resources) {
    r.obj.metadata.labels = { ...(r.obj.metadata.labels ?? {}), ...pairs };
    if (templates) {
      for (const p of TEMPLATE_PATHS[r.obj.kind] ?? []) {
        const template = ensurePath(r.obj as unknown as JsonMap, p);
        const meta = (template.metadata ??= {}) as JsonMap;
        meta.labels = { ...((meta.labels as JsonMap) ?? {}), ...pairs };
      }
    }
    if (selectors) {
      if (r.obj.kind === 'Service') {
        const spec = (r.obj.spec ??= {}) as JsonMap;
        spec.selector = { ...((spec.selector as JsonMap) ?? {}), ...pairs };
      } else if (TEMPLATE_PATHS[r.obj.kind] || r.obj.kind === 'PodDisruptionBudget') {
        const sel = ensurePath(r.obj as unknown as JsonMap, ['spec', 'selector']);
        sel.matchLabels = { ...((sel.matchLabels as JsonMap) ?? {}), ...pairs };
      }
    }
  }
}

function ensurePath(obj: JsonMap, keys: string[]): JsonMap {
  let cur = obj;
  for (const k of keys) {
    if (!isMap(cur[k])) cur[k] = {};
    cur = cur[k] as JsonMap;
  }
  return cur;
}

/** kustomize's `images`: every container and initContainer image named `name` (any tag or digest). */
function setImage(resources: Resource[], image: NonNullable<Kustomization['images']>[number], where: string): void {
  for (const field of Object.keys(image)) {
    if (!['name', 'newName', 'newTag', 'digest'].includes(field)) throw new KustomizeError(where, `images field "${field}" is not supported by this renderer`);
  }
  const visit = (node: Json): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (!isMap(node)) return;
    for (const [key, value] of Object.entries(node)) {
      if ((key === 'containers' || key === 'initContainers') && Array.isArray(value)) {
        for (const c of value) {
          if (!isMap(c) || typeof c.image !== 'string') continue;
          const ref = parseImage(c.image);
          if (ref.name !== image.name) continue;
          const name = image.newName ?? ref.name;
          if (image.digest) c.image = `${name}@${image.digest}`;
          else if (image.newTag) c.image = `${name}:${image.newTag}`;
          else c.image = `${name}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
        }
      }
      visit(value);
    }
  };
  for (const r of resources) visit(r.obj as unknown as Json);
}

export function parseImage(image: string): { name: string; tag?: string; digest?: string } {
  let rest = image;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  // A ':' after the last '/' is a tag (before it, a registry port).
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) return { name: rest.slice(0, colon), tag: rest.slice(colon + 1), digest };
  return { name: rest, digest };
}

// --------------------------------------------------------------------------------------------
// Patches

function strategicMerge(base: JsonMap, patch: JsonMap, core: boolean, where: string, fieldPath = ''): JsonMap {
  const directive = patch['$patch'];
  if (directive === 'replace') {
    const { $patch: _d, ...rest } = patch;
    return clone(rest) as JsonMap;
  }
  if (directive !== undefined) throw new KustomizeError(where, `$patch: ${String(directive)} at ${fieldPath || '/'} is not supported by this renderer`);
  const out: JsonMap = { ...base };
  for (const [key, pv] of Object.entries(patch)) {
    if (key.startsWith('$')) throw new KustomizeError(where, `directive ${key} at ${fieldPath}/${key} is not supported by this renderer`);
    const bv = out[key];
    if (pv === null) delete out[key];
    else if (isMap(pv) && isMap(bv)) out[key] = strategicMerge(bv, pv, core, where, `${fieldPath}/${key}`);
    else if (Array.isArray(pv) && Array.isArray(bv)) out[key] = mergeList(key, bv, pv, core, where, `${fieldPath}/${key}`);
    else out[key] = clone(pv);
  }
  return out;
}

function mergeList(field: string, base: Json[], patch: Json[], core: boolean, where: string, fieldPath: string): Json[] {
  let key: string | undefined;
  if (core) {
    key = CORE_MERGE_KEYS[field] || undefined;
    // A Service's ports merge by port; a container's by containerPort.
    if (field === 'ports') key = [...base, ...patch].every((x) => isMap(x) && 'containerPort' in x) ? 'containerPort' : 'port';
  } else {
    const items = [...base, ...patch];
    if (items.length > 0 && items.every(isMap)) key = ASSOCIATIVE_KEYS.find((k) => items.every((x) => k in (x as JsonMap)));
  }
  if (!key) return clone(patch) as Json[];
  const out = base.map((x) => clone(x));
  for (const item of patch) {
    if (!isMap(item)) throw new KustomizeError(where, `${fieldPath}: list items must be mappings to merge by ${key}`);
    const i = out.findIndex((x) => isMap(x) && x[key!] === item[key!]);
    if (item['$patch'] === 'delete') {
      if (i >= 0) out.splice(i, 1);
    } else if (i >= 0) {
      out[i] = strategicMerge(out[i] as JsonMap, item, core, where, `${fieldPath}[${String(item[key])}]`);
    } else {
      out.push(clone(item));
    }
  }
  return out;
}

function applyJson6902(doc: Json, ops: JsonMap[], where: string): Json {
  let root = clone(doc);
  for (const op of ops) {
    if (typeof op.op !== 'string' || typeof op.path !== 'string') throw new KustomizeError(where, 'each JSON 6902 operation needs op and path');
    const tokens = pointer(op.path, where);
    switch (op.op) {
      case 'add':
        root = put(root, tokens, clone(op.value ?? null), 'add', where);
        break;
      case 'replace':
        get(root, tokens, where); // must exist
        root = put(root, tokens, clone(op.value ?? null), 'replace', where);
        break;
      case 'remove':
        root = remove(root, tokens, where);
        break;
      case 'test':
        if (JSON.stringify(get(root, tokens, where)) !== JSON.stringify(op.value)) throw new KustomizeError(where, `test ${op.path} failed`);
        break;
      case 'copy':
      case 'move': {
        if (typeof op.from !== 'string') throw new KustomizeError(where, `${op.op} needs from`);
        const from = pointer(op.from, where);
        const value = clone(get(root, from, where));
        if (op.op === 'move') root = remove(root, from, where);
        root = put(root, tokens, value, 'add', where);
        break;
      }
      default:
        throw new KustomizeError(where, `JSON 6902 op ${op.op} is not supported`);
    }
  }
  return root;
}

function pointer(p: string, where: string): string[] {
  if (p === '') return [];
  if (!p.startsWith('/')) throw new KustomizeError(where, `JSON pointer ${p} must start with /`);
  return p.slice(1).split('/').map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function get(root: Json, tokens: string[], where: string): Json {
  let cur: Json = root;
  for (const t of tokens) {
    if (Array.isArray(cur)) cur = cur[Number(t)] as Json;
    else if (isMap(cur)) cur = cur[t] as Json;
    else cur = undefined as unknown as Json;
    if (cur === undefined) throw new KustomizeError(where, `path /${tokens.join('/')} does not exist`);
  }
  return cur;
}

function put(root: Json, tokens: string[], value: Json, mode: 'add' | 'replace', where: string): Json {
  if (tokens.length === 0) return value;
  const parent = get(root, tokens.slice(0, -1), where);
  const last = tokens.at(-1)!;
  if (Array.isArray(parent)) {
    if (last === '-') parent.push(value);
    else {
      const i = Number(last);
      if (!Number.isInteger(i) || i < 0 || i > parent.length) throw new KustomizeError(where, `index ${last} out of range at /${tokens.join('/')}`);
      if (mode === 'replace') parent[i] = value;
      else parent.splice(i, 0, value);
    }
  } else if (isMap(parent)) {
    parent[last] = value;
  } else {
    throw new KustomizeError(where, `cannot add /${tokens.join('/')}: its parent is not a map or list`);
  }
  return root;
}

function remove(root: Json, tokens: string[], where: string): Json {
  get(root, tokens, where);
  const parent = get(root, tokens.slice(0, -1), where);
  const last = tokens.at(-1)!;
  if (Array.isArray(parent)) parent.splice(Number(last), 1);
  else delete (parent as JsonMap)[last];
  return root;
}

// --------------------------------------------------------------------------------------------
// Hash suffixes (kustomize's ConfigMap hash) and the references that follow the new names

function applyHashSuffixes(resources: Resource[]): void {
  const renamed = new Map<string, string>(); // `${namespace}/${originalName}` -> hashed name
  for (const r of resources) {
    if (!r.hashSuffix) continue;
    r.obj.metadata.name = `${r.originalName}-${configMapHash((r.obj.data as Record<string, string>) ?? {})}`;
    renamed.set(`${r.obj.metadata.namespace ?? ''}/${r.originalName}`, r.obj.metadata.name);
  }
  if (renamed.size === 0) return;
  const visit = (node: Json, namespace: string): void => {
    if (Array.isArray(node)) return node.forEach((n) => visit(n, namespace));
    if (!isMap(node)) return;
    for (const [key, value] of Object.entries(node)) {
      // envFrom[].configMapRef, env[].valueFrom.configMapKeyRef, volumes[].configMap, projected sources.
      if ((key === 'configMapRef' || key === 'configMapKeyRef' || key === 'configMap') && isMap(value) && typeof value.name === 'string') {
        const hashed = renamed.get(`${namespace}/${value.name}`);
        if (hashed) value.name = hashed;
      }
      visit(value, namespace);
    }
  };
  for (const r of resources) {
    if (r.obj.kind !== 'ConfigMap') visit(r.obj as unknown as Json, r.obj.metadata.namespace ?? '');
  }
}

/**
 * kustomize's suffix: sha256 of the Go-JSON encoding of {data, kind, name} (keys sorted, HTML
 * characters escaped as Go does), its first 10 hex digits with 0,1,3,a,e mapped to g,h,k,m,t.
 * kustomize 5 hashes the generated ConfigMap before it has a name, so `name` is always empty.
 */
export function configMapHash(data: Record<string, string>): string {
  const sorted = Object.fromEntries(Object.keys(data).sort().map((k) => [k, data[k]]));
  const json = JSON.stringify({ data: sorted, kind: 'ConfigMap', name: '' })
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
  const hex = createHash('sha256').update(json).digest('hex').slice(0, 10);
  return hex.replace(/[013ae]/g, (c) => ({ '0': 'g', '1': 'h', '3': 'k', a: 'm', e: 't' })[c]!);
}

function isMap(v: unknown): v is JsonMap {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function clone<T>(v: T): T {
  return v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T);
}
