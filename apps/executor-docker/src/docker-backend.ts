import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { OutputTail } from '@blixard/domain';
import {
  ExecutionBackend,
  ExecutionContext,
  ExecutionFailure,
  ExecutionJob,
  ExecutionResult,
  lineSplitter,
  RecoveredAttempt,
  RecoveryContext,
} from '@blixard/executor-sdk';
import { DockerSettings } from './docker-config';
import { containerSpec, DockerPayload, LABELS, parseDockerPayload, PullPolicy, splitImageReference, withReservedResources } from './docker-payload';
import { ContainerInspect, DockerEngine, EngineError, EngineUnavailableError } from './engine-client';
import { LogDemuxer, LogStream } from './log-demux';
import { formatBytes } from './quantities';

/** Where the engine's problems go: the executor's logger once it has one, stderr before. */
export type WarningSink = (message: string, details: Record<string, unknown>) => void;

const stderrWarning: WarningSink = (message, details) =>
  process.stderr.write(`${JSON.stringify({ level: 'warn', service: 'executor-docker', msg: message, ...details })}\n`);

/** How long the log stream may trail the container's exit before the output is taken as it is. */
const LOG_DRAIN_MS = 2_000;
/** The directories this backend makes under DOCKER_SCRATCH_DIR (and the only ones it deletes). */
const SCRATCH_PREFIX = 'blixard-scratch-';

type Phase = 'image' | 'create' | 'start' | 'run';

/** A created container this backend owns until it has removed it. */
interface OwnedContainer {
  id: string;
  jobId: string;
  attempt: number;
  image: string;
  /** The per-attempt directory under DOCKER_SCRATCH_DIR (its `scratch/` is mounted). */
  scratchDir: string | undefined;
  memoryBytes: number | undefined;
}

/**
 * The `docker` backend: each attempt is one container, run through the Docker Engine API over a
 * unix socket (Docker, or podman's Docker-compatible service). For one attempt it
 * 1. makes sure the image is there (pull policy never / if-missing / always),
 * 2. makes a scratch directory on the host and creates the container (command, env, working dir,
 *    cpu and memory limits, network mode, the scratch directory bind-mounted, labels naming the
 *    job, attempt and worker),
 * 3. starts it, follows its multiplexed log stream line by line (`ctx.log`, and the stdout and
 *    stderr tails), and waits; the exit code is the outcome (0 completes, anything else fails, an
 *    OOM kill says so),
 * 4. on timeout or cancel sends SIGTERM, then SIGKILL after KILL_GRACE_MS,
 * 5. always removes the container and the scratch directory — also when the engine fails midway.
 * Containers outlive the executor process: a restart with the same EXECUTOR_ID adopts the ones it
 * left (`recover`) and removes what it cannot adopt.
 */
export class DockerBackend implements ExecutionBackend<DockerPayload> {
  readonly name: string = 'docker';
  readonly engine: DockerEngine;
  private warn: WarningSink;

  constructor(
    private readonly settings: DockerSettings,
    /** Default: stderr until `recover` hands over the executor's logger. */
    private readonly warningSink?: WarningSink,
  ) {
    this.engine = new DockerEngine(settings.socketPath);
    this.warn = warningSink ?? stderrWarning;
  }

  capabilities() {
    return {
      features: ['image', 'command', 'env', 'working-dir', 'cpu-limit', 'memory-limit', `networks:${this.settings.networks.join('|')}`, 'scratch-volume', 'pull-policy', 'adopt-on-restart'],
    };
  }

  validate(payload: unknown): DockerPayload {
    return parseDockerPayload(payload, this.settings.networks);
  }

  close(): void {
    this.engine.close();
  }

  // ---------------------------------------------------------------- one attempt

