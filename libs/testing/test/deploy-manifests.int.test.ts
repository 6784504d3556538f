import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { CONFIG_TABLE, loadConfig, type ConfigKey } from '@blixard/config';
import { subjects } from '@blixard/contracts';
import { freePort, repoRoot } from '../src';
import { K8sObject, kustomizeBuild, parseImage } from '../src/deploy/kustomize';
import {
  ConfigReads, Container, envInstruction, execForm, find, labelsMatch, networkAllows, parseDockerfile, recordConfigReads,
  resolveContainerEnv, serviceAddress, validateObject, Workload, workloadsOf,
} from '../src/deploy/manifests';
import { KUBE_API_PERMISSIONS } from '../../../apps/executor-kubernetes/src/kube-api';

/**
 * The deployment files, checked offline: every kustomization under k8s/ rendered (as kustomize
 * 5 does) and validated against the Kubernetes and KEDA schemas, then held to what the issue
 * asks (an image per app from its own Dockerfile, probes, resources, autoscaling, PDBs,
 * NetworkPolicies, RBAC); docker-compose.yml; and the Dockerfiles. Which environment variables
 * each service needs is not listed here: each app's real entrypoint is run with the deployment's
 * environment and the variables it reads are recorded (libs/testing/jest/record-env.js).
 */
const ROOT = repoRoot();
const rel = (...p: string[]) => path.join(ROOT, ...p);

const APPS = readdirSync(rel('apps')).filter((a) => existsSync(rel('apps', a, 'package.json'))).sort();
const EXECUTORS = APPS.filter((a) => a.startsWith('executor-'));
/** Apps that serve HTTP (health, metrics); the cli is a one-shot command (the migrate Job). */
const SERVERS = APPS.filter((a) => a !== 'cli');
const KUSTOMIZATIONS = ['k8s/base', ...readdirSync(rel('k8s', 'overlays')).map((o) => `k8s/overlays/${o}`)];
/** Every setting Blixard declares; what an app reads beyond these is Node's or a library's business. */
const SETTINGS = new Map<string, ConfigKey>(Object.entries(CONFIG_TABLE).map(([key, e]) => [e.env as string, key as ConfigKey]));

/** Variables a deployment may leave unset although the app reads them, and why. */
const MAY_BE_UNSET: { where: RegExp; app: RegExp; env: string; why: string }[] = [
  { where: /.*/, app: /.*/, env: 'OTEL_SERVICE_NAME', why: 'each service names its traces after itself' },
  { where: /.*/, app: /^executor-(process|mock|wasm)$/, env: 'EXECUTOR_ID', why: 'a fresh worker id per start; only executors that adopt their jobs after a restart pin it' },
  { where: /^compose$/, app: /^executor-/, env: 'EXECUTOR_ID', why: 'replicas made by `--scale` need distinct ids' },
  { where: /.*/, app: /^executor-kubernetes$/, env: 'KUBE_API_URL', why: 'the in-cluster ServiceAccount (compose: the mounted kubeconfig) says where the API is' },
  { where: /.*/, app: /^executor-kubernetes$/, env: 'KUBE_TOKEN', why: 'the in-cluster ServiceAccount (compose: the mounted kubeconfig) carries the credentials' },
];

interface AppImage {
  /** The image's command: ENTRYPOINT + CMD of its Dockerfile. */
  command: string[];
  /** ENV of the shared recipe's runtime stage and of the app's Dockerfile. */
  env: Record<string, string>;
  /** The variable holding the app's HTTP port (BLIXARD_PORT_ENV), for servers. */
  portEnv?: string;
  expose?: number;
}

function appImage(app: string): AppImage {
  const base = parseDockerfile(rel('k8s', 'docker', 'base.Dockerfile'));
  const lastStage = Math.max(...base.map((i) => i.stage));
  const own = parseDockerfile(rel('apps', app, 'Dockerfile'));
  const env: Record<string, string> = {};
  for (const i of [...base.filter((x) => x.stage === lastStage), ...own]) if (i.instruction === 'ENV') Object.assign(env, envInstruction(i.args));
  const last = (instr: string) => own.filter((i) => i.instruction === instr).at(-1);
  const entrypoint = last('ENTRYPOINT') ? execForm(last('ENTRYPOINT')!.args) : [];
  const cmd = last('CMD') ? execForm(last('CMD')!.args) : [];
  if (!entrypoint || !cmd) throw new Error(`apps/${app}/Dockerfile: ENTRYPOINT and CMD must use the exec (JSON) form`);
  const expose = last('EXPOSE') ? Number(last('EXPOSE')!.args) : undefined;
  return { command: [...entrypoint, ...cmd], env, portEnv: env.BLIXARD_PORT_ENV, expose };
}

