import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { CliError } from './errors';
import { sleep } from './net';

/** One Blixard app to run as a child process of `blixard up`. */
export interface ServiceSpec {
  /** Also the output prefix: `[gateway] ...`. */
  name: string;
  /** Directory under apps/ holding dist/main.js. */
  app: string;
  env: NodeJS.ProcessEnv;
  /** HTTP port serving /readyz; 0 when the service picks its own (then it is not waited for). */
  port: number;
  /** The variable that sets `port`, named when the port is taken. */
  portEnv: string;
}

export interface ServiceExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RunningService {
  readonly spec: ServiceSpec;
  readonly pid: number;
  /** Resolves when the process has exited (or failed to start). */
  readonly exited: Promise<ServiceExit>;
  running(): boolean;
}

/** The entry point of an app; a missing one means the repository has not been built. */
export function entryPoint(repoRoot: string, app: string): string {
  return path.join(repoRoot, 'apps', app, 'dist', 'main.js');
}

export function assertBuilt(repoRoot: string, specs: readonly ServiceSpec[]): void {
  const missing = specs.map((s) => entryPoint(repoRoot, s.app)).filter((f) => !existsSync(f));
  if (missing.length > 0) {
    throw new CliError(`not built: ${missing.map((f) => path.relative(repoRoot, f)).join(', ')}. Run \`pnpm run build\` first (or \`pnpm run up\`).`);
  }
}

/** Copies a stream to `out` line by line, each line prefixed, so interleaved services stay readable. */
function pipePrefixed(input: NodeJS.ReadableStream, out: NodeJS.WritableStream, prefix: string): void {
  createInterface({ input, crlfDelay: Infinity }).on('line', (line) => out.write(`${prefix}${line}\n`));
}

/** Starts `node apps/<app>/dist/main.js`; `onExit` hears of every exit, expected or not. */
export function startService(repoRoot: string, spec: ServiceSpec, onExit: (service: RunningService, exit: ServiceExit) => void): RunningService {
  // detached: its own process group, so a Ctrl-C in the terminal reaches only `blixard up`, which
  // then sends one SIGTERM. A service that got the terminal's SIGINT *and* our SIGTERM would take
  // the second signal as "exit now" and skip its drain.
  const child = spawn(process.execPath, [entryPoint(repoRoot, spec.app)], {
    cwd: repoRoot,
    env: spec.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const prefix = `[${spec.name}] `;
  pipePrefixed(child.stdout!, process.stdout, prefix);
  pipePrefixed(child.stderr!, process.stderr, prefix);
  let alive = true;
  const service: RunningService = {
    spec,
    pid: child.pid ?? -1,
    running: () => alive,
    exited: new Promise<ServiceExit>((resolve) => {
      const done = (exit: ServiceExit) => {
        if (!alive) return;
        alive = false;
        resolve(exit);
        onExit(service, exit);
      };
      child.once('exit', (code, signal) => done({ code, signal }));
      child.once('error', (err) => {
        process.stderr.write(`${prefix}could not start: ${err.message}\n`);
        done({ code: null, signal: null });
      });
    }),
  };
  return service;
}

/** Signals a service's whole process group (it may have spawned job processes of its own). */
export function killGroup(service: RunningService, signal: NodeJS.Signals): void {
  try {
    process.kill(-service.pid, signal);
  } catch {
    // already gone
  }
}

/**
 * SIGTERM to every running service at once (each drains on its own), then SIGKILL to any still
 * running after `graceMs`. Resolves when all have exited.
 */
export async function stopServices(services: readonly RunningService[], graceMs = 20_000): Promise<void> {
  const running = services.filter((s) => s.running());
  for (const s of running) {
    try {
      process.kill(s.pid, 'SIGTERM');
    } catch {
      // exited meanwhile
    }
  }
  await Promise.all(
    running.map(async (s) => {
      const exit = await Promise.race([s.exited, sleep(graceMs).then(() => undefined)]);
      if (exit) return;
      process.stderr.write(`[${s.spec.name}] still running after ${graceMs / 1000} s: SIGKILL\n`);
      killGroup(s, 'SIGKILL');
      await s.exited;
    }),
  );
}
