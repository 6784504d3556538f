import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { BlixardClient } from '@blixard/client';
import { repoRoot, runCommand, waitFor } from '../src';

/**
 * docker-compose.yml, brought up as its header says (`up --scale executor-process=3`) against
 * podman's Docker-compatible engine (.ci/podman-engine.sh), with the images .ci/build-images.sh
 * builds (CI builds them before the tests: every layer is cached here). What this machine lacks,
 * and what stands in for it:
 * - Compose v2 (the `docker compose` plugin) has no Debian package: Debian's Compose v1
 *   (`docker-compose` 1.29, installed by .ci/podman-engine.sh) runs it. v1 rejects two keys of
 *   the file that v2 needs: the top-level `name` (given here as `-p`) and `build.additional_contexts`
 *   (how v2 builds every app image on the base image: v1 builds nothing here, the images exist).
 *   It reads a copy of docker-compose.yml without exactly those two keys; everything else
 *   (services, commands, environment, healthchecks, dependencies, ports, volumes) is the file's.
 * - postgres, nats and jaeger cannot be pulled: .ci/compose.ci.yml swaps their `image:` lines for
 *   local stand-ins (.ci/compose-stand-ins.sh; the Jaeger one is an OTLP/HTTP sink, not Jaeger).
 * - podman runs healthchecks from systemd timers, and there is no systemd here: a driver below
 *   runs each container's own healthcheck through podman's API, container after container, a
 *   round every 2 s at most, as the timers would (more often than the file's 5-10 s intervals:
 *   "healthy" comes sooner, nothing else changes; podman keeps the streaks, retries and start
 *   periods).
 * The host ports are the file's own (8080, 15432, 14222, 18222, 16686): they must be free.
 */
const ROOT = repoRoot();
const COMPOSE_FILE = path.join(ROOT, 'docker-compose.yml');
const OVERRIDE_FILE = path.join(ROOT, '.ci', 'compose.ci.yml');
const PROJECT = `blixard-ci-${randomBytes(3).toString('hex')}`;
const EXECUTORS = 3;
const BUILD_TIMEOUT_MS = 25 * 60_000;
/** `up` returns once every container started and each dependency condition held. */
const UP_TIMEOUT_MS = 240_000;
/** A round of healthchecks starts at most this often (each check takes about a second). */
const HEALTH_TICK_MS = 2000;


/** One call to the engine's API on its unix socket (Docker's API; podman's own under /v4.0.0/libpod). */
function engineApi<T = any>(socketPath: string, method: string, apiPath: string, timeoutMs = 30_000): Promise<{ status: number; body: T }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path: apiPath, timeout: timeoutMs }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => {
        let body: any = text;
        try {
          body = text ? JSON.parse(text) : undefined;
        } catch {
          // not JSON: kept as text
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${apiPath}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

const labelFilter = (extra: Record<string, string[]> = {}) =>
  encodeURIComponent(JSON.stringify({ label: [`com.docker.compose.project=${PROJECT}`], ...extra }));

/**
 * Stands in for podman's systemd healthcheck timers: every tick, each running container of the
 * project runs its own healthcheck (podman records the result exactly as a timer's run would).
 */
class HealthcheckDriver {
  private stopped = false;
  private loop: Promise<void> | undefined;

  constructor(private readonly socket: string) {}

  start(): void {
    this.loop = (async () => {
      while (!this.stopped) {
        const started = Date.now();
        await this.tick().catch(() => undefined);
        await new Promise((r) => setTimeout(r, Math.max(0, HEALTH_TICK_MS - (Date.now() - started))));
      }
    })();
  }

  private async tick(): Promise<void> {
    const { body } = await engineApi<{ Id: string }[]>(this.socket, 'GET', `/containers/json?filters=${labelFilter({ status: ['running'] })}`);
    // Two at a time: the probes are Node processes, and the machine has two cores.
    const ids = (body ?? []).map((c) => c.Id);
    for (let i = 0; i < ids.length && !this.stopped; i += 2) {
      // 409: the container has no healthcheck (jaeger).
      await Promise.all(ids.slice(i, i + 2).map((id) => engineApi(this.socket, 'GET', `/v4.0.0/libpod/containers/${id}/healthcheck`).catch(() => undefined)));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}

/** Fails with the reason when something listens on a host port the compose file publishes. */
function assertPortFree(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(`host port ${host}:${port}, which docker-compose.yml publishes, is taken (${err.code}): stop what listens there`)));
    server.listen(port, host, () => server.close(() => resolve()));
  });
}

