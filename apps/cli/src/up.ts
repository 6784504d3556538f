import { loadConfig, type Config } from '@blixard/config';
import { createDemoKey, printCurlExamples, printDemoJob, runDemoJob } from './demo';
import { CliError, describeError } from './errors';
import { run, runOrThrow } from './exec';
import { dockerEngineRuns, ensureNats, ensurePostgres, type StartedNats } from './infra';
import { migrateDatabase } from './migrate-command';
import { answers200, canConnect, waitUntil } from './net';
import { findRepoRoot } from './repo-root';
import { assertBuilt, killGroup, startService, stopServices, type RunningService, type ServiceSpec } from './services';

export interface UpOptions {
  /** Stop everything again right after the demo job (CI, smoke tests). */
  once: boolean;
  /** false with `--no-infra`: use Postgres and NATS as they are, never Docker. */
  infra: boolean;
}

const UP_KEYS = ['databaseUrl', 'natsUrl', 'gatewayPort', 'schedulerPort', 'registryPort', 'notifierPort', 'executorPort'] as const;
type UpConfig = Config<(typeof UP_KEYS)[number]>;

const SERVICE_READY_TIMEOUT_MS = 60_000;
const COMPOSE_READY_TIMEOUT_MS = 180_000;
const STOP_GRACE_MS = 20_000;
/** docker-compose.yml publishes the gateway on this host port, whatever GATEWAY_PORT says. */
const COMPOSE_GATEWAY_URL = 'http://127.0.0.1:8080';
/** docker-compose.yml publishes Postgres on this host port (the demo's API key is made there). */
const COMPOSE_DATABASE_URL = 'postgresql://postgres:postgres@127.0.0.1:15432/blixard';

/** Why the run ended early: a signal is a normal stop, anything else a failure. */
class Interrupted extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
  }
}

/** Everything this run started, so that shutdown stops exactly that and nothing else. */
interface Started {
  /** Set when shutdown begins; service exits after that are expected. */
  stopping: boolean;
  compose: boolean;
  nats?: StartedNats;
  services: RunningService[];
}

/**
 * The services with their environment. Every executor reads EXECUTOR_PORT (default 8090), so
 * process, mock and wasm get consecutive ports: 8090/8091/8092 by default, N/N+1/N+2 when
 * EXECUTOR_PORT=N, and each a free one when EXECUTOR_PORT=0.
 */
export function serviceSpecs(config: UpConfig, env: NodeJS.ProcessEnv = process.env): ServiceSpec[] {
  // pretty logs: `up` is for a person at a terminal; LOG_FORMAT=json still wins when set.
  const base = { ...env, LOG_FORMAT: env.LOG_FORMAT ?? 'pretty' };
  const processPort = config.executorPort;
  const mockPort = processPort === 0 ? 0 : processPort + 1;
  const wasmPort = processPort === 0 ? 0 : processPort + 2;
  return [
    // The docs page opens in a browser without a key here (the gateway logs it); PUBLIC_DOCS=false keeps it closed.
    { name: 'gateway', app: 'gateway', env: { ...base, PUBLIC_DOCS: env.PUBLIC_DOCS ?? 'true' }, port: config.gatewayPort, portEnv: 'GATEWAY_PORT' },
    { name: 'scheduler', app: 'scheduler', env: base, port: config.schedulerPort, portEnv: 'SCHEDULER_PORT' },
    { name: 'worker-registry', app: 'worker-registry', env: base, port: config.registryPort, portEnv: 'REGISTRY_PORT' },
    { name: 'notifier', app: 'notifier', env: base, port: config.notifierPort, portEnv: 'NOTIFIER_PORT' },
    { name: 'executor-process', app: 'executor-process', env: { ...base, EXECUTOR_PORT: String(processPort) }, port: processPort, portEnv: 'EXECUTOR_PORT' },
    { name: 'executor-mock', app: 'executor-mock', env: { ...base, EXECUTOR_PORT: String(mockPort) }, port: mockPort, portEnv: 'EXECUTOR_PORT (+1)' },
    { name: 'executor-wasm', app: 'executor-wasm', env: { ...base, EXECUTOR_PORT: String(wasmPort) }, port: wasmPort, portEnv: 'EXECUTOR_PORT (+2)' },
  ];
}

/**
 * Fails before anything starts when a port is taken: otherwise our service would exit at once
 * while another run's service on that port answered our readiness checks.
 */
async function assertPortsFree(specs: readonly ServiceSpec[]): Promise<void> {
  const taken: string[] = [];
  for (const s of specs) {
    if (s.port !== 0 && (await canConnect({ host: '127.0.0.1', port: s.port }, 500))) taken.push(`${s.port} (${s.name}, ${s.portEnv})`);
  }
  if (taken.length > 0) {
    throw new CliError(`port(s) already in use: ${taken.join(', ')}. Stop what listens there, or choose other ports with GATEWAY_PORT, SCHEDULER_PORT, REGISTRY_PORT and EXECUTOR_PORT.`);
  }
}