  async execute(job: ExecutionJob<DockerPayload>, ctx: ExecutionContext): Promise<ExecutionResult> {
    // A placed job's reserved cpuMillis/memoryMb are its limits where the payload sets none.
    const p = withReservedResources(job.payload, job.resources);
    const startedAt = new Date();
    const output = new ContainerOutput(ctx);
    let phase: Phase = 'image';
    let scratchDir: string | undefined;
    let container: OwnedContainer | undefined;
    try {
      await this.ensureImage(p.image, p.pullPolicy, ctx.signal);
      if (ctx.signal.aborted) throw new ExecutionFailure('aborted', 'aborted before the container was created');

      phase = 'create';
      scratchDir = await mkdtemp(path.join(this.settings.scratchDir, SCRATCH_PREFIX)).catch((err: Error) => {
        throw new ExecutionFailure('scratch_failed', `could not make a scratch directory under DOCKER_SCRATCH_DIR (${this.settings.scratchDir}): ${err.message}`);
      });
      const scratchHostDir = path.join(scratchDir, 'scratch');
      const parentsFile = job.parents.length > 0 ? path.posix.join(p.scratchPath, '.blixard', 'parents.json') : undefined;
      await prepareScratch(scratchDir, scratchHostDir, job.parents);
      const name = `blixard-${job.id}-${job.attempt}-${randomBytes(3).toString('hex')}`;
      const spec = containerSpec({
        jobId: job.id,
        attempt: job.attempt,
        queue: job.queue,
        workerId: ctx.workerId,
        startedAt,
        timeoutMs: job.timeoutMs,
        payload: p,
        scratchHostDir,
        parentsFile,
      });
      // Not abortable: an aborted create could leave a container whose id we never learnt.
      const { Id } = await this.engine.createContainer(name, spec);
      container = { id: Id, jobId: job.id, attempt: job.attempt, image: p.image, scratchDir, memoryBytes: p.resources.memoryBytes };
    } catch (err) {
      await this.cleanUp({ id: '', jobId: job.id, attempt: job.attempt, image: p.image, scratchDir, memoryBytes: undefined });
      throw this.asFailure(err, phase, p.image, output.tails());
    }
    // From here on `supervise` owns the container: it runs it, and removes it whatever happens.
    return this.supervise(container, ctx, output, true);
  }

  /**
   * Starts (unless adopted running) and follows a container to its end, turns its exit into the
   * attempt's outcome, and removes it and its scratch directory in every case.
   */
  private async supervise(c: OwnedContainer, ctx: ExecutionContext, output: ContainerOutput, start: boolean): Promise<ExecutionResult> {
    let phase: Phase = start ? 'start' : 'run';
    const stopper = this.stopOnAbort(c.id, ctx);
    try {
      if (ctx.signal.aborted && start) throw new ExecutionFailure('aborted', 'aborted before the container started');
      if (start) {
        await this.engine.startContainer(c.id);
        await stopper.started();
      }
      phase = 'run';
      const logs = this.followLogs(c.id, output);
      // The abort listener stops the container, which ends this wait.
      const exitCode = await this.engine.waitContainer(c.id);
      await logs.settle(LOG_DRAIN_MS);
      if (ctx.signal.aborted) {
        throw new ExecutionFailure('aborted', `stopped on ${String(ctx.signal.reason)} (exit code ${exitCode})`, { exitCode, ...output.tails() });
      }
      if (exitCode === 0) return { exitCode: 0, output: null, ...output.tails() };
      throw await this.exitFailure(c, exitCode, output.tails());
    } catch (err) {
      throw this.asFailure(err, phase, c.image, output.tails());
    } finally {
      stopper.dispose();
      await this.cleanUp(c);
    }
  }

  // ---------------------------------------------------------------- restart

