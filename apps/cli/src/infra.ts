import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { CliError } from './errors';
import { findExecutable, isRoot, run, runOrThrow } from './exec';
import { canConnect, endpointOf, isLocalHost, sleep, waitUntil, type Endpoint } from './net';

/**
 * Infrastructure for `blixard up`: Docker Compose when an engine runs, otherwise a native
 * Postgres and NATS on this machine, started (and, as root on Debian, installed) on demand.
 */

export interface ProvisionOptions {
  /** false with `--no-infra`: only wait for the servers, never start or install them. */
  provision: boolean;
  signal?: AbortSignal;
}

const READY_TIMEOUT_MS = 30_000;
const NOT_LOCAL = 'It is not on this machine, so `up` cannot start it.';
const NO_INFRA = 'With --no-infra, `up` does not start it: start it yourself, or run `blixard up` without --no-infra.';

/**
 * Whether `docker compose` can run the stack: an engine answers and the compose plugin is there.
 * `docker` on PATH alone is not enough: the daemon (or the plugin) may be absent.
 */
export async function dockerEngineRuns(): Promise<boolean> {
  if (!findExecutable('docker')) return false;
  if ((await run('docker', ['info'], { quiet: true, timeoutMs: 15_000 })) !== 0) return false;
  return (await run('docker', ['compose', 'version'], { quiet: true, timeoutMs: 15_000 })) === 0;
}

// apt-get update is slow; installing both Postgres and NATS needs it once.
let aptUpdated = false;

/** Installs Debian packages when that is possible here (root + apt-get); false otherwise. */
async function aptInstall(pkg: string): Promise<boolean> {
  if (!isRoot() || !findExecutable('apt-get')) return false;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (!aptUpdated) {
    await runOrThrow('apt-get', ['update'], { env });
    aptUpdated = true;
  }
  await runOrThrow('apt-get', ['install', '-y', pkg], { env });
  return true;
}

const where = ({ host, port }: Endpoint) => `${host.includes(':') ? `[${host}]` : host}:${port}`;

/** Fails with `explanation` unless the server at `endpoint` accepts connections soon. */
async function waitForServer(name: string, endpoint: Endpoint, explanation: string, signal?: AbortSignal): Promise<void> {
  try {
    await waitUntil(`${name} at ${where(endpoint)}`, () => canConnect(endpoint), { timeoutMs: READY_TIMEOUT_MS, signal });
  } catch (err) {
    if (signal?.aborted) throw err;
    throw new CliError(`${name} does not accept connections at ${where(endpoint)}. ${explanation}`);
  }
}

/** The newest Postgres version with a config directory, e.g. "15" for /etc/postgresql/15. */
function installedPostgresVersion(): string | undefined {
  if (!existsSync('/etc/postgresql')) return undefined;
  return readdirSync('/etc/postgresql')
    .filter((d) => /^\d+(\.\d+)?$/.test(d))
    .sort((a, b) => Number(b) - Number(a))[0];
}

const POSTGRES_HELP =
  'Install and start Postgres 15 or newer, then run `blixard up` again. For example:\n' +
  '  Debian/Ubuntu: sudo apt-get install -y postgresql && sudo pg_ctlcluster --skip-systemctl-redirect 15 main start\n' +
  '  macOS:         brew install postgresql@15 && brew services start postgresql@15\n' +
  'or point DATABASE_URL at an existing server (the user needs the right to create a database).';

/**
 * Makes Postgres at DATABASE_URL's host:port accept connections. Starts the Debian cluster
 * (pg_ctlcluster) or installs it as root; a remote host is only waited for.
 */
