import { BlixardApiError, BlixardClient } from '@blixard/client';
import type { JobView } from '@blixard/contracts';
import { createTestInfra, percentile, ServiceProcess, TestInfra, waitFor } from '@blixard/testing';
import { InProcessStack, startStack } from '../../../libs/testing/test/stack';
import { KUBE_API_PERMISSIONS } from '../src/kube-api';
import { FakeKubeApi } from './fake-kube-api';
import { kubeExecutorEnv, NAMESPACE, roleRules, TOKEN } from './k8s-harness';

/**
 * The kubernetes executor end to end: the real gateway, scheduler and registry in-process, the
 * executor as its own node process (so the real @kubernetes/client-node, which Jest cannot load,
 * does every call), against a fake API server that enforces the Role from
 * k8s/base/executor-kubernetes.yaml.
 */

const WORKER = 'k8s-worker-1';

describe('executor-kubernetes against a fake Kubernetes API server', () => {
  let infra: TestInfra;
  let fake: FakeKubeApi;
  let stack: InProcessStack;
  let client: BlixardClient;
  let executor: ServiceProcess;
  let executorEnv: Record<string, string>;

  const jobNameOf = (j: JobView, attempt = 1) => `blixard-${j.id}-${attempt}`;
  const podsOf = (j: JobView) => fake.livePods().filter((p) => p.metadata.labels['blixard.io/job-id'] === j.id);
  const runningPod = (j: JobView) => podsOf(j).find((p) => p.status.phase === 'Running');

  beforeAll(async () => {
    infra = await createTestInfra('k8s_executor');
    fake = await FakeKubeApi.start({ token: TOKEN, rules: roleRules(), podCreateDelayMs: 10, pendingMs: 50 });
    // Lost-worker detection (10 s) and the run lease (10 s) outlast an executor restart (~2 s).
    const env = infra.env({ WORKER_LOST_AFTER_MISSED: '40', RUN_LEASE_MS: '10000' });
    stack = await startStack(env);
    client = stack.client;
    executorEnv = { ...kubeExecutorEnv(env, fake.url, WORKER), DRAIN_TIMEOUT_MS: '1000' };
    executor = await ServiceProcess.start('executor-kubernetes', executorEnv);
    await waitFor('the kubernetes executor to register', async () => (await client.workers()).some((w) => w.id === WORKER && w.status === 'ONLINE'));
  });

  afterAll(async () => {
    await executor?.stop();
    await stack?.stop();
    await fake?.close();
    await infra?.cleanup();
  });

  it('refuses a bad payload at submit with a 400 naming the field', async () => {
    const err = await client.submit({ backend: 'kubernetes', payload: { image: 'busybox', resources: { requests: { cpu: 'lots' } } } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BlixardApiError);
    expect((err as Error).message).toMatch(/^400 /);
    expect((err as Error).message).toContain('resources.requests.cpu: is not a quantity');
  });

  it('runs an attempt as a batch/v1 Job and completes with its log tail and termination message', async () => {
    const job = await client.submit({
      backend: 'kubernetes',
      payload: {
        image: 'fake/busybox:1.36',
        command: ['print', 'hello from the pod', 'printenv', 'GREETING', 'printenv', 'BLIXARD_ATTEMPT'],
        args: ['result', '{"answer":42}'],
        env: { GREETING: 'hi' },
        resources: { requests: { cpu: '100m', memory: '64Mi' }, limits: { memory: '128Mi' } },
      },
      labels: { 'node/kubernetes.io/os': 'linux', team: 'core' },
      timeoutMs: 30_000,
    });
    const done = await client.waitForTerminal(job.id, { timeoutMs: 20_000 });
    expect(done).toMatchObject({ status: 'COMPLETED', exitCode: 0, stdoutTail: 'hello from the pod\nhi\n1\n', result: { answer: 42 }, workerId: WORKER });

    const created = fake.createdFor(job.id);
    expect(created).toHaveLength(1);
    const k8sJob = created[0]!.job;
    expect(k8sJob.metadata).toMatchObject({
      name: jobNameOf(job),
      namespace: NAMESPACE,
      labels: { 'app.kubernetes.io/managed-by': 'blixard', 'blixard.io/job-id': job.id, 'blixard.io/attempt': '1', 'blixard.io/worker': WORKER },
    });
    expect(k8sJob.spec).toMatchObject({ backoffLimit: 0, activeDeadlineSeconds: 30, ttlSecondsAfterFinished: 300 });
    const pod = k8sJob.spec.template.spec;
    expect(pod).toMatchObject({ restartPolicy: 'Never', nodeSelector: { 'kubernetes.io/os': 'linux' } });
    expect(pod.containers[0]).toMatchObject({ name: 'job', image: 'fake/busybox:1.36', resources: { requests: { cpu: '100m', memory: '64Mi' }, limits: { memory: '128Mi' } } });
    // A finished Job stays for `kubectl logs` until its TTL; Blixard does not delete it.
    expect(fake.deleted.filter((d) => d.name === jobNameOf(job))).toEqual([]);
  });

  it('fails an attempt with the container\'s exit code; Blixard, not Kubernetes, retries it', async () => {
    const job = await client.submit({
      backend: 'kubernetes',
      payload: { image: 'fake/busybox', args: ['print', 'about to fail', 'exit', '3'] },
      maxAttempts: 2,
      backoff: { type: 'fixed', baseMs: 100, maxMs: 100, jitter: 0 },
    });
    const done = await client.waitForTerminal(job.id, { timeoutMs: 20_000 });
    expect(done).toMatchObject({ status: 'FAILED', exitCode: 3, errorCode: 'exit_code', error: 'exited with code 3', stdoutTail: 'about to fail\n' });
    expect(done.attempts!.map((a) => [a.attempt, a.outcome, a.exitCode])).toEqual([[1, 'FAILED', 3], [2, 'FAILED', 3]]);
    // One Job per attempt, each with exactly one pod (backoffLimit 0).
    expect(fake.createdFor(job.id).map((c) => c.name)).toEqual([jobNameOf(job, 1), jobNameOf(job, 2)]);
    expect([...fake.pods.values()].filter((p) => p.obj.metadata.labels['blixard.io/job-id'] === job.id)).toHaveLength(2);
  });

  it('fails at once with the reason when the image cannot be pulled, and deletes the Job', async () => {
    const job = await client.submit({ backend: 'kubernetes', payload: { image: 'fake/missing:1.0' }, maxAttempts: 1 });
    const done = await client.waitForTerminal(job.id, { timeoutMs: 20_000 });
    expect(done).toMatchObject({ status: 'FAILED', errorCode: 'image_pull_failed' });
    expect(done.error).toMatch(/^the image could not be pulled: (ErrImagePull|ImagePullBackOff): /);
    expect(done.error).toContain('fake/missing:1.0');
    await waitFor('the Job to be deleted', () => fake.deleted.some((d) => d.name === jobNameOf(job) && d.propagationPolicy === 'Background'), 5_000);
  });

  it('fails an unschedulable pod after KUBE_START_TIMEOUT_MS with the scheduler\'s message, and deletes the Job', async () => {
    const job = await client.submit({ backend: 'kubernetes', payload: { image: 'fake/busybox', nodeSelector: { disktype: 'ssd' } }, maxAttempts: 1 });
    const done = await client.waitForTerminal(job.id, { timeoutMs: 20_000 });
    expect(done).toMatchObject({ status: 'FAILED', errorCode: 'unschedulable' });
    expect(done.error).toContain("didn't match Pod's node affinity/selector");
    await waitFor('the Job to be deleted', () => fake.deleted.some((d) => d.name === jobNameOf(job)), 5_000);
    expect(podsOf(job)).toEqual([]);
  });

  it('times out an attempt: deletes the Job and its pod, and keeps what it logged', async () => {
    const job = await client.submit({ backend: 'kubernetes', payload: { image: 'fake/busybox', args: ['print', 'working', 'sleep', '60'] }, timeoutMs: 1_500, maxAttempts: 1 });
    const done = await client.waitForTerminal(job.id, { timeoutMs: 20_000 });
    expect(done).toMatchObject({ status: 'FAILED', errorCode: 'timed_out', stdoutTail: 'working\n' });
    expect(done.attempts![0]).toMatchObject({ outcome: 'TIMED_OUT' });
    expect(fake.deleted.filter((d) => d.name === jobNameOf(job))).toEqual([expect.objectContaining({ propagationPolicy: 'Background', by: 'api' })]);
    await waitFor('the pod to be gone', () => podsOf(job).length === 0, 5_000);
    // Kubernetes enforces the timeout too, should the executor be gone.
    expect(fake.createdFor(job.id)[0]!.job.spec.activeDeadlineSeconds).toBe(2);
  });

  it('cancels a running attempt: the Job is deleted and its pod goes with it', async () => {
    const job = await client.submit({ backend: 'kubernetes', payload: { image: 'fake/busybox', args: ['sleep', '60'] } });
    await waitFor('the pod to run', () => runningPod(job), 10_000);
    await waitFor('the job to be RUNNING', async () => (await client.get(job.id)).status === 'RUNNING');
    expect((await client.cancel(job.id)).status).toBe('CANCELLED');
    await waitFor('the Job to be deleted', () => fake.deleted.some((d) => d.name === jobNameOf(job) && d.propagationPolicy === 'Background'), 5_000);
    await waitFor('the pod to be gone', () => podsOf(job).length === 0, 5_000);
    expect((await client.get(job.id)).attempts![0]).toMatchObject({ outcome: 'CANCELLED' });
  });

  it('drains on SIGTERM: a Job that outlives DRAIN_TIMEOUT_MS is deleted and its attempt handed back', async () => {
    const job = await client.submit({ backend: 'kubernetes', payload: { image: 'fake/busybox', args: ['if-attempt', '1', 'sleep', '60'] }, maxAttempts: 2, backoff: { type: 'fixed', baseMs: 100, maxMs: 100, jitter: 0 } });
    await waitFor('the pod to run', () => runningPod(job), 10_000);
    await waitFor('the job to be RUNNING', async () => (await client.get(job.id)).status === 'RUNNING');
    expect(await executor.stop()).toBe(0);
    expect(fake.deleted.filter((d) => d.name === jobNameOf(job, 1))).toEqual([expect.objectContaining({ propagationPolicy: 'Background' })]);
    expect((await client.get(job.id)).attempts![0]).toMatchObject({ outcome: 'FAILED', errorCode: 'worker_shutdown' });
    // The next executor runs the retry.
    executor = await ServiceProcess.start('executor-kubernetes', executorEnv);
    const done = await client.waitForTerminal(job.id, { timeoutMs: 20_000 });
    expect(done.attempts!.map((a) => [a.attempt, a.outcome])).toEqual([[1, 'FAILED'], [2, 'COMPLETED']]);
  });

  it('survives its own SIGKILL: a new process with the same EXECUTOR_ID adopts its Jobs and reports each once', async () => {
    // One still running when the new executor comes, one that fails while no executor is there.
    const long = await client.submit({ backend: 'kubernetes', payload: { image: 'fake/busybox', args: ['print', 'before', 'wait', 'long-go', 'print', 'after', 'result', '"done"'] }, timeoutMs: 60_000, maxAttempts: 1 });
    const short = await client.submit({ backend: 'kubernetes', payload: { image: 'fake/busybox', args: ['print', 'bye', 'wait', 'short-go', 'exit', '4'] }, maxAttempts: 1 });
    await waitFor('both pods to run', () => runningPod(long) && runningPod(short), 10_000);
    await waitFor('both jobs to be RUNNING', async () => (await client.get(long.id)).status === 'RUNNING' && (await client.get(short.id)).status === 'RUNNING');

    await executor.kill('SIGKILL'); // no drain: nothing is reported, nothing is deleted
    fake.release('short-go');
    await waitFor('the short pod to fail while no executor watches', () => [...fake.pods.values()].some((p) => p.obj.metadata.labels['blixard.io/job-id'] === short.id && p.obj.status.phase === 'Failed'), 5_000);
    expect((await client.get(long.id)).status).toBe('RUNNING');
    expect((await client.get(short.id)).status).toBe('RUNNING');

    const listsBefore = fake.requests.filter((r) => r.verb === 'list' && r.resource === 'jobs').length;
    executor = await ServiceProcess.start('executor-kubernetes', executorEnv);
    // The new process looks its Jobs up by label once, at start.
    await waitFor('the new process to list its Jobs', () => fake.requests.filter((r) => r.verb === 'list' && r.resource === 'jobs').length === listsBefore + 1, 10_000);
    const shortDone = await client.waitForTerminal(short.id, { timeoutMs: 30_000 });
    expect(shortDone).toMatchObject({ status: 'FAILED', exitCode: 4, errorCode: 'exit_code', stdoutTail: 'bye\n' });
    expect((await client.get(long.id)).status).toBe('RUNNING');
    fake.release('long-go');
    const longDone = await client.waitForTerminal(long.id, { timeoutMs: 30_000 });
    expect(longDone).toMatchObject({ status: 'COMPLETED', result: 'done', stdoutTail: 'before\nafter\n', workerId: WORKER });
    // Exactly once: one attempt each, one Job each, nothing requeued.
    expect(longDone.attempts!.map((a) => [a.attempt, a.outcome, a.workerId])).toEqual([[1, 'COMPLETED', WORKER]]);
    expect(shortDone.attempts!.map((a) => [a.attempt, a.outcome])).toEqual([[1, 'FAILED']]);
    expect(fake.createdFor(long.id)).toHaveLength(1);
    expect(fake.createdFor(short.id)).toHaveLength(1);
    // The adopted attempt kept its timeout: the Job was not deleted, it finished.
    expect(fake.deleted.filter((d) => d.name === jobNameOf(long))).toEqual([]);
  });

  it('measures dispatch-to-start overhead for a trivial job (p50 over 30)', async () => {
    const rows: { toStarted: number; toJobCreated: number; toPodRunning: number; submitToDone: number }[] = [];
    for (let i = 0; i < 30; i++) {
      const t0 = Date.now();
      const job = await client.submit({ backend: 'kubernetes', payload: { image: 'fake/busybox', args: ['exit', '0'] } });
      const done = await client.waitForTerminal(job.id, { timeoutMs: 20_000, intervalMs: 10 });
      expect(done.status).toBe('COMPLETED');
      const dispatched = Date.parse(done.dispatchedAt!);
      const created = fake.createdFor(job.id)[0]!;
      const pod = [...fake.pods.values()].find((p) => p.obj.metadata.labels['blixard.io/job-id'] === job.id)!;
      rows.push({
        toStarted: Date.parse(done.startedAt!) - dispatched,
        toJobCreated: created.at - dispatched,
        toPodRunning: Date.parse(pod.obj.status.startTime) - dispatched,
        submitToDone: Date.parse(done.finishedAt!) - t0,
      });
    }
    const p50 = (k: keyof (typeof rows)[number]) => percentile(rows.map((r) => r[k]), 50);
    const summary = { dispatchToStartedReport: p50('toStarted'), dispatchToJobCreated: p50('toJobCreated'), dispatchToPodRunning: p50('toPodRunning'), submitToCompleted: p50('submitToDone') };
    // eslint-disable-next-line no-console
    console.log(`kubernetes executor, trivial job, p50 over ${rows.length} (ms; fake pod start latency 60 ms, poll 250 ms): ${JSON.stringify(summary)}`);
    expect(summary.dispatchToJobCreated).toBeLessThan(1_000);
  });

  it('used exactly the API calls its Role allows, and every one of them', () => {
    const used = new Set(fake.requests.map((r) => `${r.apiGroup}|${r.resource}|${r.verb}`));
    const declared = new Set(KUBE_API_PERMISSIONS.map((p) => `${p.apiGroup}|${p.resource}|${p.verb}`));
    expect([...used].sort()).toEqual([...declared].sort());
    expect(fake.requests.filter((r) => r.status === 401 || r.status === 403)).toEqual([]);
    // Every call went to the configured namespace.
    expect(new Set(fake.requests.map((r) => r.namespace))).toEqual(new Set([NAMESPACE]));
  });
});