  /**
   * Called by the runtime at start, before the first heartbeat, with this process's worker id.
   * Containers an earlier process with the same id (a stable EXECUTOR_ID, e.g. the pod name) left
   * behind are adopted when they ran — still running or already exited: followed to their end and
   * reported, then removed — and removed when they cannot be (never started, labels unreadable).
   * An engine that does not answer stops the start: this executor could run nothing.
   */
  async recover(ctx: RecoveryContext): Promise<RecoveredAttempt[]> {
    if (!this.warningSink) this.warn = (message, details) => ctx.logger.warn(details, message);
    await this.engine.ping(AbortSignal.timeout(10_000));
    const found = await this.engine.listContainers({ [LABELS.managed]: 'true', [LABELS.workerId]: ctx.workerId });
    const adopted: RecoveredAttempt[] = [];
    for (const summary of found) {
      const inspect = await this.engine.inspectContainer(summary.Id).catch(() => undefined);
      const attempt = inspect && this.adoptable(inspect);
      if (attempt) {
        adopted.push(attempt);
        continue;
      }
      const labels = inspect?.Config.Labels ?? summary.Labels ?? {};
      await this.cleanUp({
        id: summary.Id,
        jobId: labels[LABELS.jobId] ?? '?',
        attempt: Number(labels[LABELS.attempt]),
        image: '',
        scratchDir: inspect ? this.scratchDirOf(inspect) : undefined,
        memoryBytes: undefined,
      });
      this.warn('removed a container left behind by an earlier run of this worker (never started, so not adopted)', {
        containerId: summary.Id,
        jobId: labels[LABELS.jobId],
        attempt: labels[LABELS.attempt],
        state: inspect?.State.Status,
      });
    }
    return adopted;
  }

  private adoptable(inspect: ContainerInspect): RecoveredAttempt | undefined {
    const labels = inspect.Config.Labels ?? {};
    const jobId = labels[LABELS.jobId];
    const attempt = Number(labels[LABELS.attempt]);
    const startedAt = new Date(labels[LABELS.startedAt] ?? inspect.State.StartedAt ?? '');
    const timeoutMs = labels[LABELS.timeoutMs] === undefined ? null : Number(labels[LABELS.timeoutMs]);
    // `created`/`configured`: the earlier process died between create and start. Nobody was told it
    // started, so nothing is owed: remove it (the attempt's lease recovers the job).
    const ran = ['running', 'exited', 'stopped', 'paused'].includes(inspect.State.Status);
    if (!ran || !jobId || !Number.isInteger(attempt) || attempt < 1 || Number.isNaN(startedAt.getTime()) || (timeoutMs !== null && !(timeoutMs > 0))) {
      return undefined;
    }
    const memory = Number(inspect.HostConfig.Memory ?? 0);
    const c: OwnedContainer = {
      id: inspect.Id,
      jobId,
      attempt,
      image: inspect.Config.Image ?? '',
      scratchDir: this.scratchDirOf(inspect),
      memoryBytes: memory > 0 ? memory : undefined,
    };
    return {
      jobId,
      attempt,
      startedAt,
      timeoutMs,
      // The log stream starts from the container's beginning: the tails and lines are whole again.
      resume: (ctx) => this.supervise(c, ctx, new ContainerOutput(ctx), false),
    };
  }

  /** The scratch directory of a container this backend made: only one under DOCKER_SCRATCH_DIR with our prefix. */
  private scratchDirOf(inspect: ContainerInspect): string | undefined {
    const bind = (inspect.HostConfig.Binds as string[] | undefined)?.[0];
    const hostPath = bind?.split(':')[0];
    if (!hostPath || path.basename(hostPath) !== 'scratch') return undefined;
    const dir = path.dirname(hostPath);
    return path.dirname(dir) === path.resolve(this.settings.scratchDir) && path.basename(dir).startsWith(SCRATCH_PREFIX) ? dir : undefined;
  }

  // ---------------------------------------------------------------- steps

  private async ensureImage(image: string, policy: PullPolicy, signal: AbortSignal): Promise<void> {
    if (policy !== 'always') {
      if (await this.engine.inspectImage(image, signal)) return;
      if (policy === 'never') {
        throw new ExecutionFailure(
          'image_not_found',
          `image ${JSON.stringify(image)} is not on the container engine and pullPolicy is "never": load it there first, or use pullPolicy "if-missing"`,
          { retryable: false },
        );
      }
    }
    const { repository, reference } = splitImageReference(image);
    try {
      await this.engine.pullImage(repository, reference, signal);
    } catch (err) {
      if (signal.aborted || err instanceof EngineUnavailableError) throw err;
      throw new ExecutionFailure('image_pull_failed', `could not pull image ${JSON.stringify(image)} (pullPolicy "${policy}"): ${(err as Error).message}`, {
        retryable: true,
      });
    }
  }