export async function ensurePostgres(databaseUrl: string, { provision, signal }: ProvisionOptions): Promise<void> {
  const endpoint = endpointOf(databaseUrl, 5432);
  if (await canConnect(endpoint)) {
    console.log(`Postgres: reachable at ${where(endpoint)}`);
    return;
  }
  if (!provision || !isLocalHost(endpoint.host)) {
    console.log(`Postgres: waiting for ${where(endpoint)}`);
    return waitForServer('Postgres', endpoint, provision ? NOT_LOCAL : `${NO_INFRA}\n${POSTGRES_HELP}`, signal);
  }
  if (!findExecutable('pg_ctlcluster')) {
    console.log('Postgres: not running and not installed; installing it (apt-get)');
    if (!(await aptInstall('postgresql'))) {
      throw new CliError(`Postgres is not reachable at ${where(endpoint)} and this machine cannot install it (needs root and apt-get).\n${POSTGRES_HELP}`);
    }
  }
  const version = installedPostgresVersion();
  if (!version) throw new CliError(`pg_ctlcluster exists but /etc/postgresql holds no cluster.\n${POSTGRES_HELP}`);
  // A fresh package install creates the `main` cluster; one removed by hand is recreated.
  if (!existsSync(`/etc/postgresql/${version}/main`)) await runOrThrow('pg_createcluster', [version, 'main']);
  console.log(`Postgres: starting cluster ${version}/main`);
  // --skip-systemctl-redirect: start the cluster directly, also where systemd does not run (containers).
  const code = await run('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'start']);
  if (code !== 0) {
    throw new CliError(`\`pg_ctlcluster ${version} main start\` failed (exit code ${code}); it needs root or the postgres user.\n${POSTGRES_HELP}`);
  }
  await waitForServer('Postgres', endpoint, `Cluster ${version}/main started; check its port in /etc/postgresql/${version}/main/postgresql.conf.`, signal);
  console.log(`Postgres: reachable at ${where(endpoint)}`);
}

/** A nats-server this command started, so it stops exactly that one and never a shared one. */
export interface StartedNats {
  readonly pid: number;
  readonly logFile: string;
  /** Whether it is still running (for the last-resort kill on exit). */
  running(): boolean;
  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

const NATS_HELP =
  'Install nats-server 2.9 or newer, then run `blixard up` again. For example:\n' +
  '  Debian/Ubuntu: sudo apt-get install -y nats-server\n' +
  '  macOS:         brew install nats-server\n' +
  'or start one yourself: nats-server -a 127.0.0.1 -p 4222 -js (JetStream must be enabled).';

/**
 * Makes NATS at `natsUrl` accept connections. Returns the server it started, or undefined when
 * one was already running (that one belongs to someone else and is left alone).
 */
export async function ensureNats(natsUrl: string, repoRoot: string, { provision, signal }: ProvisionOptions): Promise<StartedNats | undefined> {
  const endpoint = endpointOf(natsUrl, 4222);
  if (await canConnect(endpoint)) {
    console.log(`NATS: reachable at ${where(endpoint)} (already running; left as is)`);
    return undefined;
  }
  if (!provision || !isLocalHost(endpoint.host)) {
    console.log(`NATS: waiting for ${where(endpoint)}`);
    await waitForServer('NATS', endpoint, provision ? NOT_LOCAL : `${NO_INFRA}\n${NATS_HELP}`, signal);
    return undefined;
  }
  let binary = findExecutable('nats-server');
  if (!binary) {
    console.log('NATS: not running and not installed; installing nats-server (apt-get)');
    if (!(await aptInstall('nats-server'))) {
      throw new CliError(`NATS is not reachable at ${where(endpoint)} and this machine cannot install it (needs root and apt-get).\n${NATS_HELP}`);
    }
    binary = findExecutable('nats-server');
    if (!binary) throw new CliError(`nats-server was installed but is not on PATH or in /usr/sbin.\n${NATS_HELP}`);
    // The package may have started its own service; then that one is used and not ours.
    if (await canConnect(endpoint)) return undefined;
  }
  return startNatsServer(binary, endpoint, repoRoot, signal);
}

async function startNatsServer(binary: string, endpoint: Endpoint, repoRoot: string, signal?: AbortSignal): Promise<StartedNats> {
  const stateDir = path.join(repoRoot, '.blixard');
  const storeDir = path.join(stateDir, 'nats');
  const logFile = path.join(stateDir, 'nats.log');
  mkdirSync(storeDir, { recursive: true });
  const args = ['-a', '127.0.0.1', '-p', String(endpoint.port), '-js'];
  // The monitoring port serves /jsz (what KEDA reads); nats-server refuses to start when it is taken.
  if (await canConnect({ host: '127.0.0.1', port: 8222 })) {
    console.log('NATS: port 8222 is in use; starting without the monitoring endpoint');
  } else {
    args.push('-m', '8222');
  }
  args.push('-sd', storeDir);
  console.log(`NATS: starting ${binary} ${args.join(' ')} (log: ${path.relative(repoRoot, logFile)})`);
  const log = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    // detached: its own process group, so a Ctrl-C in the terminal does not stop NATS before the
    // services have drained through it; `stop()` ends it last.
    child = spawn(binary, args, { detached: true, stdio: ['ignore', log, log] });
  } finally {
    closeSync(log);
  }
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      resolve();
    });
    child.once('error', () => {
      exited = true;
      resolve();
    });
  });
  const started: StartedNats = {
    pid: child.pid ?? -1,
    logFile,
    running: () => !exited,
    async stop(graceMs = 10_000) {
      if (exited) return;
      child.kill('SIGTERM');
      await Promise.race([exit, sleep(graceMs)]);
      if (!exited) child.kill('SIGKILL');
      await exit;
    },
  };
  const dead = new AbortController();
  void exit.then(() => dead.abort(new CliError(`nats-server exited at start; see ${logFile}`)));
  try {
    await waitUntil(`NATS at ${where(endpoint)}`, () => canConnect(endpoint), {
      timeoutMs: READY_TIMEOUT_MS,
      signal: signal ? AbortSignal.any([signal, dead.signal]) : dead.signal,
    });
  } catch (err) {
    await started.stop();
    throw err;
  }
  console.log(`NATS: started (pid ${started.pid}), reachable at ${where(endpoint)}`);
  return started;
}
