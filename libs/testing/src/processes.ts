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

  /** `nodeArgs`: flags for node itself, e.g. `--cpu-prof` to profile a service under load. */
  static async start(app: AppName, env: Record<string, string>, { waitReady = true, nodeArgs = [] as string[] } = {}): Promise<ServiceProcess> {
    const main = path.join(repoRoot(), 'apps', app, 'dist', 'main.js');
    if (!existsSync(main)) throw new Error(`${main} is missing: run \`pnpm run build\` first`);
    const port = await freePort();
    const logDir = path.join(tmpdir(), 'blixard-test-logs');
    mkdirSync(logDir, { recursive: true });
    const logFile = path.join(logDir, `${env.BLIXARD_PREFIX ?? 'x'}-${app}-${port}.log`);
    const log = createWriteStream(logFile);
    const child = spawn(process.execPath, [...nodeArgs, main], { env: { ...env, [PORT_ENV[app] ?? 'EXECUTOR_PORT']: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
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
