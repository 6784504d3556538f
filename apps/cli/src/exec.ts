import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

/**
 * The full path of an executable, or undefined. Searches PATH plus the sbin directories, because
 * Debian installs nats-server in /usr/sbin, which a non-root PATH often lacks.
 */
export function findExecutable(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const dir of dirs.filter(Boolean)) {
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Show the command's output (installs, docker compose) or hide it (probes such as `docker info`). */
  quiet?: boolean;
  timeoutMs?: number;
}

/** Runs a command to completion; resolves with its exit code (-1 if it could not start or timed out). */
export function run(command: string, args: string[], { cwd, env, quiet = false, timeoutMs }: RunOptions = {}): Promise<number> {
  return new Promise((resolve) => {
    if (!quiet) process.stdout.write(`$ ${[command, ...args].join(' ')}\n`);
    const child = spawn(command, args, { cwd, env, stdio: quiet ? 'ignore' : 'inherit', timeout: timeoutMs });
    child.once('error', () => resolve(-1));
    child.once('exit', (code) => resolve(code ?? -1));
  });
}

/** Like `run`, but a non-zero exit is an error naming the command. */
export async function runOrThrow(command: string, args: string[], options: RunOptions = {}): Promise<void> {
  const code = await run(command, args, options);
  if (code !== 0) throw new Error(`\`${[command, ...args].join(' ')}\` failed (exit code ${code})`);
}

export const isRoot = (): boolean => process.getuid?.() === 0;
