import { BlixardClient } from '@blixard/client';
import { createTestInfra, ServiceProcess, TestInfra, waitFor } from '@blixard/testing';
import { InProcessStack, startStack } from '../../../libs/testing/test/stack';
import { FakeKubeApi } from './fake-kube-api';
import { kubeExecutorEnv, roleRules, TOKEN } from './k8s-harness';

/**
 * The other side of adoption: an executor that comes back after the registry declared its worker
 * lost. Its attempt was already retried, so the Job it finds is no longer its to report; the
 * heartbeat names it an orphan, the Job is deleted, and the job still completes exactly once.
 */
describe('executor-kubernetes restarted after its worker was declared lost', () => {
  const WORKER = 'k8s-worker-late';
  let infra: TestInfra;
  let fake: FakeKubeApi;
  let stack: InProcessStack;
  let client: BlixardClient;
  let executor: ServiceProcess | undefined;

  beforeAll(async () => {
    infra = await createTestInfra('k8s_late_restart');
    fake = await FakeKubeApi.start({ token: TOKEN, rules: roleRules() });
    // Lost after 1 s of silence: far shorter than the restart below.
    stack = await startStack(infra.env({ WORKER_LOST_AFTER_MISSED: '4', HEARTBEAT_INTERVAL_MS: '250' }));
    client = stack.client;
  });

  afterAll(async () => {
    await executor?.stop();
    await stack?.stop();
    await fake?.close();
    await infra?.cleanup();
  });

  it('deletes the Job of the superseded attempt and completes the job once, on the retry', async () => {
    const env = kubeExecutorEnv(infra.env({ HEARTBEAT_INTERVAL_MS: '250' }), fake.url, WORKER);
    executor = await ServiceProcess.start('executor-kubernetes', env);
    await waitFor('the executor to register', async () => (await client.workers()).some((w) => w.id === WORKER && w.status === 'ONLINE'));
    const job = await client.submit({
      backend: 'kubernetes',
      // Attempt 1 outlives the restart below; the retry is quick.
      payload: { image: 'fake/busybox', args: ['print', 'run', 'if-attempt', '1', 'sleep', '60', 'result', '"finished"'] },
      maxAttempts: 3,
      backoff: { type: 'fixed', baseMs: 100, maxMs: 100, jitter: 0 },
    });
    const first = `blixard-${job.id}-1`;
    await waitFor('attempt 1 to run', async () => (await client.get(job.id)).status === 'RUNNING' && fake.jobs.has(`blixard-jobs/${first}`));

    await executor.kill('SIGKILL');
    await waitFor('the worker to be declared lost', async () => (await client.worker(WORKER)).status === 'LOST', 10_000);
    await waitFor('attempt 1 to be given up on', async () => (await client.get(job.id)).attempts![0]!.outcome === 'WORKER_LOST', 10_000);

    executor = await ServiceProcess.start('executor-kubernetes', env);
    const done = await client.waitForTerminal(job.id, { timeoutMs: 30_000 });
    expect(done).toMatchObject({ status: 'COMPLETED', result: 'finished', attempt: 2 });
    expect(done.attempts!.map((a) => [a.attempt, a.outcome])).toEqual([[1, 'WORKER_LOST'], [2, 'COMPLETED']]);
    // The adopted Job of attempt 1 was an orphan: deleted (with its pod), never reported as the job's outcome.
    await waitFor('the superseded Job to be deleted', () => fake.deleted.some((d) => d.name === first && d.propagationPolicy === 'Background'), 5_000);
    expect(fake.createdFor(job.id).map((c) => c.name)).toEqual([first, `blixard-${job.id}-2`]);
    expect(fake.deleted.filter((d) => d.name === `blixard-${job.id}-2`)).toEqual([]);
  });
});
