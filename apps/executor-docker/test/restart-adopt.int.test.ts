import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BlixardClient } from '@blixard/client';
import { createTestInfra, ServiceProcess, TestInfra, waitFor } from '@blixard/testing';
import { InProcessStack, startStack } from '../../../libs/testing/test/stack';
import { LABELS } from '../src/docker-payload';
import { DockerEngine } from '../src/engine-client';
import { ensureTestEngine, TEST_IMAGE } from './engine';

/**
 * Containers outlive the executor process. An executor SIGKILLed mid-attempt and started again
 * with the same EXECUTOR_ID adopts the containers it left — one still running, one that exited
 * while no executor watched — follows each to its end, reports it as the same attempt, and
 * removes it. (The executor runs as a process here, from apps/executor-docker/dist.)
 */
describe('executor-docker restarted with the same worker id', () => {
  const WORKER = `docker-restart-${randomBytes(4).toString('hex')}`;
  let infra: TestInfra;
  let stack: InProcessStack;
  let client: BlixardClient;
  let engine: DockerEngine;
  let executor: ServiceProcess | undefined;
  let scratchRoot: string;
  let executorEnv: Record<string, string>;

  const containerOf = async (jobId: string) => (await engine.listContainers({ [LABELS.workerId]: WORKER, [LABELS.jobId]: jobId }))[0];
  /** Lets a waiting job go on: the flag file in its scratch directory, written from the host. */
  const release = async (jobId: string) => {
    const c = await engine.inspectContainer((await containerOf(jobId))!.Id);
    writeFileSync(path.join((c.HostConfig.Binds as string[])[0]!.split(':')[0]!, 'go'), '');
  };

  beforeAll(async () => {
    const socket = await ensureTestEngine();
    engine = new DockerEngine(socket);
    scratchRoot = mkdtempSync(path.join(tmpdir(), 'blixard-docker-restart-'));
    infra = await createTestInfra('docker_restart');
    // Lost-worker detection (10 s) and the run lease (10 s) outlast an executor restart (~2 s).
    const env = infra.env({ HEARTBEAT_INTERVAL_MS: '250', WORKER_LOST_AFTER_MISSED: '40', RUN_LEASE_MS: '10000' });
    stack = await startStack(env);
    client = stack.client;
    executorEnv = { ...env, EXECUTOR_ID: WORKER, DOCKER_HOST: `unix://${socket}`, DOCKER_SCRATCH_DIR: scratchRoot, KILL_GRACE_MS: '500' };
  });

  afterAll(async () => {
    await executor?.stop();
    await stack?.stop();
    await infra?.cleanup();
    engine?.close();
    if (scratchRoot) rmSync(scratchRoot, { recursive: true, force: true });
  });

  it('adopts a running and an exited container, reports each as its attempt, and removes both', async () => {
    executor = await ServiceProcess.start('executor-docker', executorEnv);
    await waitFor('the executor to register', async () => (await client.workers()).some((w) => w.id === WORKER && w.status === 'ONLINE'));
    const wait = 'while [ ! -e /scratch/go ]; do sleep 0.05; done';
    const running = await client.submit({ backend: 'docker', payload: { image: TEST_IMAGE, command: ['sh', '-c', `echo before; ${wait}; echo after`] }, maxAttempts: 1 });
    const exited = await client.submit({ backend: 'docker', payload: { image: TEST_IMAGE, command: ['sh', '-c', `echo ran; ${wait}; exit 4`] }, maxAttempts: 1 });
    for (const job of [running, exited]) {
      await waitFor('both containers to run', async () => (await containerOf(job.id))?.State === 'running' && (await client.get(job.id)).status === 'RUNNING');
    }

    await executor.kill('SIGKILL');
    // The containers do not depend on the executor's process: one goes on, one ends meanwhile.
    await release(exited.id);
    await waitFor('the second container to exit', async () => (await containerOf(exited.id))?.State === 'exited');
    expect((await containerOf(running.id))?.State).toBe('running');

    executor = await ServiceProcess.start('executor-docker', executorEnv);
    const exitedJob = await client.waitForTerminal(exited.id, { timeoutMs: 30_000 });
    expect(exitedJob).toMatchObject({ status: 'FAILED', exitCode: 4, errorCode: 'exit_code', stdoutTail: 'ran\n' });
    expect(exitedJob.attempts).toEqual([expect.objectContaining({ attempt: 1, workerId: WORKER, outcome: 'FAILED' })]);

    await release(running.id);
    const runningJob = await client.waitForTerminal(running.id, { timeoutMs: 30_000 });
    expect(runningJob).toMatchObject({ status: 'COMPLETED', exitCode: 0, stdoutTail: 'before\nafter\n' });
    expect(runningJob.attempts).toEqual([expect.objectContaining({ attempt: 1, workerId: WORKER, outcome: 'COMPLETED' })]);

    await waitFor('both containers to be removed', async () => (await engine.listContainers({ [LABELS.workerId]: WORKER })).length === 0, 10_000);
    await waitFor('both scratch directories to be removed', () => readdirSync(scratchRoot).length === 0, 10_000);
  });
});
