import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { OutputTail } from '@blixard/domain';
import { ExecutionBackend, ExecutionContext, ExecutionFailure, ExecutionJob, ExecutionResult, lineSplitter, PayloadError } from '@blixard/executor-sdk';

/**
 * The `process` backend: runs `command` (argv, no shell) in its own process group, feeds `stdin`,
 * keeps the tail of stdout and stderr, and on timeout or cancel sends SIGTERM to the whole group,
 * then SIGKILL after KILL_GRACE_MS, so no child outlives its attempt.
 */
export const processPayloadSchema = z
  .object({
    command: z.array(z.string().max(65_536)).min(1, 'must name a program').max(4096),
    env: z.record(z.string().regex(/^[^=\0]+$/, 'not a variable name'), z.string()).default({}),
    cwd: z.string().min(1).optional(),
    stdin: z.string().optional(),
    /**
     * Pass the executor's own environment to the job (default: only PATH, HOME, LANG, TZ). Refused
     * unless the operator allows it (PROCESS_ALLOW_INHERIT_ENV): the executor's environment is not
     * the submitter's to read.
     */
    inheritEnv: z.boolean().default(false),
  })
  .strict();
export type ProcessPayload = z.infer<typeof processPayloadSchema>;

const BASE_ENV = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR'];

export class ProcessBackend implements ExecutionBackend<ProcessPayload> {
  readonly name = 'process';

  constructor(private readonly options: { allowInheritEnv?: boolean } = {}) {}

  capabilities() {
    return { features: ['argv', 'env', 'cwd', 'stdin', 'process-group-kill'] };
  }

  validate(payload: unknown): ProcessPayload {
    const parsed = processPayloadSchema.safeParse(payload);
    if (!parsed.success) {
      throw new PayloadError(`process payload: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
    }
    if (parsed.data.inheritEnv && !this.options.allowInheritEnv) {
      throw new PayloadError('process payload: inheritEnv: this executor does not pass its environment to jobs (PROCESS_ALLOW_INHERIT_ENV=false); set the variables the job needs in env');
    }
    return parsed.data;
  }

  execute(job: ExecutionJob<ProcessPayload>, ctx: ExecutionContext): Promise<ExecutionResult> {
    const { command, env, cwd, stdin, inheritEnv } = job.payload;
    // validate() refused inheritEnv unless allowed; checked again here, where it matters.
    const baseEnv = inheritEnv && this.options.allowInheritEnv
      ? process.env
      : Object.fromEntries(BASE_ENV.filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]]));
    const stdout = new OutputTail(ctx.outputTailBytes);
    const stderr = new OutputTail(ctx.outputTailBytes);
    // A dependent reads its parents' results from a file (results can exceed what env holds).
    const parentsDir = job.parents.length > 0 ? mkdtempSync(path.join(tmpdir(), 'blixard-parents-')) : null;
    const parentsEnv: Record<string, string> = {};
    if (parentsDir) {
      parentsEnv.BLIXARD_PARENTS_FILE = path.join(parentsDir, 'parents.json');
      writeFileSync(parentsEnv.BLIXARD_PARENTS_FILE, JSON.stringify(job.parents));
    }
    const cleanup = () => {
      if (parentsDir) rmSync(parentsDir, { recursive: true, force: true });
    };

    return new Promise<ExecutionResult>((resolve, reject) => {
      const child = spawn(command[0]!, command.slice(1), {
        cwd,
        env: { ...baseEnv, BLIXARD_JOB_ID: job.id, BLIXARD_ATTEMPT: String(job.attempt), ...parentsEnv, ...env },
        // Its own process group: a timeout or cancel signals every process the job started.
        detached: true,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let killTimer: NodeJS.Timeout | undefined;
      const signalGroup = (signal: NodeJS.Signals) => {
        try {
          if (child.pid !== undefined) process.kill(-child.pid, signal);
        } catch {
          // The group is already gone.
        }
      };
      const onAbort = () => {
        signalGroup('SIGTERM');
        killTimer = setTimeout(() => signalGroup('SIGKILL'), ctx.killGraceMs);
      };
      if (ctx.signal.aborted) onAbort();
      else ctx.signal.addEventListener('abort', onAbort, { once: true });

      // Every line goes to ctx.log as it comes (live followers, stored logs); the tails stay too.
      const stdoutLines = lineSplitter((line) => ctx.log?.('stdout', line));
      const stderrLines = lineSplitter((line) => {
        if (!reportProgress(line, ctx)) ctx.log?.('stderr', line);
      });
      child.stdout.on('data', (chunk: Buffer) => {
        stdout.push(chunk);
        stdoutLines.push(chunk);
      });
      child.stderr.on('data', (chunk: Buffer) => {
        stderr.push(chunk);
        stderrLines.push(chunk);
      });
      child.stdout.once('end', () => stdoutLines.end());
      child.stderr.once('end', () => stderrLines.end());
      child.stdin.on('error', () => undefined); // the program may exit without reading its input
      child.stdin.end(stdin ?? '');

      child.once('error', (err: NodeJS.ErrnoException) => {
        ctx.signal.removeEventListener('abort', onAbort);
        clearTimeout(killTimer);
        cleanup();
        const notFound = err.code === 'ENOENT' || err.code === 'EACCES' || err.code === 'ENOTDIR';
        reject(new ExecutionFailure('spawn_failed', `could not start ${JSON.stringify(command[0])}: ${err.message}`, { retryable: !notFound }));
      });

      child.once('exit', (code, signal) => {
        ctx.signal.removeEventListener('abort', onAbort);
        clearTimeout(killTimer);
        // The job's own process ended; end anything it left behind in its group.
        signalGroup('SIGKILL');
        const finish = () => {
          cleanup();
          const tails = { stdoutTail: stdout.toString(), stderrTail: stderr.toString() };
          if (code === 0 && !ctx.signal.aborted) {
            resolve({ exitCode: 0, output: null, ...tails });
            return;
          }
          const message = signal ? `killed by ${signal}` : `exited with code ${code}`;
          reject(new ExecutionFailure('exit_code', message, { exitCode: code ?? null, retryable: true, ...tails }));
        };
        // Let the pipes drain (a straggler holding them was just killed), but never wait forever.
        if (child.stdout.readableEnded && child.stderr.readableEnded) finish();
        else {
          const t = setTimeout(finish, 1_000);
          child.once('close', () => {
            clearTimeout(t);
            finish();
          });
        }
      });
    });
  }
}

/**
 * The progress line protocol: a line `::blixard-progress <fraction 0..1> [note]` on stderr reports
 * progress (`ctx.progress`) instead of being logged. Returns whether the line was one.
 */
export const PROGRESS_LINE = /^::blixard-progress\s+(\S+)(?:\s+(.*))?$/;

function reportProgress(line: string, ctx: ExecutionContext): boolean {
  const m = PROGRESS_LINE.exec(line);
  if (!m || !ctx.progress) return false;
  const fraction = Number(m[1]);
  // A malformed report is logged as the line it is, so the job's author sees it.
  if (!Number.isFinite(fraction) || fraction < 0 || fraction > 1) return false;
  ctx.progress(fraction, m[2]);
  return true;
}
