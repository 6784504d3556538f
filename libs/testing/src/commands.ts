import { spawn } from 'node:child_process';
import { repoRoot } from './processes';

/** A command's exit code (null: killed) and everything it printed. */
export interface CommandRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command in the repository's root and collects its output; SIGKILLs it after `timeoutMs`.
 * Never rejects for a non-zero exit (see `runOk`), only when the command cannot be started.
 */
export function runCommand(command: string, args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 120_000): Promise<CommandRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: repoRoot(), env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs a command that must succeed: its stdout, or an error with the tail of its stderr. */
export async function runOk(command: string, args: string[], env?: NodeJS.ProcessEnv, timeoutMs?: number): Promise<string> {
  const r = await runCommand(command, args, env, timeoutMs);
  if (r.code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${r.code}:\n${r.stderr.slice(-3000)}`);
  return r.stdout;
}