/** Starts the stack; resolves with the gateway's URL once every service is ready. */
async function bringUp(root: string, config: UpConfig, options: UpOptions, started: Started, lifetime: AbortController): Promise<string> {
  const signal = lifetime.signal;
  if (options.infra && (await dockerEngineRuns())) {
    console.log('Docker engine found: starting Postgres, NATS, Jaeger and the services with docker compose');
    // Set first, so that a half-started stack is stopped too.
    started.compose = true;
    await runOrThrow('docker', ['compose', 'up', '-d', '--build'], { cwd: root });
    await waitUntil(`the gateway at ${COMPOSE_GATEWAY_URL}/readyz`, () => answers200(`${COMPOSE_GATEWAY_URL}/readyz`), { timeoutMs: COMPOSE_READY_TIMEOUT_MS, signal });
    return COMPOSE_GATEWAY_URL;
  }

  for (const [key, value] of [['GATEWAY_PORT', config.gatewayPort], ['SCHEDULER_PORT', config.schedulerPort], ['REGISTRY_PORT', config.registryPort], ['NOTIFIER_PORT', config.notifierPort]] as const) {
    // The readiness checks and the client need to know the port in advance.
    if (value === 0) throw new CliError(`${key}=0 is not supported by \`up\`: choose a fixed port`);
  }
  const specs = serviceSpecs(config);
  assertBuilt(root, specs);

  // Checked first, so a clash fails before anything was started; checked again right before the
  // services start, since the infrastructure may take a while and another run may take a port.
  await assertPortsFree(specs);

  await ensurePostgres(config.databaseUrl, { provision: options.infra, signal });
  started.nats = await ensureNats(config.natsUrl[0]!, root, { provision: options.infra, signal });
  signal.throwIfAborted();
  await migrateDatabase(config.databaseUrl);

  await assertPortsFree(specs);
  signal.throwIfAborted();
  for (const spec of specs) {
    started.services.push(
      startService(root, spec, (service, exit) => {
        // Any exit before shutdown began is a failure of the whole run (also during start-up).
        if (!started.stopping && !signal.aborted) {
          lifetime.abort(new CliError(`${service.spec.name} exited unexpectedly (${exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`})`));
        }
      }),
    );
  }
  await Promise.all(
    specs
      .filter((s) => s.port !== 0)
      .map((s) => {
        const url = `http://127.0.0.1:${s.port}/readyz`;
        return waitUntil(`${s.name} at ${url}`, () => answers200(url), { timeoutMs: SERVICE_READY_TIMEOUT_MS, signal }).then(() =>
          console.log(`${s.name}: ready (${url})`),
        );
      }),
  );
  return `http://127.0.0.1:${config.gatewayPort}`;
}

/** Stops what this run started: services first (executors drain through NATS), then NATS. */
async function shutdown(root: string, started: Started): Promise<void> {
  if (started.services.some((s) => s.running())) {
    console.log('stopping services (SIGTERM)');
    await stopServices(started.services, STOP_GRACE_MS);
  }
  if (started.nats?.running()) {
    console.log(`stopping the nats-server started by this run (pid ${started.nats.pid})`);
    await started.nats.stop();
  }
  if (started.compose) {
    // stop, not down: containers and volumes stay, so the next `up` starts where this one ended.
    await run('docker', ['compose', 'stop'], { cwd: root });
  }
}

/** Last resort when the process exits without a shutdown (a second Ctrl-C, a crash). Synchronous. */
function killEverything(started: Started): void {
  for (const s of started.services) if (s.running()) killGroup(s, 'SIGKILL');
  if (started.nats?.running()) {
    try {
      process.kill(started.nats.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 2, SIGTERM: 15 };

/**
 * `blixard up`: infrastructure, migration, the five services, one demo job; then it runs until
 * SIGINT/SIGTERM (or stops at once with --once). Resolves with the exit code, after everything it
 * started has stopped.
 */
export async function up(options: UpOptions): Promise<number> {
  const root = findRepoRoot();
  const config = loadConfig(UP_KEYS);
  const started: Started = { stopping: false, compose: false, services: [] };
  // Aborted by a signal (reason: Interrupted) or a failed service (reason: CliError); every wait observes it.
  const lifetime = new AbortController();

  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      console.error(`${signal} again: killing everything now`);
      process.exit(1); // the exit hook below SIGKILLs the children
    }
    signalled = true;
    console.log(`\n${signal}: shutting down (again to kill at once)`);
    lifetime.abort(new Interrupted(signal));
  };
  const onExit = () => killEverything(started);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', onExit);

  let code = 0;
  try {
    const gatewayUrl = await bringUp(root, config, options, started, lifetime);
    const apiKey = await createDemoKey(started.compose ? COMPOSE_DATABASE_URL : config.databaseUrl);
    const job = await runDemoJob(gatewayUrl, apiKey, lifetime.signal);
    printDemoJob(job);
    if (job.status !== 'COMPLETED') {
      code = 1;
    } else {
      printCurlExamples(gatewayUrl, job.id, apiKey);
      if (!options.once) {
        console.log('Blixard is running. Press Ctrl-C to stop.');
        const reason = await new Promise<unknown>((resolve) => {
          if (lifetime.signal.aborted) resolve(lifetime.signal.reason);
          lifetime.signal.addEventListener('abort', () => resolve(lifetime.signal.reason), { once: true });
        });
        if (!(reason instanceof Interrupted)) {
          console.error(`up: ${describeError(reason)}`);
          code = 1;
        }
      }
    }
  } catch (err) {
    // An abort surfaces as whichever error the interrupted wait threw; the abort reason is the cause.
    const reason = lifetime.signal.aborted ? lifetime.signal.reason : err;
    if (reason instanceof Interrupted) {
      code = 128 + (SIGNAL_NUMBERS[reason.signal] ?? 1);
    } else {
      console.error(`up failed: ${describeError(reason)}`);
      code = 1;
    }
  } finally {
    started.stopping = true;
    await shutdown(root, started);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', onExit);
  }
  console.log(code === 0 ? 'stopped' : `stopped (exit code ${code})`);
  return code;
}