  /**
   * On timeout or cancel: SIGTERM now, SIGKILL after the grace. `started()` is called once the
   * start call returned: a SIGTERM sent while the start was under way may have found nothing
   * running yet, and is sent again (the SIGKILL timer already runs).
   */
  private stopOnAbort(containerId: string, ctx: ExecutionContext): { started(): Promise<void>; dispose(): void } {
    let killTimer: NodeJS.Timeout | undefined;
    let term: Promise<boolean> | undefined;
    const send = (sig: 'SIGTERM' | 'SIGKILL') =>
      this.engine.killContainer(containerId, sig).catch((err: unknown) => {
        this.warn(`could not send ${sig} to a container`, { containerId, err: String(err) });
        return false;
      });
    const onAbort = () => {
      term = send('SIGTERM');
      killTimer = setTimeout(() => void send('SIGKILL'), ctx.killGraceMs);
    };
    if (ctx.signal.aborted) onAbort();
    else ctx.signal.addEventListener('abort', onAbort, { once: true });
    return {
      async started() {
        if (term && !(await term)) term = send('SIGTERM');
      },
      dispose() {
        ctx.signal.removeEventListener('abort', onAbort);
        clearTimeout(killTimer);
      },
    };
  }

  /** Follows the logs into `output`; `settle` waits for the stream's end, at most `ms`. */
  private followLogs(containerId: string, output: ContainerOutput): { settle(ms: number): Promise<void> } {
    const controller = new AbortController();
    const done = (async () => {
      const { stream, multiplexed } = await this.engine.followLogs(containerId, controller.signal);
      const demux = new LogDemuxer((s, data) => output.push(s, data));
      for await (const chunk of stream) {
        if (multiplexed) demux.push(chunk as Buffer);
        else output.push('stdout', chunk as Buffer);
      }
    })().catch((err: unknown) => {
      if (!controller.signal.aborted) this.warn('the log stream of a container failed; its output may be incomplete', { containerId, err: String(err) });
    });
    return {
      async settle(ms) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([done, new Promise((r) => (timer = setTimeout(r, ms)))]);
        clearTimeout(timer);
        controller.abort();
        output.end();
      },
    };
  }

  private async exitFailure(c: OwnedContainer, exitCode: number, t: { stdoutTail: string; stderrTail: string }): Promise<ExecutionFailure> {
    const limit = c.memoryBytes;
    let oomKilled = false;
    try {
      oomKilled = (await this.engine.inspectContainer(c.id)).State.OOMKilled;
    } catch (err) {
      this.warn('could not inspect a stopped container', { containerId: c.id, err: String(err) });
    }
    if (oomKilled) {
      return new ExecutionFailure('oom_killed', `the container ran out of memory${limit ? ` (limit ${formatBytes(limit)})` : ''} and was killed (exit code ${exitCode})`, {
        exitCode,
        ...t,
      });
    }
    if (exitCode === 137 && limit !== undefined) {
      // Nobody here sent SIGKILL (an abort was handled before), and the kernel enforces the
      // memory limit; but podman with runc on cgroup v1 does not report OOMKilled.
      return new ExecutionFailure(
        'oom_killed',
        `the container was killed by SIGKILL (exit code 137) with a memory limit of ${formatBytes(limit)}: most likely it exceeded the limit (the engine did not report OOMKilled)`,
        { exitCode, ...t },
      );
    }
    return new ExecutionFailure('exit_code', `exited with code ${exitCode}`, { exitCode, ...t });
  }

  /** Removes the container (when there is one) and its scratch directory; failures are warned, not thrown. */
  private async cleanUp(c: OwnedContainer): Promise<void> {
    if (c.id) {
      await this.engine.removeContainer(c.id).catch((err: unknown) =>
        this.warn('could not remove a container (a restart with the same EXECUTOR_ID removes it)', { containerId: c.id, jobId: c.jobId, attempt: c.attempt, err: String(err) }),
      );
    }
    if (c.scratchDir) {
      await rm(c.scratchDir, { recursive: true, force: true }).catch((err: unknown) =>
        this.warn('could not remove a scratch directory', { scratchDir: c.scratchDir, jobId: c.jobId, err: String(err) }),
      );
    }
  }

  /** Every error leaves as an ExecutionFailure with a stable code and the output gathered so far. */
  private asFailure(err: unknown, phase: Phase, image: string, t: { stdoutTail: string; stderrTail: string }): ExecutionFailure {
    if (err instanceof ExecutionFailure) {
      // Failures raised before the container ran carry no output; give them what there is.
      if (err.stdoutTail !== undefined || err.stderrTail !== undefined) return err;
      return new ExecutionFailure(err.code, err.message, { retryable: err.retryable, exitCode: err.exitCode, ...t });
    }
    if (err instanceof EngineUnavailableError) return new ExecutionFailure('engine_unavailable', err.message, { retryable: true, ...t });
    if (err instanceof EngineError) {
      const permanent = err.status < 500 || /not found|no such file|permission denied|not a directory|invalid/i.test(err.message);
      switch (phase) {
        case 'create':
          if (err.status === 404) return new ExecutionFailure('image_not_found', `image ${JSON.stringify(image)} disappeared before the container was created: ${err.message}`, { retryable: true });
          return new ExecutionFailure('container_create_failed', `could not create the container: ${err.message}`, { retryable: !permanent });
        case 'start':
          return new ExecutionFailure('container_start_failed', `could not start the container: ${err.message}`, { retryable: !permanent, ...t });
        default:
          return new ExecutionFailure('engine_error', `the container engine failed (${phase}): ${err.message}`, { retryable: true, ...t });
      }
    }
    if ((err as Error)?.name === 'AbortError') return new ExecutionFailure('aborted', 'aborted', t);
    return new ExecutionFailure('engine_error', `the docker backend failed (${phase}): ${String(err)}`, { retryable: true, ...t });
  }
}

