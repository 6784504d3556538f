import { createServer, Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { readdirSync, existsSync } from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import { BlixardClient } from '@blixard/client';
import { createTestInfra, freePort, repoRoot, runCommand, runOk, TestInfra, waitFor } from '../src';

/**
 * The images, built and run: .ci/build-images.sh builds the shared recipe and every app's
 * Dockerfile (with podman here, where no registry is reachable: from a Node base image made of
 * this machine's own Node and Debian files; CI runs the script before the tests, so this run
 * finds every layer cached). Then the cli image migrates a database and the service images run
 * against this machine's Postgres and NATS (host network) until a job goes through them.
 */
const ROOT = repoRoot();
const APPS = readdirSync(path.join(ROOT, 'apps')).filter((a) => existsSync(path.join(ROOT, 'apps', a, 'Dockerfile'))).sort();
/** Budget per image: Node (~120-190 MB) plus the production dependencies of every app. */
const MAX_IMAGE_MB = 400;
const BUILD_TIMEOUT_MS = 25 * 60_000;



async function answers(url: string): Promise<boolean> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(2000) })).ok;
  } catch {
    return false;
  }
}

describe('container images', () => {
  let engineEnv: NodeJS.ProcessEnv;
  let engine: string;
  let infra: TestInfra;
  let imageDbUrl: string;
  let fakeKubeApi: Server;
  const containers: string[] = [];
  const suffix = randomBytes(3).toString('hex');
  const images: Record<string, { Size: number; Config: Record<string, any>; RootFS: { Layers: string[] }; Healthcheck?: { Test: string[] } }> = {};
  const ports: Record<string, number> = {};

  const inspect = async (ref: string) => JSON.parse(await runOk(engine, ['image', 'inspect', ref], engineEnv))[0];
  const healthcheckOf = (app: string) => images[app]!.Config.Healthcheck?.Test ?? images[app]!.Healthcheck?.Test;

  beforeAll(async () => {
    // Build: every layer is cached when nothing changed since the last build (CI's pre-build).
    const started = Date.now();
    const build = await runCommand(path.join(ROOT, '.ci', 'build-images.sh'), [], process.env, BUILD_TIMEOUT_MS);
    if (build.code !== 0) throw new Error(`.ci/build-images.sh failed (exit ${build.code}):\n${build.stderr.slice(-5000)}`);
    process.stdout.write(`.ci/build-images.sh: ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
    const vars = Object.fromEntries((await runOk(path.join(ROOT, '.ci', 'build-images.sh'), ['env'])).trim().split('\n').map((l) => l.split('=', 2) as [string, string]));
    engine = vars.CONTAINER_ENGINE!;
    engineEnv = { ...process.env, ...vars };
    for (const app of ['base', ...APPS]) images[app] = await inspect(`blixard/${app}:dev`);

    infra = await createTestInfra('deploy images');
    // A database of its own, which the cli image creates and migrates.
    imageDbUrl = infra.databaseUrl.replace(/\/([^/?]+)(\?|$)/, '/$1_img$2');
    fakeKubeApi = createServer((req, res) => {
      // executor-kubernetes lists the Jobs it left behind when it starts: there are none.
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ apiVersion: 'v1', kind: 'List', metadata: { resourceVersion: '1' }, items: [] }));
    });
    await new Promise<void>((resolve) => fakeKubeApi.listen(0, '127.0.0.1', resolve));
  }, BUILD_TIMEOUT_MS + 60_000);

  afterAll(async () => {
    for (const c of containers) await runCommand(engine, ['rm', '-f', c], engineEnv);
    fakeKubeApi?.close();
    await infra?.cleanup();
    if (imageDbUrl) {
      const admin = new Client({ connectionString: infra.databaseUrl.replace(/\/[^/?]+(\?|$)/, '/postgres$1') });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS "${new URL(imageDbUrl).pathname.slice(1)}" WITH (FORCE)`).catch(() => undefined);
      await admin.end();
    }
  });

  it('builds an image per app from its own Dockerfile, all sharing the recipe\'s layers', () => {
    const mb = (n: number) => n / 1e6;
    const base = images.base!;
    const rows = APPS.map((app) => {
      const image = images[app]!;
      // Every layer of the shared recipe, then the app's own (metadata only: a few bytes).
      expect([app, image.RootFS.Layers.slice(0, base.RootFS.Layers.length)]).toEqual([app, base.RootFS.Layers]);
      return `  blixard/${app}:dev ${mb(image.Size).toFixed(1)} MB (own layers: ${mb(image.Size - base.Size).toFixed(3)} MB)`;
    });
    process.stdout.write(`image sizes (${engine}); all share blixard-base (${mb(base.Size).toFixed(1)} MB):\n${rows.join('\n')}\n`);
    for (const app of APPS) expect([app, mb(images[app]!.Size) < MAX_IMAGE_MB]).toEqual([app, true]);
  });

  it('runs as uid 1000, with a HEALTHCHECK on /healthz in every server image', () => {
    for (const app of APPS) {
      expect([app, images[app]!.Config.User]).toEqual([app, '1000:1000']);
      const test = healthcheckOf(app);
      if (app === 'cli') expect([app, test?.[0] ?? 'NONE']).toEqual([app, 'NONE']);
      else expect([app, test]).toEqual([app, ['CMD', 'node', 'k8s/docker/probe.js', '/healthz']]);
    }
  });

  it('holds production dependencies only, with the Prisma client generated at build', async () => {
    const script = `
      const fs = require('fs');
      const resolves = (m) => { try { require.resolve(m); return true; } catch { return false; } };
      console.log(JSON.stringify({
        dev: ['typescript', 'prisma', 'jest', '@swc/core', '@types/node'].filter(resolves),
        prismaRuntime: resolves('@prisma/client/runtime/client'),
        generatedClient: fs.existsSync('libs/db/dist/generated/prisma/client.js'),
        migrations: fs.readdirSync('prisma/migrations').length,
        sources: fs.existsSync('apps/gateway/src') || fs.existsSync('libs/db/src/prisma.ts'),
      }));`;
    const out = JSON.parse(await runOk(engine, ['run', '--rm', '--network', 'none', 'blixard/base:dev', 'node', '-e', script], engineEnv));
    expect(out).toEqual({ dev: [], prismaRuntime: true, generatedClient: true, migrations: expect.any(Number), sources: false });
    expect(out.migrations).toBeGreaterThan(0);
  });

  it('migrates with the cli image, then runs every service image until a job goes through them', async () => {
    // The cli image's default command: `blixard migrate` (creates the database when missing).
    const migrate = await runOk(engine, ['run', '--rm', '--network', 'host', '-e', `DATABASE_URL=${imageDbUrl}`, 'blixard/cli:dev'], engineEnv);
    expect(migrate).toMatch(/applied \d+ migration/);
    // The API needs a key: made with the cli image too (`blixard keys create` prints only the token on stdout).
    const apiKey = (await runOk(engine, ['run', '--rm', '--network', 'host', '-e', `DATABASE_URL=${imageDbUrl}`, 'blixard/cli:dev', 'keys', 'create', '--tenant', 'images', '--scopes', 'jobs:read,jobs:write,workers:read'], engineEnv)).trim().split('\n').pop()!;
    expect(apiKey).toMatch(/^bk_/);

    const portEnv: Record<string, string> = { gateway: 'GATEWAY_PORT', scheduler: 'SCHEDULER_PORT', 'worker-registry': 'REGISTRY_PORT', notifier: 'NOTIFIER_PORT' };
    const servers = APPS.filter((a) => a !== 'cli');
    for (const app of servers) {
      ports[app] = await freePort();
      const name = `blixard-test-${app}-${suffix}`;
      const args = ['run', '-d', '--name', name, '--network', 'host',
        '-e', `DATABASE_URL=${imageDbUrl}`, '-e', `NATS_URL=${infra.natsUrl}`, '-e', `BLIXARD_PREFIX=${infra.prefix}`,
        '-e', `${portEnv[app] ?? 'EXECUTOR_PORT'}=${ports[app]}`, '-e', 'LOG_LEVEL=warn', '-e', 'HEARTBEAT_INTERVAL_MS=500',
        // As the other integration tests do: no API keys to provision (auth is tested elsewhere).
        '-e', 'AUTH_DISABLED=true'];
      if (app === 'executor-docker') {
        // Root, with the engine's socket, as in k8s/base/executor-docker.yaml.
        const socket = engineEnv.CONTAINERS_CONF ? path.join(path.dirname(engineEnv.CONTAINERS_CONF), 'podman.sock') : '/var/run/docker.sock';
        args.push('--user', '0:0', '-v', `${socket}:/var/run/docker.sock`, '-e', 'DOCKER_SCRATCH_DIR=/tmp');
      }
      if (app === 'executor-kubernetes') {
        const address = fakeKubeApi.address();
        args.push('-e', `KUBE_API_URL=http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`, '-e', 'KUBE_NAMESPACE=blixard-test');
      }
      containers.push(name);
      await runOk(engine, [...args, `blixard/${app}:dev`], engineEnv);
    }
    for (const app of servers) {
      const url = `http://127.0.0.1:${ports[app]}`;
      await waitFor(`${app} container: ${url}/readyz`, async () => {
        if (await answers(`${url}/readyz`)) return true;
        const state = await runCommand(engine, ['inspect', '--format', '{{.State.Running}}', `blixard-test-${app}-${suffix}`], engineEnv);
        if (state.stdout.trim() === 'false') {
          const logs = await runCommand(engine, ['logs', `blixard-test-${app}-${suffix}`], engineEnv);
          throw new Error(`${app} container exited:\n${(logs.stdout + logs.stderr).slice(-2000)}`);
        }
        return false;
      }, 90_000, 250);
      expect(await answers(`${url}/healthz`)).toBe(true);
    }

    // The image's own HEALTHCHECK passes in the running gateway container.
    const gateway = `blixard-test-gateway-${suffix}`;
    if (engine === 'podman') await runOk(engine, ['healthcheck', 'run', gateway], engineEnv);
    else await waitFor('the gateway container healthy', async () => (await runCommand(engine, ['inspect', '--format', '{{.State.Health.Status}}', gateway], engineEnv)).stdout.trim() === 'healthy', 60_000, 1000);
    expect((await runOk(engine, ['exec', gateway, 'id', '-u'], engineEnv)).trim()).toBe('1000');

    // A job, submitted to the gateway container, run by the executor-mock container.
    const client = new BlixardClient(`http://127.0.0.1:${ports.gateway}`, { apiKey });
    await waitFor('a mock worker online', async () => (await client.workers()).some((w) => w.backend === 'mock' && w.status === 'ONLINE'), 60_000, 250);
    const job = await client.submit({ backend: 'mock', payload: { sleepMs: 10, output: { from: 'containers' } } });
    const done = await waitFor('the job completed', async () => {
      const j = await client.get(job.id);
      return j.status === 'COMPLETED' ? j : undefined;
    }, 60_000, 200);
    expect(done.status).toBe('COMPLETED');
  }, 300_000);
});