interface ContainerState {
  id: string;
  name: string;
  service: string;
  hostname: string;
  status: string;
  exitCode: number;
  health: string | undefined;
}

describe('docker-compose.yml (`up --scale executor-process=3`)', () => {
  const compose = parse(readFileSync(COMPOSE_FILE, 'utf8'), { merge: true, maxAliasCount: -1 }) as { name?: string; services: Record<string, any> };
  /** The services `up` starts: those outside a profile. */
  const defaultServices = Object.entries(compose.services).filter(([, s]) => !s.profiles).map(([name]) => name).sort();
  let engineEnv: NodeJS.ProcessEnv;
  let socket: string;
  let workDir: string;
  let composeArgs: string[];
  let driver: HealthcheckDriver | undefined;
  let upOk = false;
  let apiKey: string;
  let client: BlixardClient;
  const wasmModules = path.join(ROOT, 'wasm-modules');
  const hadWasmModules = existsSync(wasmModules);

  const dockerCompose = (args: string[], timeoutMs = 120_000) => runCommand('docker-compose', [...composeArgs, ...args], engineEnv, timeoutMs);

  const containers = async (): Promise<ContainerState[]> => {
    const { body } = await engineApi<{ Id: string }[]>(socket, 'GET', `/containers/json?all=1&filters=${labelFilter()}`);
    return Promise.all(
      body.map(async ({ Id }) => {
        const { body: c } = await engineApi(socket, 'GET', `/containers/${Id}/json`);
        return {
          id: c.Id,
          name: String(c.Name).replace(/^\//, ''),
          service: c.Config.Labels['com.docker.compose.service'],
          hostname: c.Config.Hostname,
          status: c.State.Status,
          exitCode: c.State.ExitCode,
          // podman reports an empty status for a container without a healthcheck.
          health: c.State.Health?.Status || undefined,
        };
      }),
    );
  };

  /** What a failure message needs: each container's state and the tail of its log. */
  const diagnostics = async (): Promise<string> => {
    const states = await containers().catch(() => [] as ContainerState[]);
    const logs = await dockerCompose(['logs', '--no-color', '--tail', '15'], 60_000).catch(() => ({ stdout: '', stderr: '' }));
    return `containers:\n${states.map((c) => `  ${c.name}: ${c.status} (exit ${c.exitCode}) health=${c.health ?? '-'}`).join('\n')}\nlogs:\n${(logs.stdout + logs.stderr).slice(-8000)}`;
  };

  /** docker-compose down -v, then whatever of the project is still there, by its label. */
  const takeDown = async (): Promise<string> => {
    await driver?.stop();
    const down = await dockerCompose(['down', '--volumes', '--remove-orphans'], 180_000);
    const leftovers: string[] = [];
    for (const c of (await engineApi<{ Id: string; Names: string[] }[]>(socket, 'GET', `/containers/json?all=1&filters=${labelFilter()}`)).body ?? []) {
      leftovers.push(`container ${c.Names.join(',')}`);
      await engineApi(socket, 'DELETE', `/containers/${c.Id}?force=true&v=true`);
    }
    for (const v of (await engineApi<{ Volumes: { Name: string }[] | null }>(socket, 'GET', `/volumes?filters=${labelFilter()}`)).body?.Volumes ?? []) {
      leftovers.push(`volume ${v.Name}`);
      await engineApi(socket, 'DELETE', `/volumes/${encodeURIComponent(v.Name)}?force=true`);
    }
    for (const n of (await engineApi<{ Id: string; Name: string }[]>(socket, 'GET', `/networks?filters=${labelFilter()}`)).body ?? []) {
      leftovers.push(`network ${n.Name}`);
      await engineApi(socket, 'DELETE', `/networks/${n.Id}`);
    }
    return `${down.code === 0 ? '' : `docker-compose down exited ${down.code}: ${down.stderr.slice(-2000)}\n`}${leftovers.join('\n')}`;
  };

  beforeAll(async () => {
    // The engine (installs podman, runc and docker-compose when missing, and starts the service).
    const engine = await runCommand(path.join(ROOT, '.ci', 'podman-engine.sh'), ['env']);
    if (engine.code !== 0) throw new Error(`.ci/podman-engine.sh env failed (exit ${engine.code}):\n${engine.stderr.slice(-3000)}`);
    const vars = Object.fromEntries([...engine.stdout.matchAll(/^export ([A-Z_]+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!.replace(/^'(.*)'$/, '$1')]));
    engineEnv = { ...process.env, ...vars };
    socket = vars.BLIXARD_DOCKER_SOCKET!;
    const version = await runCommand('docker-compose', ['version', '--short'], engineEnv).catch((e: Error) => ({ code: -1, stdout: '', stderr: e.message }));
    if (version.code !== 0) {
      throw new Error(`docker-compose (Compose v1) is not installed: .ci/podman-engine.sh installs it as root with apt-get (${version.stderr.trim()})`);
    }
    process.stdout.write(`compose: docker-compose ${version.stdout.trim()} against ${vars.DOCKER_HOST}, project ${PROJECT}\n`);

    // The images: every layer cached when nothing changed since CI's pre-build.
    let started = Date.now();
    const build = await runCommand(path.join(ROOT, '.ci', 'build-images.sh'), [], engineEnv, BUILD_TIMEOUT_MS);
    if (build.code !== 0) throw new Error(`.ci/build-images.sh failed (exit ${build.code}):\n${build.stderr.slice(-5000)}`);
    const standIns = await runCommand(path.join(ROOT, '.ci', 'compose-stand-ins.sh'), [], engineEnv, BUILD_TIMEOUT_MS);
    if (standIns.code !== 0) throw new Error(`.ci/compose-stand-ins.sh failed (exit ${standIns.code}):\n${standIns.stderr.slice(-5000)}`);
    const sizes = await runCommand(path.join(ROOT, '.ci', 'compose-stand-ins.sh'), ['sizes'], engineEnv);
    process.stdout.write(`images ready in ${((Date.now() - started) / 1000).toFixed(0)} s; stand-ins:\n${sizes.stdout}`);

    // Compose v1's copy of the file: the same document without the two keys only v2 knows.
    const v1 = parse(readFileSync(COMPOSE_FILE, 'utf8'), { merge: true, maxAliasCount: -1 });
    delete v1.name;
    for (const s of Object.values<any>(v1.services)) if (s.build) delete s.build.additional_contexts;
    workDir = mkdtempSync(path.join(tmpdir(), 'blixard-compose-'));
    const v1File = path.join(workDir, 'docker-compose.v1.json');
    // JSON (a YAML subset): PyYAML reads it without YAML 1.1 surprises (`no` as false).
    writeFileSync(v1File, JSON.stringify(v1, null, 2));
    composeArgs = ['--project-directory', ROOT, '-p', PROJECT, '-f', v1File, '-f', OVERRIDE_FILE];

    for (const name of defaultServices) {
      for (const spec of compose.services[name].ports ?? []) {
        const parts = String(spec).split(':');
        if (parts.length === 3) await assertPortFree(parts[0]!, Number(parts[1]));
        else if (parts.length === 2) await assertPortFree('0.0.0.0', Number(parts[0]));
      }
    }

    driver = new HealthcheckDriver(socket);
    driver.start();
    started = Date.now();
    const up = await dockerCompose(['up', '--detach', '--no-build', '--scale', `executor-process=${EXECUTORS}`], UP_TIMEOUT_MS);
    if (up.code !== 0) {
      throw new Error(`docker-compose up exited ${up.code} after ${((Date.now() - started) / 1000).toFixed(0)} s:\n${up.stderr.slice(-3000)}\n${await diagnostics()}`);
    }
    upOk = true;
    process.stdout.write(`docker-compose up: ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
  }, 2 * BUILD_TIMEOUT_MS + UP_TIMEOUT_MS + 60_000);

  afterAll(async () => {
    if (socket && composeArgs) await takeDown().catch(() => undefined);
    await driver?.stop();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
    // The engine makes missing bind-mount sources (executor-wasm's ./wasm-modules).
    if (!hadWasmModules && existsSync(wasmModules) && readdirSync(wasmModules).length === 0) rmdirSync(wasmModules);
  }, 240_000);

  it('runs every service of the file: migrations applied, each service healthy, the executor scaled to three', async () => {
    expect(upOk).toBe(true);
    const all = await waitFor('every container with a healthcheck healthy', async () => {
      const now = await containers();
      return now.every((c) => c.service === 'migrate' || c.health === undefined || c.health === 'healthy') ? now : undefined;
    }, 90_000, 1000).catch(async (err: Error) => {
      throw new Error(`${err.message}\n${await diagnostics()}`);
    });
    const count = (service: string) => all.filter((c) => c.service === service).length;
    expect([...new Set(all.map((c) => c.service))].sort()).toEqual(defaultServices);
    for (const service of defaultServices) expect([service, count(service)]).toEqual([service, service === 'executor-process' ? EXECUTORS : 1]);

    // The migrations ran to completion; everything else runs, and every Blixard service and the
    // stand-ins for Postgres and NATS pass their compose healthcheck.
    const migrate = all.find((c) => c.service === 'migrate')!;
    expect([migrate.status, migrate.exitCode]).toEqual(['exited', 0]);
    for (const c of all.filter((x) => x.service !== 'migrate')) {
      expect([c.name, c.status]).toEqual([c.name, 'running']);
      const hasHealthcheck = Boolean(compose.services[c.service].healthcheck?.test);
      expect([c.name, c.health]).toEqual([c.name, hasHealthcheck ? 'healthy' : undefined]);
    }
    // `docker-compose ps` says the same.
    const ps = await dockerCompose(['ps']);
    expect(ps.code).toBe(0);
    for (const c of all.filter((x) => x.health)) expect(ps.stdout).toMatch(new RegExp(`${c.name}\\s.*\\(healthy\\)`));
  });

  it('registers each executor-process container as a worker of its own, seen through the gateway', async () => {
    // An API key, made with the cli inside the gateway container (its DATABASE_URL is compose's).
    // Up to three tries: `exec` through podman's API failed once in CI on a loaded machine (exit 1).
    const createKey = () => dockerCompose(['exec', '-T', 'gateway', 'node', 'apps/cli/dist/main.js', 'keys', 'create', '--tenant', 'compose', '--scopes', 'jobs:read,jobs:write,workers:read']);
    let keys = await createKey();
    for (let tries = 1; keys.code !== 0 && tries < 3; tries++) {
      process.stderr.write(`keys create in the gateway container exited ${keys.code} (try ${tries}): ${keys.stderr.slice(-1000)}\n`);
      await new Promise((r) => setTimeout(r, 2000));
      keys = await createKey();
    }
    if (keys.code !== 0) throw new Error(`keys create in the gateway container exited ${keys.code}:\n${keys.stderr.slice(-2000)}\n${keys.stdout.slice(-1000)}`);
    apiKey = keys.stdout.trim().split('\n').pop()!;
    expect(apiKey).toMatch(/^bk_/);
    client = new BlixardClient('http://127.0.0.1:8080', { apiKey });

    const hosts = (await containers()).filter((c) => c.service === 'executor-process').map((c) => c.hostname).sort();
    expect(new Set(hosts).size).toBe(EXECUTORS);
    const workers = await waitFor(`${EXECUTORS} process workers online`, async () => {
      const online = (await client.workers()).filter((w) => w.backend === 'process' && w.status === 'ONLINE');
      return online.length >= EXECUTORS ? online : undefined;
    }, 60_000, 500);
    expect(workers).toHaveLength(EXECUTORS);
    expect(new Set(workers.map((w) => w.id)).size).toBe(EXECUTORS);
    expect(workers.map((w) => w.host).sort()).toEqual(hosts);
  });

  it('runs a job submitted through the gateway to COMPLETED in one of the executor-process containers', async () => {
    const workers = (await client.workers()).filter((w) => w.backend === 'process' && w.status === 'ONLINE');
    const job = await client.submit({ backend: 'process', payload: { command: ['node', '-e', 'process.stdout.write(require("node:os").hostname())'] } });
    const done = await client.waitForTerminal(job.id, { timeoutMs: 60_000, intervalMs: 250 });
    expect([done.status, done.error]).toEqual(['COMPLETED', null]);
    const worker = workers.find((w) => w.id === done.workerId);
    expect(worker).toBeDefined();
    // It printed the name of the container it ran in: that worker's.
    expect(done.stdoutTail?.trim()).toBe(worker!.host);
  });

  it('sends the services\' traces to the jaeger service (OTLP/HTTP)', async () => {
    // The stand-in lists the services whose spans arrived, as Jaeger's /api/services does.
    const services = await waitFor('spans from the gateway, the scheduler and an executor', async () => {
      const res = await fetch('http://127.0.0.1:16686/api/services', { signal: AbortSignal.timeout(2000) }).catch(() => undefined);
      const data = res?.ok ? ((await res.json()) as { data: string[] }).data : [];
      return ['gateway', 'scheduler', 'executor-process'].every((s) => data.includes(s)) ? data : undefined;
    }, 30_000, 500);
    expect(services).toEqual(expect.arrayContaining(['gateway', 'scheduler', 'executor-process']));
  });

  it('takes everything down with `down --volumes`: no container, volume or network of the project is left', async () => {
    const leftovers = await takeDown();
    expect(leftovers).toBe('');
    expect((await containers())).toEqual([]);
  }, 240_000);
});
