import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BlixardClient } from '@blixard/client';
import { ExecutionFailure } from '@blixard/executor-sdk';
import { createTestInfra, TestInfra, waitFor } from '@blixard/testing';
import { InProcessStack, startStack } from '../../../libs/testing/test/stack';
import { DockerBackend } from '../src/docker-backend';
import { containerSpec, LABELS, parseDockerPayload } from '../src/docker-payload';
import { DockerEngine } from '../src/engine-client';
import { ensureTestEngine, TEST_IMAGE, testSettings } from './engine';

// Every job here runs as a real container on a real engine (podman's Docker-compatible API in
// CI, see .ci/podman-engine.sh), dispatched through the real stack.
describe('docker jobs run as containers through the Docker Engine API', () => {
  let infra: TestInfra;
  let stack: InProcessStack;
  let client: BlixardClient;
  let engine: DockerEngine;
  let backend: DockerBackend;
  let scratchRoot: string;
  const workerId = `docker-test-${randomBytes(4).toString('hex')}`;
  /** What the backend warned about (a failed removal, a broken log stream...). */
  const warnings: string[] = [];

  const containersOf = (labels: Record<string, string>) => engine.listContainers({ [LABELS.workerId]: workerId, ...labels });

  beforeAll(async () => {
    const socket = await ensureTestEngine();
    engine = new DockerEngine(socket);
    scratchRoot = mkdtempSync(path.join(tmpdir(), 'blixard-docker-test-'));
    backend = new DockerBackend(testSettings(socket, { scratchDir: scratchRoot }), (message) => warnings.push(message));
    infra = await createTestInfra('docker');
    // TIMEOUT_GRACE_MS well above the kill grace: the executor, not the scheduler's backstop, ends timed-out attempts here.
    const env = infra.env({ EXECUTOR_CONCURRENCY: '4', EXECUTOR_ID: workerId, KILL_GRACE_MS: '500', TIMEOUT_GRACE_MS: '15000' });
    stack = await startStack(env, { executors: [backend] });
    client = stack.client;
  });

  afterAll(async () => {
    await stack?.stop();
    await infra?.cleanup();
    backend?.close();
    engine?.close();
    if (scratchRoot) rmSync(scratchRoot, { recursive: true, force: true });
  });

  it('runs hello world to COMPLETED with its stdout and stderr, demultiplexed', async () => {
    const { id } = await client.submit({
      backend: 'docker',
      payload: { image: TEST_IMAGE, command: ['sh', '-c', 'echo hello world; echo to stderr >&2; echo again'] },
    });
    const job = await client.waitForTerminal(id);
    expect(job.status).toBe('COMPLETED');
    expect(job.exitCode).toBe(0);
    expect(job.stdoutTail).toBe('hello world\nagain\n');
    expect(job.stderrTail).toBe('to stderr\n');
    expect(job.attempts).toEqual([expect.objectContaining({ attempt: 1, outcome: 'COMPLETED', workerId })]);
    // Every line was also streamed to the job's log, each stream in order.
    const logs = await waitFor('the complete log', async () => {
      const l = await client.logs(id);
      return l.complete ? l : undefined;
    });
    const lines = (stream: string) => logs.lines.filter((l) => l.stream === stream).map((l) => l.line);
    expect(lines('stdout')).toEqual(['hello world', 'again']);
    expect(lines('stderr')).toEqual(['to stderr']);
  });

  it('ends a container that exits non-zero FAILED with its exit code and output', async () => {
    const { id } = await client.submit({
      backend: 'docker',
      payload: { image: TEST_IMAGE, command: ['sh', '-c', 'echo partial; echo "something broke" >&2; exit 3'] },
      maxAttempts: 1,
    });
    const job = await client.waitForTerminal(id);
    expect(job.status).toBe('FAILED');
    expect(job).toMatchObject({ exitCode: 3, errorCode: 'exit_code', error: 'exited with code 3', stdoutTail: 'partial\n', stderrTail: 'something broke\n' });
  });

  it('passes env, the working directory, the job id and attempt, and isolates the network by default', async () => {
    const { id } = await client.submit({
      backend: 'docker',
      payload: {
        image: TEST_IMAGE,
        command: ['sh', '-c', 'echo "$GREETING from $(pwd) job=$BLIXARD_JOB_ID attempt=$BLIXARD_ATTEMPT"; ls /sys/class/net'],
        env: { GREETING: 'hej' },
        workingDir: '/work/dir',
      },
    });
    const job = await client.waitForTerminal(id);
    expect(job.status).toBe('COMPLETED');
    // network "none": a loopback interface and nothing else.
    expect(job.stdoutTail).toBe(`hej from /work/dir job=${id} attempt=1\nlo\n`);
  });

  it('mounts a per-attempt scratch directory from the host and removes it afterwards', async () => {
    const { id } = await client.submit({
      backend: 'docker',
      payload: {
        image: TEST_IMAGE,
        user: '65534:65534', // not root: the scratch directory is writable by the job's user anyway
        command: ['sh', '-c', 'echo data > "$BLIXARD_SCRATCH_DIR/file" && cat /data/scratch/file && grep -c " /data/scratch " /proc/mounts'],
        scratchPath: '/data/scratch',
      },
    });
    const job = await client.waitForTerminal(id);
    expect(job.stderrTail).toBe('');
    expect(job.status).toBe('COMPLETED');
    expect(job.stdoutTail).toBe('data\n1\n');
    expect(readdirSync(scratchRoot)).toEqual([]);
  });

  it("gives a dependent job its parents' results in a file on its scratch mount", async () => {
    const parent = await client.submit({ backend: 'docker', payload: { image: TEST_IMAGE, command: ['true'] } });
    const child = await client.submit({
      backend: 'docker',
      payload: { image: TEST_IMAGE, command: ['sh', '-c', 'echo "$BLIXARD_PARENTS_FILE"; cat "$BLIXARD_PARENTS_FILE"'] },
      dependsOn: [parent.id],
    });
    const job = await client.waitForTerminal(child.id);
    expect(job.status).toBe('COMPLETED');
    const [file, json] = job.stdoutTail!.split('\n');
    expect(file).toBe('/scratch/.blixard/parents.json');
    expect(JSON.parse(json!)).toEqual([{ jobId: parent.id, status: 'COMPLETED', result: null }]);
  });

  it('stops a container at its timeout (SIGTERM, then SIGKILL after the grace) and removes it', async () => {
    // `sleep` as PID 1 ignores SIGTERM: only the SIGKILL after KILL_GRACE_MS ends it.
    const { id } = await client.submit({ backend: 'docker', payload: { image: TEST_IMAGE, command: ['sleep', '60'] }, timeoutMs: 1_000, maxAttempts: 1 });
    const job = await client.waitForTerminal(id);
    expect(job.status).toBe('FAILED');
    expect(job.errorCode).toBe('timed_out');
    expect(job.attempts![0]!.outcome).toBe('TIMED_OUT');
    expect(job.attempts![0]!.durationMs).toBeGreaterThanOrEqual(1_000);
    expect(job.attempts![0]!.durationMs).toBeLessThan(10_000);
    expect(await containersOf({ [LABELS.jobId]: id })).toEqual([]);
  });

  it('cancels a running container and removes it', async () => {
    const { id } = await client.submit({ backend: 'docker', payload: { image: TEST_IMAGE, command: ['sleep', '60'] } });
    await waitFor('the container to run', async () => {
      const [c] = await containersOf({ [LABELS.jobId]: id });
      return c?.State === 'running' ? c : undefined;
    });
    expect((await client.cancel(id)).status).toBe('CANCELLED');
    // The job is CANCELLED at once; the executor stops and removes the container right after.
    await waitFor('the container to be removed', async () => (await containersOf({ [LABELS.jobId]: id })).length === 0, 10_000);
    const job = await client.get(id);
    expect(job.attempts![0]).toMatchObject({ outcome: 'CANCELLED' });
  });

  it('stops with SIGTERM first: a container that handles it ends cleanly, with its output kept', async () => {
    // Straight through the backend: through the stack a cancelled job's last report is dropped.
    const controller = new AbortController();
    const payload = backend.validate({ image: TEST_IMAGE, command: ['sh', '-c', 'trap "echo got TERM; exit 143" TERM; echo ready; touch /scratch/ready; while true; do sleep 0.1; done'] });
    const jobId = '00000000-0000-7000-8000-00000000000a';
    const run = backend.execute(
      { id: jobId, attempt: 1, maxAttempts: 1, queue: 'default', labels: {}, timeoutMs: null, payload, parents: [] },
      { workerId, attempt: 1, signal: controller.signal, outputTailBytes: 65_536, killGraceMs: 30_000 },
    );
    // Running is not enough: the shell must have set its trap (PID 1 ignores an unhandled SIGTERM).
    await waitFor('the trap to be set', () => readdirSync(scratchRoot).some((d) => existsSync(path.join(scratchRoot, d, 'scratch', 'ready'))));
    const started = Date.now();
    controller.abort('cancelled');
    const failure = await run.then(
      () => undefined,
      (err: unknown) => err as ExecutionFailure,
    );
    // Well before the 30 s grace: the trap ran on SIGTERM, no SIGKILL was needed.
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(failure).toBeInstanceOf(ExecutionFailure);
    expect(failure).toMatchObject({ exitCode: 143, stdoutTail: 'ready\ngot TERM\n' });
    expect(await containersOf({ [LABELS.jobId]: jobId })).toEqual([]);
  });

  it('streams each line to ctx.log while the container runs, stdout and stderr apart', async () => {
    const lines: [string, string][] = [];
    const jobId = '00000000-0000-7000-8000-00000000000b';
    const payload = backend.validate({
      image: TEST_IMAGE,
      // The second line arrives only after the test saw the first: streamed, not collected at the end.
      command: ['sh', '-c', 'echo first; echo oops >&2; while [ ! -e /scratch/go ]; do sleep 0.05; done; printf "last, no newline"'],
    });
    const run = backend.execute(
      { id: jobId, attempt: 1, maxAttempts: 1, queue: 'default', labels: {}, timeoutMs: null, payload, parents: [] },
      { workerId, attempt: 1, signal: new AbortController().signal, outputTailBytes: 65_536, killGraceMs: 500, log: (s, line) => lines.push([s, line]) },
    );
    await waitFor('the first lines', () => lines.length >= 2, 15_000);
    expect(lines).toEqual(expect.arrayContaining([['stdout', 'first'], ['stderr', 'oops']]));
    const [c] = await containersOf({ [LABELS.jobId]: jobId });
    const inspect = await engine.inspectContainer(c!.Id);
    writeFileSync(path.join((inspect.HostConfig.Binds as string[])[0]!.split(':')[0]!, 'go'), '');
    expect(await run).toMatchObject({ exitCode: 0, stdoutTail: 'first\nlast, no newline', stderrTail: 'oops\n' });
    expect(lines).toEqual(expect.arrayContaining([['stdout', 'first'], ['stderr', 'oops'], ['stdout', 'last, no newline']]));
    expect(lines).toHaveLength(3);
  });

  it('sets the cpu and memory limits, and a container over its memory limit fails as OOM-killed', async () => {
    const { id } = await client.submit({
      backend: 'docker',
      payload: {
        image: TEST_IMAGE,
        // Wait until the test has inspected it, then hold 64 MB in a shell variable.
        command: ['sh', '-c', 'while [ ! -e /scratch/go ]; do sleep 0.05; done; x=$(head -c 64000000 /dev/zero | tr "\\0" a); echo survived ${#x}'],
        resources: { cpu: '500m', memory: '16Mi' },
      },
      maxAttempts: 1,
    });
    const container = await waitFor('the container to run', async () => {
      const [c] = await containersOf({ [LABELS.jobId]: id });
      return c?.State === 'running' ? c : undefined;
    });
    const inspect = await engine.inspectContainer(container.Id);
    expect(inspect.HostConfig).toMatchObject({ Memory: 16 * 1024 * 1024, MemorySwap: 16 * 1024 * 1024, NanoCpus: 500_000_000, NetworkMode: 'none' });
    expect(inspect.Config.Labels).toMatchObject({ [LABELS.jobId]: id, [LABELS.attempt]: '1', [LABELS.workerId]: workerId, [LABELS.managed]: 'true' });
    // Let it go on: write the flag into its scratch directory, from the host side of the bind.
    const [hostDir, containerDir] = (inspect.HostConfig.Binds as string[])[0]!.split(':');
    expect(containerDir).toBe('/scratch');
    expect(hostDir!.startsWith(`${scratchRoot}/`)).toBe(true);
    writeFileSync(path.join(hostDir!, 'go'), '');

    const job = await client.waitForTerminal(id);
    expect(job.status).toBe('FAILED');
    expect(job.errorCode).toBe('oom_killed');
    expect(job.exitCode).toBe(137);
    expect(job.error).toContain('16 MiB');
    expect(job.stdoutTail).not.toContain('survived');
  });

  it('fails a container the engine cannot start without retrying it, and still removes it', async () => {
    const { id } = await client.submit({ backend: 'docker', payload: { image: TEST_IMAGE, command: ['/no/such/program'] }, maxAttempts: 3 });
    const job = await client.waitForTerminal(id);
    expect(job.status).toBe('FAILED');
    expect(job.errorCode).toBe('container_start_failed');
    expect(job.error).toMatch(/^could not start the container: .*\/no\/such\/program/);
    expect(job.attempts).toHaveLength(1);
    expect(await containersOf({ [LABELS.jobId]: id })).toEqual([]);
  });

  it('fails a job whose image is missing with pullPolicy "never" at once, without retries', async () => {
    const { id } = await client.submit({
      backend: 'docker',
      payload: { image: 'localhost/blixard-no-such-image:1', command: ['true'], pullPolicy: 'never' },
      maxAttempts: 3,
    });
    const job = await client.waitForTerminal(id);
    expect(job.status).toBe('FAILED');
    expect(job.errorCode).toBe('image_not_found');
    expect(job.error).toContain('"localhost/blixard-no-such-image:1" is not on the container engine and pullPolicy is "never"');
    expect(job.attempts).toHaveLength(1);
  });

  it('reports a failed pull (no registry is reachable here) as a clear error on the job', async () => {
    const { id } = await client.submit({
      backend: 'docker',
      payload: { image: 'registry.invalid/blixard/nothing:1', command: ['true'], pullPolicy: 'always' },
      maxAttempts: 1,
      timeoutMs: 60_000,
    });
    const job = await client.waitForTerminal(id);
    expect(job.status).toBe('FAILED');
    expect(job.errorCode).toBe('image_pull_failed');
    expect(job.error).toMatch(/^could not pull image "registry.invalid\/blixard\/nothing:1" \(pullPolicy "always"\): ./);
  });

  it('refuses a payload it cannot run, naming the field, without running anything', async () => {
    let error: string | null | undefined;
    try {
      const { id } = await client.submit({ backend: 'docker', payload: { image: 'Not An Image!', network: 'host' }, maxAttempts: 3 });
      const job = await client.waitForTerminal(id);
      expect(job).toMatchObject({ status: 'FAILED', errorCode: 'invalid_payload' });
      expect(job.attempts).toHaveLength(1);
      error = job.error;
    } catch (err) {
      // Once the gateway validates through a live executor, the same problem is a 400 at submit.
      error = (err as Error).message;
    }
    expect(error).toContain('image: is not an image reference');
    expect(error).toContain('network: "host" is not allowed on this executor');
  });

  it('removes, when it starts, a container an earlier run of its worker id created but never started', async () => {
    const leftoverWorker = `${workerId}-leftover`;
    const scratchDir = path.join(scratchRoot, 'blixard-scratch-leftover');
    mkdirSync(path.join(scratchDir, 'scratch'), { recursive: true });
    const spec = containerSpec({
      jobId: '00000000-0000-7000-8000-000000000000',
      attempt: 1,
      queue: 'default',
      workerId: leftoverWorker,
      startedAt: new Date(),
      timeoutMs: null,
      payload: parseDockerPayload({ image: TEST_IMAGE, command: ['sleep', '60'] }, ['none']),
      scratchHostDir: path.join(scratchDir, 'scratch'),
    });
    await engine.createContainer(`blixard-leftover-${randomBytes(3).toString('hex')}`, spec);
    expect(await engine.listContainers({ [LABELS.workerId]: leftoverWorker })).toHaveLength(1);

    const restarted = await stack.addExecutor(backend, { EXECUTOR_ID: leftoverWorker });
    await restarted.stop();
    expect(await engine.listContainers({ [LABELS.workerId]: leftoverWorker })).toEqual([]);
    expect(existsSync(scratchDir)).toBe(false);
  });

  it('leaves no container and no scratch directory behind, and had nothing to warn about', async () => {
    expect(await containersOf({})).toEqual([]);
    expect(readdirSync(scratchRoot)).toEqual([]);
    expect(warnings).toEqual(['removed a container left behind by an earlier run of this worker (never started, so not adopted)']);
  });
});
