import { ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { waitFor } from './harness';

/** Every executor app (`executor-<backend>`) listens on EXECUTOR_PORT. */
export type AppName = 'gateway' | 'scheduler' | 'worker-registry' | 'notifier' | `executor-${string}`;

const PORT_ENV: Record<string, string> = {
  gateway: 'GATEWAY_PORT',
  scheduler: 'SCHEDULER_PORT',
  'worker-registry': 'REGISTRY_PORT',
  notifier: 'NOTIFIER_PORT',
};

export function repoRoot(): string {
  let dir = __dirname;
  while (!existsSync(path.join(dir, 'pnpm-workspace.yaml'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('repository root not found');
    dir = parent;
  }
  return dir;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Services started in a session of their own: they do not hear the terminal's Ctrl-C, so they go with this process. */
const ownSessions = new Set<ChildProcess>();
let killOwnSessionsOnExit = false;

/**
 * A service started as its own node process (the built `apps/<app>/dist/main.js`), for end-to-end
 * and chaos tests: it can be SIGKILLed and started again. Its log goes to `logFile`.
 */
export class ServiceProcess {
  private exited: Promise<number | null>;

  private constructor(
    readonly app: AppName,
    readonly child: ChildProcess,
    readonly port: number,
    readonly logFile: string,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number {
    return this.child.pid!;
  }

  /**
   * `nodeArgs`: flags for node itself, e.g. `--cpu-prof` to profile a service under load.
   * `ownSession`: start it in a session of its own, as `blixard up` does and as a container is its
   * own cgroup. Linux's scheduler (autogroup) then weighs it as one group of its own; otherwise all
   * services started here share one group's CPU, against Postgres, whose every backend is a session
   * of its own. Benchmarks measure the deployed shape; tests keep the default, so that a Ctrl-C of
   * the test run reaches every service.
   */
  static async start(app: AppName, env: Record<string, string>, { waitReady = true, nodeArgs = [] as string[], ownSession = false } = {}): Promise<ServiceProcess> {
    const main = path.join(repoRoot(), 'apps', app, 'dist', 'main.js');
    if (!existsSync(main)) throw new Error(`${main} is missing: run \`pnpm run build\` first`);
    const port = await freePort();
    const logDir = path.join(tmpdir(), 'blixard-test-logs');
    mkdirSync(logDir, { recursive: true });
    const logFile = path.join(logDir, `${env.BLIXARD_PREFIX ?? 'x'}-${app}-${port}.log`);
    const log = createWriteStream(logFile);
    const child = spawn(process.execPath, [...nodeArgs, main], { env: { ...env, [PORT_ENV[app] ?? 'EXECUTOR_PORT']: String(port) }, stdio: ['ignore', 'pipe', 'pipe'], detached: ownSession });
    if (ownSession) {
      ownSessions.add(child);
      child.once('exit', () => ownSessions.delete(child));
      if (!killOwnSessionsOnExit) {
        killOwnSessionsOnExit = true;
        process.once('exit', () => {
          for (const c of ownSessions) c.kill('SIGKILL');
        });
        // A Ctrl-C would otherwise end this process without its 'exit' handlers.
        process.once('SIGINT', () => process.exit(130));
        process.once('SIGTERM', () => process.exit(143));
      }
    }
    child.stdout!.pipe(log);
    child.stderr!.pipe(log);
    const proc = new ServiceProcess(app, child, port, logFile);
    if (waitReady) {
      let exitCode: number | null | undefined;
      void proc.exited.then((c) => (exitCode = c));
      await waitFor(`${app} to be ready (log: ${logFile})`, async () => {
        if (exitCode !== undefined) throw new Error(`${app} exited with ${exitCode}; see ${logFile}`);
        const res = await fetch(`${proc.url}/readyz`).catch(() => undefined);
        return res?.ok;
      }, 30_000, 100);
    }
    return proc;
  }

  /** SIGKILL (or another signal); resolves when the process is gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }

  /** Graceful stop: SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 15_000): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.exited;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}
