import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local stand-in for the Kubernetes API server: the endpoints the kubernetes executor uses
 * (create/get/list/delete Jobs in a namespace, list pods by label selector, read a pod's log) over
 * plain HTTP, with a Job controller and a kubelet that behave the way the real ones do:
 *
 *   Job created → pod Pending (ContainerCreating) → Running → Succeeded | Failed
 *
 * What the container does is a script in its argv (`command` then `args`), read as steps:
 *   print <text> · printenv <NAME> · sleep <seconds> · result <text> (termination message)
 *   exit <code> · oom (OOMKilled, 137) · if-attempt <n> <step> <arg> (that step only on attempt n,
 *   from BLIXARD_ATTEMPT) · wait <key> (until the test calls `release(key)`). The end of the
 *   script is `exit 0`.
 * An image named `fake/missing...` cannot be pulled (ErrImagePull, then ImagePullBackOff).
 * A nodeSelector the one node's labels do not satisfy leaves the pod Unschedulable.
 * `activeDeadlineSeconds` kills the pod (Failed, DeadlineExceeded), `ttlSecondsAfterFinished`
 * collects finished Jobs, and a delete without `propagationPolicy: Background|Foreground`
 * orphans the pods, as the real API does for batch/v1 Jobs.
 *
 * No dependencies beyond node:http, so it runs anywhere the tests do.
 */

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

export interface FakeKubeOptions {
  /** Required bearer token (401 without it). */
  token?: string;
  /** Job → pod created. */
  podCreateDelayMs?: number;
  /** Pod Pending (ContainerCreating) before it runs. */
  pendingMs?: number;
  /** Deleted pods linger (terminating) this long. */
  gracePeriodMs?: number;
  /** The labels of the cluster's one node (what nodeSelectors must match). */
  nodeLabels?: Record<string, string>;
  /** RBAC: when given, a request no rule allows is a 403, as for a service account bound to a Role. */
  rules?: PolicyRule[];
}

export interface RecordedRequest {
  verb: string;
  apiGroup: string;
  resource: string;
  namespace: string;
  name?: string;
  status: number;
  query: Record<string, string>;
}

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

interface FakeJob {
  obj: Obj;
  timers: NodeJS.Timeout[];
  pod?: FakePod;
}

interface FakePod {
  obj: Obj;
  log: string;
  timers: NodeJS.Timeout[];
  done: boolean;
}

const now = () => new Date().toISOString();

export class FakeKubeApi {
  readonly jobs = new Map<string, FakeJob>();
  readonly pods = new Map<string, FakePod>();
  readonly requests: RecordedRequest[] = [];
  /** Every Job ever created (also deleted ones), in order, with when it was created (epoch ms). */
  readonly created: { namespace: string; name: string; at: number; job: Obj }[] = [];
  readonly deleted: { namespace: string; name: string; at: number; propagationPolicy: string | undefined; by: 'api' | 'ttl' }[] = [];
  private readonly released = new Set<string>();
  private readonly waiting = new Map<string, (() => void)[]>();
  private readonly o: Required<Omit<FakeKubeOptions, 'token' | 'rules'>> & Pick<FakeKubeOptions, 'token' | 'rules'>;

  private constructor(
    private readonly server: Server,
    options: FakeKubeOptions,
  ) {
    this.o = { podCreateDelayMs: 10, pendingMs: 50, gracePeriodMs: 50, nodeLabels: { 'kubernetes.io/os': 'linux' }, ...options };
  }

  static async start(options: FakeKubeOptions = {}): Promise<FakeKubeApi> {
    let api: FakeKubeApi | undefined;
    const server = createServer((req, res) => void api!.handle(req, res));
    api = new FakeKubeApi(server, options);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return api;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const j of this.jobs.values()) j.timers.forEach(clearTimeout);
    for (const p of this.pods.values()) p.timers.forEach(clearTimeout);
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Lets every container waiting on `key` (script step `wait <key>`) go on, now and later. */
  release(key: string): void {
    this.released.add(key);
    for (const go of this.waiting.get(key) ?? []) go();
    this.waiting.delete(key);
  }

  /** Pods that are still there and not terminating (what `kubectl get pods` would show running). */
  livePods(): Obj[] {
    return [...this.pods.values()].filter((p) => !p.obj.metadata.deletionTimestamp).map((p) => p.obj);
  }

  createdFor(jobId: string): { name: string; at: number; job: Obj }[] {
    return this.created.filter((c) => c.job.metadata?.labels?.['blixard.io/job-id'] === jobId);
  }

  // ---------------------------------------------------------------- HTTP

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const query = Object.fromEntries(url.searchParams);
    const body = await readBody(req);
    const route = parseRoute(req.method ?? 'GET', url.pathname);
    const record = (status: number) => {
      if (route) this.requests.push({ verb: route.verb, apiGroup: route.apiGroup, resource: route.resource, namespace: route.namespace, name: route.name, status, query });
    };
    const reply = (status: number, payload: unknown, contentType = 'application/json') => {
      record(status);
      res.writeHead(status, { 'content-type': contentType });
      res.end(typeof payload === 'string' ? payload : JSON.stringify(payload));
    };
    const fail = (status: number, reason: string, message: string) =>
      reply(status, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code: status });

    if (this.o.token !== undefined && req.headers.authorization !== `Bearer ${this.o.token}`) return fail(401, 'Unauthorized', 'Unauthorized');
    if (!route) return fail(404, 'NotFound', `the server could not find the requested resource (${req.method} ${url.pathname})`);
    if (this.o.rules && !this.allowed(route)) {
      const what = route.apiGroup ? `${route.resource}.${route.apiGroup}` : route.resource;
      return fail(403, 'Forbidden', `${what} is forbidden: User "system:serviceaccount:blixard:executor-kubernetes" cannot ${route.verb} resource "${route.resource}" in API group "${route.apiGroup}" in the namespace "${route.namespace}"`);
    }
    const ns = route.namespace;
    const key = (name: string) => `${ns}/${name}`;

    switch (`${route.verb} ${route.resource}`) {
      case 'create jobs': {
        let job: Obj;
        try {
          job = JSON.parse(body) as Obj;
        } catch {
          return fail(400, 'BadRequest', 'the body is not JSON');
        }
        const problem = invalidJob(job);
        if (problem) return fail(422, 'Invalid', `Job.batch "${job?.metadata?.name ?? ''}" is invalid: ${problem}`);
        const name = job.metadata.name as string;
        if (this.jobs.has(key(name))) return fail(409, 'AlreadyExists', `jobs.batch "${name}" already exists`);
        return reply(201, this.createJob(ns, job));
      }
      case 'get jobs': {
        const j = this.jobs.get(key(route.name!));
        return j ? reply(200, j.obj) : fail(404, 'NotFound', `jobs.batch "${route.name}" not found`);
      }
      case 'list jobs': {
        const items = [...this.jobs.values()].map((j) => j.obj).filter((o) => o.metadata.namespace === ns && matches(o.metadata.labels, query.labelSelector));
        return reply(200, { kind: 'JobList', apiVersion: 'batch/v1', metadata: { resourceVersion: '1' }, items });
      }
      case 'delete jobs': {
        const j = this.jobs.get(key(route.name!));
        if (!j) return fail(404, 'NotFound', `jobs.batch "${route.name}" not found`);
        let policy = query.propagationPolicy;
        if (!policy && body) {
          try {
            policy = (JSON.parse(body) as Obj).propagationPolicy;
          } catch {
            // no options
          }
        }
        this.deleteJob(ns, route.name!, policy, 'api');
        return reply(200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name: route.name, group: 'batch', kind: 'jobs', uid: j.obj.metadata.uid } });
      }
      case 'list pods': {
        const items = [...this.pods.values()].map((p) => p.obj).filter((o) => o.metadata.namespace === ns && matches(o.metadata.labels, query.labelSelector));
        return reply(200, { kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: '1' }, items });
      }
      case 'get pods/log': {
        const p = this.pods.get(key(route.name!));
        if (!p) return fail(404, 'NotFound', `pods "${route.name}" not found`);
        const container = query.container ?? 'job';
        if (container !== p.obj.spec.containers[0].name) return fail(400, 'BadRequest', `container ${container} is not valid for pod ${route.name}`);
        const waiting = p.obj.status.containerStatuses?.[0]?.state?.waiting;
        if (waiting) return fail(400, 'BadRequest', `container "${container}" in pod "${route.name}" is waiting to start: ${waiting.reason}`);
        let text = p.log;
        if (query.tailLines !== undefined) {
          const lines = text.split(/(?<=\n)/);
          text = lines.slice(Math.max(0, lines.length - Number(query.tailLines))).join('');
        }
        return reply(200, text, 'text/plain');
      }
      default:
        return fail(405, 'MethodNotAllowed', `${route.verb} ${route.resource} is not served by the fake API server`);
    }
  }

  private allowed(r: { apiGroup: string; resource: string; verb: string }): boolean {
    return (this.o.rules ?? []).some(
      (rule) =>
        (rule.apiGroups.includes(r.apiGroup) || rule.apiGroups.includes('*')) &&
        (rule.resources.includes(r.resource) || rule.resources.includes('*')) &&
        (rule.verbs.includes(r.verb) || rule.verbs.includes('*')),
    );
  }

  // ---------------------------------------------------------------- the Job controller

  private createJob(ns: string, input: Obj): Obj {
    const uid = randomUUID();
    const obj: Obj = {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { ...input.metadata, namespace: ns, uid, resourceVersion: '1', creationTimestamp: now(), generation: 1 },
      spec: { ...input.spec, completions: 1, parallelism: 1 },
      status: {},
    };
    const fake: FakeJob = { obj, timers: [] };
    this.jobs.set(`${ns}/${obj.metadata.name}`, fake);
    this.created.push({ namespace: ns, name: obj.metadata.name, at: Date.now(), job: obj });
    fake.timers.push(setTimeout(() => this.startPod(fake), this.o.podCreateDelayMs));
    return obj;
  }

  private startPod(job: FakeJob): void {
    const j = job.obj;
    const template = j.spec.template;
    const container = template.spec.containers[0];
    j.status.startTime = now();
    j.status.active = 1;
    const ads = j.spec.activeDeadlineSeconds as number | undefined;
    if (ads !== undefined) job.timers.push(setTimeout(() => this.deadlineExceeded(job), ads * 1000));

    const name = `${j.metadata.name}-${randomBytes(3).toString('hex').slice(0, 5)}`;
    const selectorOk = Object.entries((template.spec.nodeSelector ?? {}) as Record<string, string>).every(([k, v]) => this.o.nodeLabels[k] === v);
    const pod: FakePod = {
      obj: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name,
          namespace: j.metadata.namespace,
          uid: randomUUID(),
          creationTimestamp: now(),
          labels: { ...(template.metadata?.labels ?? {}), 'batch.kubernetes.io/job-name': j.metadata.name, 'job-name': j.metadata.name, 'controller-uid': j.metadata.uid },
          annotations: { ...(template.metadata?.annotations ?? {}) },
          ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: j.metadata.name, uid: j.metadata.uid, controller: true }],
        },
        spec: { ...template.spec, nodeName: selectorOk ? 'fake-node-1' : undefined },
        status: selectorOk
          ? {
              phase: 'Pending',
              conditions: [{ type: 'PodScheduled', status: 'True' }],
              containerStatuses: [{ name: container.name, image: container.image, ready: false, restartCount: 0, state: { waiting: { reason: 'ContainerCreating' } } }],
            }
          : {
              phase: 'Pending',
              conditions: [
                {
                  type: 'PodScheduled',
                  status: 'False',
                  reason: 'Unschedulable',
                  message: "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.",
                },
              ],
            },
      },
      log: '',
      timers: [],
      done: false,
    };
    job.pod = pod;
    this.pods.set(`${j.metadata.namespace}/${name}`, pod);
    if (!selectorOk) return;

    if (String(container.image).startsWith('fake/missing')) {
      const image = container.image as string;
      pod.timers.push(
        setTimeout(() => {
          pod.obj.status.containerStatuses[0].state = { waiting: { reason: 'ErrImagePull', message: `rpc error: code = NotFound desc = failed to pull and unpack image "${image}": not found` } };
        }, this.o.pendingMs),
        setTimeout(() => {
          pod.obj.status.containerStatuses[0].state = { waiting: { reason: 'ImagePullBackOff', message: `Back-off pulling image "${image}"` } };
        }, this.o.pendingMs * 3),
      );
      return;
    }
    pod.timers.push(setTimeout(() => this.runContainer(job, pod), this.o.pendingMs));
  }

  /** The kubelet: runs the container's script. */
  private runContainer(job: FakeJob, pod: FakePod): void {
    if (pod.done || pod.obj.metadata.deletionTimestamp) return;
    const container = pod.obj.spec.containers[0];
    const env = Object.fromEntries(((container.env ?? []) as { name: string; value?: string }[]).map((e) => [e.name, e.value ?? '']));
    const steps = [...((container.command ?? []) as string[]), ...((container.args ?? []) as string[])];
    pod.obj.status.phase = 'Running';
    pod.obj.status.startTime = now();
    pod.obj.status.conditions.push({ type: 'Ready', status: 'True' });
    pod.obj.status.containerStatuses[0] = { ...pod.obj.status.containerStatuses[0], ready: true, started: true, state: { running: { startedAt: now() } } };
    let termination = '';
    const step = (i: number): void => {
      if (pod.done) return;
      const op = steps[i];
      const arg = steps[i + 1] ?? '';
      switch (op) {
        case undefined:
          return this.terminate(job, pod, 0, 'Completed', termination);
        case 'print':
          pod.log += `${arg}\n`;
          return step(i + 2);
        case 'printenv':
          pod.log += `${env[arg] ?? ''}\n`;
          return step(i + 2);
        case 'result':
          termination = arg;
          return step(i + 2);
        case 'if-attempt':
          return step(env.BLIXARD_ATTEMPT === arg ? i + 2 : i + 4);
        case 'wait':
          if (this.released.has(arg)) return step(i + 2);
          this.waiting.set(arg, [...(this.waiting.get(arg) ?? []), () => step(i + 2)]);
          return;
        case 'sleep':
          pod.timers.push(setTimeout(() => step(i + 2), Number(arg) * 1000));
          return;
        case 'exit': {
          const code = Number(arg);
          return this.terminate(job, pod, code, code === 0 ? 'Completed' : 'Error', termination);
        }
        case 'oom':
          return this.terminate(job, pod, 137, 'OOMKilled', termination);
        default:
          pod.log += `fake: unknown step ${JSON.stringify(op)}\n`;
          return this.terminate(job, pod, 127, 'Error', termination);
      }
    };
    step(0);
  }

  private terminate(job: FakeJob, pod: FakePod, exitCode: number, reason: string, message: string, podReason?: string, podMessage?: string): void {
    if (pod.done) return;
    pod.done = true;
    pod.timers.forEach(clearTimeout);
    const s = pod.obj.status;
    const startedAt = s.containerStatuses?.[0]?.state?.running?.startedAt ?? now();
    s.phase = exitCode === 0 ? 'Succeeded' : 'Failed';
    if (podReason) {
      s.reason = podReason;
      s.message = podMessage;
    }
    s.conditions = (s.conditions ?? []).filter((c: Obj) => c.type !== 'Ready').concat([{ type: 'Ready', status: 'False', reason: 'PodCompleted' }]);
    if (s.containerStatuses?.[0]) {
      s.containerStatuses[0] = {
        ...s.containerStatuses[0],
        ready: false,
        started: false,
        state: { terminated: { exitCode, reason, ...(message ? { message } : {}), startedAt, finishedAt: now() } },
      };
    }
    const j = job.obj;
    if (!this.jobs.has(`${j.metadata.namespace}/${j.metadata.name}`)) return;
    j.status.active = 0;
    if (exitCode === 0) {
      j.status.succeeded = 1;
      j.status.completionTime = now();
      j.status.conditions = [{ type: 'Complete', status: 'True', lastTransitionTime: now() }];
    } else if (podReason === 'DeadlineExceeded') {
      j.status.failed = 1;
      j.status.conditions = [{ type: 'Failed', status: 'True', reason: 'DeadlineExceeded', message: 'Job was active longer than specified deadline', lastTransitionTime: now() }];
    } else {
      j.status.failed = 1;
      j.status.conditions = [{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit', lastTransitionTime: now() }];
    }
    job.timers.forEach(clearTimeout);
    job.timers = [];
    const ttl = j.spec.ttlSecondsAfterFinished as number | undefined;
    if (ttl !== undefined) job.timers.push(setTimeout(() => this.deleteJob(j.metadata.namespace, j.metadata.name, 'Background', 'ttl'), ttl * 1000));
  }

  private deadlineExceeded(job: FakeJob): void {
    const pod = job.pod;
    if (pod && !pod.done) {
      this.terminate(job, pod, 137, 'Error', '', 'DeadlineExceeded', 'Pod was active on the node longer than the specified deadline');
    } else if (!pod) {
      const j = job.obj;
      j.status.failed = 1;
      j.status.conditions = [{ type: 'Failed', status: 'True', reason: 'DeadlineExceeded', message: 'Job was active longer than specified deadline' }];
    }
  }

  private deleteJob(ns: string, name: string, propagationPolicy: string | undefined, by: 'api' | 'ttl'): void {
    const job = this.jobs.get(`${ns}/${name}`);
    if (!job) return;
    job.timers.forEach(clearTimeout);
    this.jobs.delete(`${ns}/${name}`);
    this.deleted.push({ namespace: ns, name, at: Date.now(), propagationPolicy, by });
    // batch/v1 Jobs default to orphaning their pods when deleted through the API.
    if (propagationPolicy !== 'Background' && propagationPolicy !== 'Foreground') return;
    const pod = job.pod;
    if (!pod) return;
    pod.obj.metadata.deletionTimestamp = now();
    pod.done = true;
    pod.timers.forEach(clearTimeout);
    setTimeout(() => this.pods.delete(`${ns}/${pod.obj.metadata.name}`), this.o.gracePeriodMs);
  }
}

// ---------------------------------------------------------------- helpers

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

/** Which API call a request is, in RBAC terms (verb, group, resource[/subresource]). */
function parseRoute(method: string, path: string): { verb: string; apiGroup: string; resource: string; namespace: string; name?: string } | null {
  let m = /^\/apis\/batch\/v1\/namespaces\/([^/]+)\/jobs(?:\/([^/]+))?$/.exec(path);
  if (m) {
    const name = m[2];
    const verb = method === 'POST' && !name ? 'create' : method === 'GET' ? (name ? 'get' : 'list') : method === 'DELETE' && name ? 'delete' : `${method.toLowerCase()}?`;
    return { verb, apiGroup: 'batch', resource: 'jobs', namespace: m[1]!, name };
  }
  m = /^\/api\/v1\/namespaces\/([^/]+)\/pods(?:\/([^/]+)(\/log)?)?$/.exec(path);
  if (m) {
    const name = m[2];
    if (m[3]) return { verb: method === 'GET' ? 'get' : `${method.toLowerCase()}?`, apiGroup: '', resource: 'pods/log', namespace: m[1]!, name };
    return { verb: method === 'GET' ? (name ? 'get' : 'list') : `${method.toLowerCase()}?`, apiGroup: '', resource: 'pods', namespace: m[1]!, name };
  }
  return null;
}

/** Equality-based label selectors (`a=b,c!=d,e`), which is what the executor sends. */
function matches(labels: Record<string, string> | undefined, selector: string | undefined): boolean {
  if (!selector) return true;
  const l = labels ?? {};
  return selector.split(',').every((term) => {
    const t = term.trim();
    let m = /^([^!=]+)!=(.*)$/.exec(t);
    if (m) return l[m[1]!.trim()] !== m[2]!.trim();
    m = /^([^!=]+)==?(.*)$/.exec(t);
    if (m) return l[m[1]!.trim()] === m[2]!.trim();
    return t.startsWith('!') ? !(t.slice(1) in l) : t in l;
  });
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** The validation the API server would do on what the executor sends (the parts it can get wrong). */
function invalidJob(job: Obj): string | null {
  if (job?.apiVersion !== 'batch/v1' || job?.kind !== 'Job') return 'apiVersion/kind: must be batch/v1 Job';
  const name = job.metadata?.name;
  if (typeof name !== 'string' || !DNS_LABEL.test(name)) return `metadata.name: Invalid value: ${JSON.stringify(name)}`;
  for (const [k, v] of Object.entries((job.metadata?.labels ?? {}) as Record<string, string>)) {
    if (typeof v !== 'string' || v.length > 63 || !/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/.test(v)) return `metadata.labels: Invalid value: "${k}": ${JSON.stringify(v)}`;
  }
  const spec = job.spec?.template?.spec;
  if (!spec) return 'spec.template.spec: Required value';
  if (!['Never', 'OnFailure'].includes(spec.restartPolicy)) return `spec.template.spec.restartPolicy: Unsupported value: ${JSON.stringify(spec.restartPolicy)}`;
  const containers = spec.containers;
  if (!Array.isArray(containers) || containers.length === 0) return 'spec.template.spec.containers: Required value';
  for (const [i, c] of containers.entries()) {
    if (!c?.name) return `spec.template.spec.containers[${i}].name: Required value`;
    if (!c?.image) return `spec.template.spec.containers[${i}].image: Required value`;
  }
  const selector = job.spec?.selector;
  if (selector) return 'spec.selector: Invalid value: `selector` is generated by the Job controller';
  return null;
}