/**
 * A container's output: each line to `ctx.log` as it arrives (live followers, stored logs), and
 * the end of each stream kept for the attempt's stdout and stderr tails.
 */
class ContainerOutput {
  private readonly tail: Record<LogStream, OutputTail>;
  private readonly lines: Record<LogStream, ReturnType<typeof lineSplitter>>;

  constructor(ctx: ExecutionContext) {
    this.tail = { stdout: new OutputTail(ctx.outputTailBytes), stderr: new OutputTail(ctx.outputTailBytes) };
    this.lines = {
      stdout: lineSplitter((line) => ctx.log?.('stdout', line)),
      stderr: lineSplitter((line) => ctx.log?.('stderr', line)),
    };
  }

  push(stream: LogStream, data: Buffer): void {
    this.tail[stream].push(data);
    this.lines[stream].push(data);
  }

  /** The streams are over: a last line without its newline goes out too. */
  end(): void {
    this.lines.stdout.end();
    this.lines.stderr.end();
  }

  tails(): { stdoutTail: string; stderrTail: string } {
    return { stdoutTail: this.tail.stdout.toString(), stderrTail: this.tail.stderr.toString() };
  }
}

/**
 * The mounted directory is writable by whatever user the image runs as; its parent can be passed
 * through (0711) but not listed, so other host users cannot find it. A dependent job's parents go
 * in `.blixard/parents.json` there.
 */
async function prepareScratch(outer: string, mounted: string, parents: ExecutionJob<unknown>['parents']): Promise<void> {
  try {
    await chmod(outer, 0o711);
    await mkdir(mounted);
    await chmod(mounted, 0o777);
    if (parents.length > 0) {
      await mkdir(path.join(mounted, '.blixard'));
      await writeFile(path.join(mounted, '.blixard', 'parents.json'), JSON.stringify(parents));
    }
  } catch (err) {
    throw new ExecutionFailure('scratch_failed', `could not prepare the scratch directory ${mounted}: ${(err as Error).message}`);
  }
}