/** The app a container runs: the repository of its image is blixard/<app>. */
function appOf(image: string): string | undefined {
  return /^blixard\/([a-z0-9-]+)$/.exec(parseImage(image).name)?.[1];
}

function isExempt(where: string, app: string, env: string): boolean {
  return MAY_BE_UNSET.some((x) => x.where.test(where) && x.app.test(app) && x.env === env);
}

/** The settings (CONFIG_TABLE variables) in a recording. */
function settingsRead(r: ConfigReads): string[] {
  return [...new Set(r.reads.filter((v) => SETTINGS.has(v)))];
}

/** Where a recording run sends the app: nowhere (it is stopped at its first connection). */
async function isolatedEnv(env: Record<string, string>, scratch: string): Promise<Record<string, string>> {
  const dead = await freePort();
  const out: Record<string, string> = { ...env, PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: scratch };
  out.NATS_URL = `nats://127.0.0.1:${dead}`;
  if ('DATABASE_URL' in env) out.DATABASE_URL = `postgresql://blixard@127.0.0.1:${dead}/blixard`;
  if (env.OTEL_EXPORTER_OTLP_ENDPOINT) out.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${dead}`;
  // Paths of the pod's volumes do not exist here.
  for (const v of ['DOCKER_SCRATCH_DIR', 'WASM_MODULE_DIR', 'WASM_SCRATCH_DIR']) if (env[v]) out[v] = scratch;
  if (env.KUBECONFIG) {
    // The mounted kubeconfig: a cluster at the same dead address.
    out.KUBECONFIG = path.join(scratch, 'kubeconfig');
    writeFileSync(out.KUBECONFIG, [
      'apiVersion: v1', 'kind: Config', 'current-context: test',
      `clusters: [{ name: test, cluster: { server: "https://127.0.0.1:${dead}" } }]`,
      'users: [{ name: test, user: { token: test } }]',
      'contexts: [{ name: test, context: { cluster: test, user: test } }]',
    ].join('\n'));
  }
  return out;
}

async function inBatches<T, R>(items: T[], size: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await Promise.all(items.slice(i, i + size).map(fn))));
  return out;
}

// ---------------------------------------------------------------------------------------------

describe('Kubernetes manifests (k8s/)', () => {
  const rendered = new Map<string, K8sObject[]>();
  /** The Secrets the README has users create in production (the base's template). */
  let outOfBand: K8sObject[] = [];
  /** overlay -> app -> what the app's entrypoint read, run with that overlay's environment. */
  const recordings = new Map<string, Map<string, ConfigReads>>();
  let scratch: string;

  const containerOf = (w: Workload): Container => w.podSpec.containers[0]!;
  const workloadsByApp = (objects: K8sObject[]) => {
    const m = new Map<string, Workload>();
    for (const w of workloadsOf(objects)) {
      const app = appOf(containerOf(w).image);
      if (app) m.set(app, w);
    }
    return m;
  };
  const envOf = (overlay: string, w: Workload) => resolveContainerEnv(w, containerOf(w), rendered.get(overlay)!, outOfBand);

  beforeAll(async () => {
    for (const k of KUSTOMIZATIONS) rendered.set(k, kustomizeBuild(rel(k)));
    outOfBand = rendered.get('k8s/base')!.filter((o) => o.kind === 'Secret');
    scratch = mkdtempSync(path.join(tmpdir(), 'blixard-deploy-'));
    for (const app of APPS) {
      if (!existsSync(rel('apps', app, 'dist', 'main.js'))) throw new Error(`apps/${app}/dist/main.js is missing: run \`pnpm run build\` first`);
    }
    // Each app's real entrypoint, with the environment its workload gets in dev and in prod.
    for (const overlay of ['k8s/overlays/dev', 'k8s/overlays/prod']) {
      const byApp = workloadsByApp(rendered.get(overlay)!);
      const runs = await inBatches([...byApp.entries()], 3, async ([app, w]) => {
        const image = appImage(app);
        const command = containerOf(w).command ?? image.command;
        const env = await isolatedEnv({ ...image.env, ...envOf(overlay, w).env }, scratch);
        return [app, await recordConfigReads(command, env, ROOT)] as const;
      });
      recordings.set(overlay, new Map(runs));
    }
  }, 240_000);

  afterAll(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('renders every kustomization offline, exactly as kustomize 5 does', () => {
    for (const k of KUSTOMIZATIONS) expect(rendered.get(k)!.length).toBeGreaterThan(30);
    // Where kubectl (kustomize 5 built in) is installed, its output must equal this renderer's.
    const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
    const kustomize5 = kubectl.status === 0 && /Kustomize Version: v5/.test(kubectl.stdout);
    process.stdout.write(`deploy: ${KUSTOMIZATIONS.length} kustomizations rendered; compared with kubectl kustomize: ${kustomize5 ? 'yes' : 'no (not installed)'}\n`);
    if (!kustomize5) return;
    const sortKeys = (v: unknown): unknown =>
      Array.isArray(v) ? v.map(sortKeys) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => [k, sortKeys(x)])) : v;
    const byId = (objs: K8sObject[]) => new Map(objs.map((o) => [`${o.apiVersion} ${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`, sortKeys(o)]));
    for (const k of KUSTOMIZATIONS) {
      const out = spawnSync('kubectl', ['kustomize', rel(k)], { encoding: 'utf8' });
      expect(out.stderr).toBe('');
      const theirs = byId(parseAllDocuments(out.stdout).map((d) => d.toJS() as K8sObject).filter(Boolean));
      expect(byId(rendered.get(k)!)).toEqual(theirs);
    }
  });

  it('renders objects that all validate against the Kubernetes and KEDA schemas', () => {
    const problems: string[] = [];
    // The Prometheus Operator's PodMonitor has no model package here: its shape is checked by hand.
    const podMonitor = (o: K8sObject) => {
      const spec = o.spec as { selector?: { matchLabels?: object }; podMetricsEndpoints?: { port?: string; path?: string }[] };
      if (!spec?.selector?.matchLabels || !spec.podMetricsEndpoints?.length || !spec.podMetricsEndpoints.every((e) => e.port && e.path)) {
        throw new Error(`PodMonitor ${o.metadata.name}: needs selector.matchLabels and podMetricsEndpoints with port and path`);
      }
    };
    for (const [k, objects] of rendered) {
      for (const o of objects) {
        try {
          validateObject(o, { 'monitoring.coreos.com/v1/PodMonitor': podMonitor });
        } catch (err) {
          problems.push(`${k}: ${(err as Error).message}`);
        }
      }
      // Services, PDBs, ScaledObjects, HPAs and PodMonitors point at something that exists.
      const workloads = workloadsOf(objects);
      for (const o of objects) {
        const spec = o.spec as Record<string, any>;
        if (o.kind === 'Service' && !workloads.some((w) => labelsMatch({ matchLabels: spec.selector }, w.podLabels))) problems.push(`${k}: Service ${o.metadata.name} selects no pods`);
        if (o.kind === 'Service') {
          for (const p of spec.ports) {
            const target = workloads.find((w) => labelsMatch({ matchLabels: spec.selector }, w.podLabels));
            if (typeof p.targetPort === 'string' && target && !containerOf(target).ports?.some((cp) => cp.name === p.targetPort)) problems.push(`${k}: Service ${o.metadata.name} targets port ${p.targetPort}, which its pods do not name`);
          }
        }
        if (o.kind === 'PodDisruptionBudget' && !workloads.some((w) => labelsMatch(spec.selector, w.podLabels))) problems.push(`${k}: PDB ${o.metadata.name} selects no pods`);
        if ((o.kind === 'ScaledObject' || o.kind === 'HorizontalPodAutoscaler') && !find(objects, 'Deployment', spec.scaleTargetRef.name, o.metadata.namespace)) problems.push(`${k}: ${o.kind} ${o.metadata.name} scales a Deployment that does not exist`);
        if (o.kind === 'PodMonitor' && !workloads.some((w) => labelsMatch(spec.selector, w.podLabels))) problems.push(`${k}: PodMonitor ${o.metadata.name} selects no pods`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('deploys every app from the image its own Dockerfile builds', () => {
    for (const app of APPS) expect(existsSync(rel('apps', app, 'Dockerfile'))).toBe(true);
    for (const [k, objects] of rendered) {
      const tag = k.endsWith('/prod') || k.includes('prod-') ? '0.1.0' : 'dev';
      const images = workloadsOf(objects).flatMap((w) => [...w.podSpec.containers, ...(w.podSpec.initContainers ?? [])].map((c) => c.image));
      // Every image is blixard/<app>:<the overlay's tag>, and apps/<app>/Dockerfile builds it.
      for (const image of images) {
        const app = appOf(image);
        expect({ image, builtBy: app && existsSync(rel('apps', app, 'Dockerfile')) ? `apps/${app}/Dockerfile` : 'no Dockerfile' }).toEqual({ image: `blixard/${app}:${tag}`, builtBy: `apps/${app}/Dockerfile` });
      }
      // ... and every app runs: a Deployment per server, the migrate Job for the cli.
      const byApp = workloadsByApp(objects);
      for (const app of SERVERS) expect([app, byApp.get(app)?.kind]).toEqual([app, 'Deployment']);
      expect(byApp.get('cli')?.kind).toBe('Job');
    }
  });

  it('gives every container readiness and liveness probes on its own port, and resource requests and limits', () => {
    for (const [k, objects] of rendered) {
      for (const w of workloadsOf(objects)) {
        for (const c of [...w.podSpec.containers, ...(w.podSpec.initContainers ?? [])]) {
          const where = `${k} ${w.kind}/${w.name} container ${c.name}`;
          const quantities = { cpu: expect.any(String), memory: expect.any(String) };
          expect({ where, requests: c.resources?.requests, limits: c.resources?.limits }).toEqual({ where, requests: expect.objectContaining(quantities), limits: expect.objectContaining(quantities) });
          if (w.kind === 'Job') continue; // a one-shot command: nothing to probe
          const app = appOf(c.image)!;
          const portEnv = appImage(app).portEnv!;
          const port = Number(envOf(k, w).env[portEnv]);
          // The named port is where the app listens (its port variable), and both probes use it.
          expect([where, c.ports?.find((p) => p.name === 'http')?.containerPort]).toEqual([where, port]);
          const probe = (p: any) => p && { path: p.httpGet?.path, port: p.httpGet?.port };
          expect([where, probe(c.readinessProbe), probe(c.livenessProbe)]).toEqual([where, { path: '/readyz', port: 'http' }, { path: '/healthz', port: 'http' }]);
        }
      }
    }
  });

  it('sets every variable each service reads, with values its real entrypoint accepts', () => {
    const problems: string[] = [];
    const exemptionsUsed = new Set<number>();
    for (const [overlay, runs] of recordings) {
      const byApp = workloadsByApp(rendered.get(overlay)!);
      for (const [app, run] of runs) {
        // The entrypoint got to its first connection: everything it read was valid.
        if (!run.connected) problems.push(`${overlay} ${app}: did not start with the manifests' environment (exit ${run.exitCode}): ${run.stderr.trim().slice(0, 500)}`);
        const { env, problems: refs } = envOf(overlay, byApp.get(app)!);
        problems.push(...refs.map((p) => `${overlay}: ${p}`));
        for (const v of settingsRead(run)) {
          const i = MAY_BE_UNSET.findIndex((x) => x.where.test(overlay) && x.app.test(app) && x.env === v);
          if (i >= 0) exemptionsUsed.add(i);
          if (!(v in env) && !isExempt(overlay, app, v)) problems.push(`${overlay} ${app}: reads ${v}, which its manifests do not set`);
        }
      }
    }
    // The same keys, in every kustomization, hold values the configuration accepts.
    for (const [k, objects] of rendered) {
      for (const [app, w] of workloadsByApp(objects)) {
        const run = recordings.get('k8s/overlays/dev')!.get(app)!;
        const keys = settingsRead(run).map((v) => SETTINGS.get(v)!);
        try {
          loadConfig(keys, { ...appImage(app).env, ...envOf(k, w).env });
        } catch (err) {
          problems.push(`${k} ${app}: ${(err as Error).message}`);
        }
      }
    }
    expect(problems).toEqual([]);
    // Every exemption that applies to the manifests is still needed (compose checks its own).
    const unused = MAY_BE_UNSET.filter((x, i) => !exemptionsUsed.has(i) && x.where.test('k8s/overlays/dev'));
    expect(unused).toEqual([]);
  });

  it('scales each executor with KEDA on its own JetStream durable consumer', () => {
    for (const [k, objects] of rendered) {
      const byApp = workloadsByApp(objects);
      for (const app of EXECUTORS) {
        const w = byApp.get(app)!;
        const env = envOf(k, w).env;
        const backend = backendName(app);
        const names = subjects(env.BLIXARD_PREFIX);
        const scaled = objects.filter((o) => o.kind === 'ScaledObject' && (o.spec as any).scaleTargetRef.name === w.name);
        expect([k, app, scaled.length]).toEqual([k, app, 1]);
        const spec = scaled[0]!.spec as any;
        const trigger = spec.triggers.find((t: any) => t.type === 'nats-jetstream');
        const nats = serviceAddress(env.NATS_URL!.split(',')[0]!);
        expect([k, app, trigger?.metadata]).toEqual([k, app, expect.objectContaining({
          natsServerMonitoringEndpoint: `${nats.host}:8222`,
          account: '$G',
          stream: names.streams.dispatch,
          consumer: names.consumers.executor(backend),
        })]);
        expect(Number(trigger.metadata.lagThreshold)).toBeGreaterThan(0);
        // At least one: dispatch goes to registered workers only, so from zero nothing would
        // ever reach the consumer and KEDA would never scale up (see k8s/README.md).
        expect(spec.minReplicaCount).toBeGreaterThanOrEqual(1);
        expect(spec.maxReplicaCount).toBeGreaterThanOrEqual(spec.minReplicaCount);
        // The ScaledObject's HPA owns the count: a `replicas` in the Deployment would fight it.
        expect([k, app, (w.object.spec as any).replicas]).toEqual([k, app, undefined]);
      }
    }
  });

  it("offers scaling on the scheduler's pending-jobs metric through Prometheus", () => {
    // The metric and the status exist where the query says: the scheduler exports them.
    const schedulerSource = readdirSync(rel('apps', 'scheduler', 'src')).map((f) => readFileSync(rel('apps', 'scheduler', 'src', f), 'utf8')).join('\n');
    expect(schedulerSource).toContain("'blixard_queue_depth'");
    const objects = rendered.get('k8s/overlays/prod-with-prometheus')!;
    for (const app of EXECUTORS) {
      const so = objects.find((o) => o.kind === 'ScaledObject' && (o.spec as any).scaleTargetRef.name === app)!;
      const types = (so.spec as any).triggers.map((t: any) => t.type);
      expect([app, types]).toEqual([app, ['nats-jetstream', 'prometheus']]);
      const prom = (so.spec as any).triggers[1].metadata;
      expect(prom.query).toMatch(/blixard_queue_depth\{/);
      expect(prom.query).toContain(`backend="${backendName(app)}"`);
      expect(prom.query).toContain('status="PENDING"');
      expect(prom.serverAddress).toMatch(/^https?:\/\//);
      expect(Number(prom.threshold)).toBeGreaterThan(0);
    }
    // Prometheus scrapes the scheduler's pods on their named `http` port, /metrics.
    const monitor = objects.find((o) => o.kind === 'PodMonitor')!;
    const scheduler = workloadsOf(objects).find((w) => w.name === 'scheduler')!;
    expect(labelsMatch((monitor.spec as any).selector, scheduler.podLabels)).toBe(true);
    expect((monitor.spec as any).podMetricsEndpoints[0]).toMatchObject({ port: 'http', path: '/metrics' });
    // Without the component, no overlay depends on a Prometheus.
    for (const k of KUSTOMIZATIONS.filter((x) => !x.includes('prometheus'))) {
      expect(rendered.get(k)!.some((o) => o.kind === 'ScaledObject' && (o.spec as any).triggers.some((t: any) => t.type === 'prometheus'))).toBe(false);
    }
  });

  it('scales the gateway with an HPA and leaves the replica count to it', () => {
    for (const [k, objects] of rendered) {
      const hpa = objects.filter((o) => o.kind === 'HorizontalPodAutoscaler');
      expect([k, hpa.map((h) => (h.spec as any).scaleTargetRef)]).toEqual([k, [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'gateway' }]]);
      const spec = hpa[0]!.spec as any;
      expect(spec.minReplicas).toBeGreaterThanOrEqual(1);
      expect(spec.maxReplicas).toBeGreaterThan(spec.minReplicas);
      expect(spec.metrics.length).toBeGreaterThan(0);
      expect((find(objects, 'Deployment', 'gateway')!.spec as any).replicas).toBeUndefined();
    }
    expect((find(rendered.get('k8s/overlays/prod')!, 'HorizontalPodAutoscaler', 'gateway')!.spec as any).minReplicas).toBeGreaterThanOrEqual(2);
  });

  it('protects every Deployment with a PodDisruptionBudget', () => {
    for (const [k, objects] of rendered) {
      const pdbs = objects.filter((o) => o.kind === 'PodDisruptionBudget');
      for (const w of workloadsOf(objects).filter((x) => x.kind === 'Deployment')) {
        const covering = pdbs.filter((p) => labelsMatch((p.spec as any).selector, w.podLabels));
        expect([k, w.name, covering.length]).toEqual([k, w.name, 1]);
      }
    }
  });

  it('isolates the pods with NetworkPolicies that still let each reach what it uses', () => {
    for (const [k, objects] of rendered) {
      const deny = objects.find((o) => o.kind === 'NetworkPolicy' && Object.keys((o.spec as any).podSelector).length === 0 && !(o.spec as any).ingress && !(o.spec as any).egress);
      expect([k, (deny?.spec as any)?.policyTypes]).toEqual([k, ['Ingress', 'Egress']]);
      const run = recordings.get('k8s/overlays/dev')!;
      for (const w of workloadsOf(objects)) {
        const app = appOf(containerOf(w).image)!;
        const env = envOf(k, w).env;
        const pod = { namespace: w.namespace, labels: w.podLabels, ports: containerOf(w).ports };
        const reaches = (to: string, peer: Parameters<typeof networkAllows>[3]) => [k, app, to, networkAllows(objects, 'Egress', pod, peer)];
        expect(reaches('DNS', { namespace: 'kube-system', port: 53, protocol: 'UDP' })).toEqual([k, app, 'DNS', true]);
        const nats = serviceAddress(env.NATS_URL!);
        expect(reaches('NATS', nats)).toEqual([k, app, 'NATS', true]);
        if (env.OTEL_EXPORTER_OTLP_ENDPOINT) expect(reaches('OTLP', serviceAddress(env.OTEL_EXPORTER_OTLP_ENDPOINT))).toEqual([k, app, 'OTLP', true]);
        // Postgres: for exactly the apps that read DATABASE_URL (the executors need no database).
        if (run.get(app)!.reads.includes('DATABASE_URL')) expect(reaches('Postgres', serviceAddress(env.DATABASE_URL!))).toEqual([k, app, 'Postgres', true]);
        else if (app !== 'executor-process') expect(reaches('Postgres', { namespace: 'postgres', port: 5432 })).toEqual([k, app, 'Postgres', false]);
        // Nothing reaches a pod from another namespace, but clients the gateway and Prometheus /metrics.
        const from = (namespace: string) => networkAllows(objects, 'Ingress', pod, { namespace, port: 'http' });
        expect([k, app, 'from default', from('default')]).toEqual([k, app, 'from default', app === 'gateway']);
        if (w.kind === 'Deployment') expect([k, app, 'from monitoring', from('monitoring')]).toEqual([k, app, 'from monitoring', true]);
      }
      const podOf = (name: string) => {
        const w = workloadsOf(objects).find((x) => x.name === name)!;
        return { namespace: w.namespace, labels: w.podLabels };
      };
      // The Kubernetes API (outside the pod network) for executor-kubernetes only.
      expect(networkAllows(objects, 'Egress', podOf('executor-kubernetes'), { ip: '203.0.113.10', port: 443 })).toBe(true);
      expect(networkAllows(objects, 'Egress', podOf('scheduler'), { ip: '203.0.113.10', port: 443 })).toBe(false);
      // Webhooks to public addresses, never to private ones.
      expect(networkAllows(objects, 'Egress', podOf('notifier'), { ip: '203.0.113.10', port: 443 })).toBe(true);
      expect(networkAllows(objects, 'Egress', podOf('notifier'), { ip: '10.1.2.3', port: 443 })).toBe(false);
      expect(networkAllows(objects, 'Egress', podOf('notifier'), { ip: '169.254.169.254', port: 80 })).toBe(false);
    }
  });

  it('runs the migrations as a Job of the cli image', () => {
    for (const [k, objects] of rendered) {
      const job = workloadsOf(objects).find((w) => w.kind === 'Job')!;
      const c = containerOf(job);
      expect([k, appOf(c.image), c.command ?? appImage('cli').command]).toEqual([k, 'cli', ['node', 'apps/cli/dist/main.js', 'migrate']]);
      expect(job.podSpec.restartPolicy).toBe('Never');
      expect((job.object.spec as any).backoffLimit).toBeGreaterThan(0);
      expect('DATABASE_URL' in envOf(k, job).env).toBe(true);
    }
  });

  it('gives executor-kubernetes a ServiceAccount with exactly the API verbs it uses, and no other pod a token', () => {
    for (const [k, objects] of rendered) {
      const w = workloadsOf(objects).find((x) => x.name === 'executor-kubernetes')!;
      const account = w.podSpec.serviceAccountName!;
      expect(find(objects, 'ServiceAccount', account, w.namespace)).toBeDefined();
      const bindings = objects.filter((o) => o.kind === 'RoleBinding' && (o.subjects as any[]).some((s) => s.kind === 'ServiceAccount' && s.name === account && s.namespace === w.namespace));
      expect(bindings).toHaveLength(1);
      const role = find(objects, 'Role', (bindings[0] as any).roleRef.name, w.namespace)!;
      const granted = (role.rules as any[]).flatMap((r) => r.apiGroups.flatMap((g: string) => r.resources.flatMap((res: string) => r.verbs.map((v: string) => `${g}/${res}:${v}`))));
      const used = KUBE_API_PERMISSIONS.map((p) => `${p.apiGroup}/${p.resource}:${p.verb}`);
      expect([k, [...new Set(granted)].sort()]).toEqual([k, [...new Set(used)].sort()]);
      for (const other of workloadsOf(objects).filter((x) => x.name !== 'executor-kubernetes')) {
        expect([k, other.name, other.podSpec.automountServiceAccountToken]).toEqual([k, other.name, false]);
      }
    }
  });

  it('runs every pod as a non-root user, but executor-docker (root on its node through the engine socket anyway)', () => {
    for (const [k, objects] of rendered) {
      for (const w of workloadsOf(objects)) {
        const sc = w.podSpec.securityContext ?? {};
        const nonRoot = sc.runAsNonRoot === true && typeof sc.runAsUser === 'number' && sc.runAsUser !== 0;
        expect([k, w.name, nonRoot]).toEqual([k, w.name, w.name !== 'executor-docker']);
        for (const c of w.podSpec.containers) expect([k, w.name, c.securityContext?.allowPrivilegeEscalation]).toEqual([k, w.name, false]);
      }
    }
  });

  // -------------------------------------------------------------------------------------------

  describe('docker-compose.yml', () => {
    const compose = parse(readFileSync(rel('docker-compose.yml'), 'utf8'), { merge: true, maxAliasCount: -1 }) as { services: Record<string, any> };
    const services = compose.services;
    const serviceOfApp = (app: string) => Object.entries(services).find(([, s]) => typeof s.image === 'string' && s.build?.dockerfile === `apps/${app}/Dockerfile`);
    const baseService = Object.entries(services).find(([, s]) => s.build?.dockerfile === 'k8s/docker/base.Dockerfile');
    const envFileOf = (s: any): Record<string, string> => {
      const out: Record<string, string> = {};
      for (const f of [s.env_file ?? []].flat()) {
        for (const line of readFileSync(rel(f), 'utf8').split('\n')) {
          const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
          if (m) out[m[1]!] = m[2]!;
        }
      }
      return out;
    };
    const envOfService = (s: any): Record<string, string> => ({ ...envFileOf(s), ...Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, String(v ?? '')])) });

    it('runs Postgres, NATS with JetStream and monitoring, Jaeger, the migrations and every app from its own Dockerfile', () => {
      expect(services.postgres?.healthcheck).toBeDefined();
      expect(services.nats?.command).toEqual(expect.arrayContaining(['-js', '-m', '8222']));
      expect(services.nats?.healthcheck).toBeDefined();
      expect(services.jaeger?.environment?.COLLECTOR_OTLP_ENABLED).toBe('true');
      expect(baseService).toBeDefined();
      const [baseName, base] = baseService!;
      expect(base.command).toEqual(['node', 'apps/cli/dist/main.js', 'migrate']);
      for (const app of SERVERS) {
        const entry = serviceOfApp(app);
        expect([app, entry?.[1].image]).toEqual([app, `blixard/${app}:dev`]);
        const s = entry![1];
        // Built on the shared recipe's image, which the base service builds first.
        expect([app, s.build.context, s.build.additional_contexts]).toEqual([app, '.', { 'blixard-base': `service:${baseName}` }]);
        expect([app, s.healthcheck?.test]).toEqual([app, ['CMD', 'node', 'k8s/docker/probe.js', '/readyz']]);
        expect(s.depends_on?.nats?.condition).toBe('service_healthy');
        const needsDb = 'DATABASE_URL' in envOfService(s);
        if (needsDb) expect([app, s.depends_on?.migrate?.condition ?? s.depends_on?.[baseName]?.condition]).toEqual([app, 'service_completed_successfully']);
      }
    });

    it('lets every executor scale with --scale (no fixed container name or host port)', () => {
      for (const app of EXECUTORS) {
        const s = serviceOfApp(app)![1];
        expect([app, s.container_name, s.ports]).toEqual([app, undefined, undefined]);
        expect(s.stop_grace_period).toBeDefined();
      }
    });

    it('sets every variable each service reads, with values its real entrypoint accepts', async () => {
      const problems: string[] = [];
      const used = new Set<number>();
      const runs = await inBatches(SERVERS.concat(['cli']), 3, async (app) => {
        const [, s] = app === 'cli' ? baseService! : serviceOfApp(app)!;
        const image = appImage(app);
        const env = envOfService(s);
        const command = s.command ?? image.command;
        return { app, env, run: await recordConfigReads(command, await isolatedEnv({ ...image.env, ...env }, scratch), ROOT) };
      });
      for (const { app, env, run } of runs) {
        if (!run.connected) problems.push(`compose ${app}: did not start with its compose environment (exit ${run.exitCode}): ${run.stderr.trim().slice(0, 500)}`);
        for (const v of settingsRead(run)) {
          const i = MAY_BE_UNSET.findIndex((x) => x.where.test('compose') && x.app.test(app) && x.env === v);
          if (i >= 0) used.add(i);
          if (!(v in env) && i < 0) problems.push(`compose ${app}: reads ${v}, which docker-compose.yml does not set`);
        }
      }
      expect(problems).toEqual([]);
      expect(MAY_BE_UNSET.filter((x, i) => x.where.test('compose') && !x.where.test('k8s/overlays/dev') && !used.has(i))).toEqual([]);
    }, 120_000);
  });
});

// ---------------------------------------------------------------------------------------------

describe('Dockerfiles', () => {
  const base = parseDockerfile(rel('k8s', 'docker', 'base.Dockerfile'));
  const stages = Math.max(...base.map((i) => i.stage)) + 1;
  const runtime = base.filter((i) => i.stage === stages - 1);

  it('share one multi-stage recipe: production dependencies only, the Prisma client generated, a non-root user and a HEALTHCHECK', () => {
    expect(stages).toBeGreaterThanOrEqual(3);
    const runs = base.filter((i) => i.instruction === 'RUN').map((i) => i.args).join('\n');
    // Build: everything installed (postinstall runs `prisma generate`), checked, compiled.
    expect(readFileSync(rel('package.json'), 'utf8')).toMatch(/"postinstall": "prisma generate/);
    expect(runs).toMatch(/pnpm install --frozen-lockfile --offline/);
    expect(runs).toContain('libs/db/src/generated/prisma/client.ts');
    // Runtime dependencies from a production-only install, pruned of optional peers.
    expect(runs).toMatch(/pnpm install [^\n;]*--prod/);
    expect(runs).toContain('k8s/docker/prune-node-modules.js');
    // The runtime stage copies the staged output only, runs as uid 1000, has a HEALTHCHECK.
    expect(runtime[0]!.args).toMatch(/^\$\{NODE_IMAGE\}/);
    expect(runtime.filter((i) => i.instruction === 'COPY').every((i) => i.args.startsWith('--from='))).toBe(true);
    expect(runtime.find((i) => i.instruction === 'USER')?.args).toBe('1000:1000');
    expect(runtime.find((i) => i.instruction === 'HEALTHCHECK')?.args).toContain('"k8s/docker/probe.js", "/healthz"');
    expect(runtime.some((i) => i.instruction === 'RUN')).toBe(false);
  });

  it('give each app a Dockerfile of its own on top of the recipe, starting its built entrypoint on its own port', () => {
    const dockerignore = readFileSync(rel('.dockerignore'), 'utf8');
    expect(dockerignore).toMatch(/^\*\*\/node_modules$/m);
    expect(dockerignore).toMatch(/^\*\*\/dist$/m);
    for (const app of APPS) {
      const own = parseDockerfile(rel('apps', app, 'Dockerfile'));
      // Thin: FROM the recipe's image, no build steps of its own (nothing copied between them).
      expect([app, own.filter((i) => i.instruction === 'FROM').map((i) => i.args)]).toEqual([app, ['blixard-base']]);
      expect([app, own.filter((i) => ['RUN', 'COPY', 'ADD'].includes(i.instruction))]).toEqual([app, []]);
      const image = appImage(app);
      expect([app, image.command.slice(0, 2)]).toEqual([app, ['node', `apps/${app}/dist/main.js`]]);
      expect(existsSync(rel('apps', app, 'src', 'main.ts'))).toBe(true);
      if (app === 'cli') {
        expect(own.find((i) => i.instruction === 'HEALTHCHECK')?.args).toBe('NONE');
        continue;
      }
      // Its port variable is a Blixard setting, set in the image and exposed.
      expect([app, SETTINGS.has(image.portEnv ?? '')]).toEqual([app, true]);
      expect([app, Number(image.env[image.portEnv!])]).toEqual([app, image.expose]);
    }
  });
});

/** A backend's name, as its class declares it (`readonly name = 'process'`). */
function backendName(app: string): string {
  const dir = rel('apps', app, 'src');
  for (const f of readdirSync(dir).filter((x) => x.endsWith('-backend.ts'))) {
    const m = /readonly name(?::\s*string)?\s*=\s*'([a-z0-9-]+)'/.exec(readFileSync(path.join(dir, f), 'utf8'));
    if (m) return m[1]!;
  }
  throw new Error(`apps/${app}/src: no *-backend.ts declares the backend's name`);
}
