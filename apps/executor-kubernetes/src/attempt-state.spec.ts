import { attemptState, currentPod } from './attempt-state';
import type { KubeContainerState, KubeJob, KubePod } from './kube-api';

const job = (conditions: KubeJob['status'] = {}): KubeJob => ({ metadata: { name: 'j' }, status: conditions });
const pod = (phase: string, state: KubeContainerState = {}, extra: Partial<NonNullable<KubePod['status']>> = {}, name = 'j-abcde'): KubePod => ({
  metadata: { name, creationTimestamp: '2026-01-01T00:00:00Z' },
  status: { phase, containerStatuses: [{ name: 'job', state }], ...extra },
});
const at = (input: Partial<Parameters<typeof attemptState>[0]>) => attemptState({ job: job(), pods: [], pendingForMs: 0, startTimeoutMs: 60_000, ...input });

describe('reading where an attempt stands from its Job and pod', () => {
  it('is pending until the pod runs, then running', () => {
    expect(at({})).toEqual({ kind: 'pending', pod: null, note: 'waiting for the Job to create its pod' });
    expect(at({ pods: [pod('Pending', { waiting: { reason: 'ContainerCreating' } })] })).toMatchObject({ kind: 'pending', pod: 'j-abcde', note: 'pending (ContainerCreating)' });
    expect(at({ pods: [pod('Running', { running: {} })] })).toEqual({ kind: 'running', pod: 'j-abcde' });
  });

  it('succeeds when the pod succeeded, or the Job says Complete after its pod is gone', () => {
    expect(at({ pods: [pod('Succeeded', { terminated: { exitCode: 0 } })] })).toEqual({ kind: 'succeeded', pod: 'j-abcde' });
    expect(at({ job: job({ conditions: [{ type: 'Complete', status: 'True' }] }) })).toEqual({ kind: 'succeeded', pod: null });
  });

  it('fails with the container\'s exit code and reason', () => {
    expect(at({ pods: [pod('Failed', { terminated: { exitCode: 3, reason: 'Error' } })] })).toMatchObject({ kind: 'failed', code: 'exit_code', exitCode: 3, message: 'exited with code 3', retryable: true, deleteJob: false });
    expect(at({ pods: [pod('Failed', { terminated: { exitCode: 137, reason: 'OOMKilled' } })] })).toMatchObject({ code: 'oom_killed', exitCode: 137 });
    expect(at({ pods: [pod('Failed', { terminated: { exitCode: 1, reason: 'ContainerCannotRun', message: 'exec: "nope": not found' } })] })).toMatchObject({
      code: 'exit_code',
      message: 'exited with code 1 (ContainerCannotRun: exec: "nope": not found)',
    });
    expect(at({ pods: [pod('Failed', {}, { reason: 'Evicted', message: 'The node was low on resource: memory.' })] })).toMatchObject({ code: 'evicted', message: 'the pod was evicted: The node was low on resource: memory.' });
  });

  it('tells a deadline (activeDeadlineSeconds) apart from a plain failure', () => {
    expect(at({ pods: [pod('Failed', { terminated: { exitCode: 137 } }, { reason: 'DeadlineExceeded' })] })).toMatchObject({ code: 'deadline_exceeded', exitCode: 137 });
    expect(at({ job: job({ conditions: [{ type: 'Failed', status: 'True', reason: 'DeadlineExceeded', message: 'Job was active longer than specified deadline' }] }) })).toMatchObject({
      code: 'deadline_exceeded',
      message: 'the Job failed: DeadlineExceeded: Job was active longer than specified deadline',
    });
    expect(at({ job: job({ conditions: [{ type: 'Failed', status: 'False', reason: 'DeadlineExceeded' }] }) })).toMatchObject({ kind: 'pending' });
  });

  it('fails at once, and deletes the Job, when the image cannot be pulled', () => {
    const s = at({ pods: [pod('Pending', { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "nope:1"' } })] });
    expect(s).toEqual({ kind: 'failed', pod: 'j-abcde', code: 'image_pull_failed', message: 'the image could not be pulled: ImagePullBackOff: Back-off pulling image "nope:1"', exitCode: null, retryable: true, deleteJob: true });
    expect(at({ pods: [pod('Pending', { waiting: { reason: 'InvalidImageName' } })] })).toMatchObject({ code: 'image_pull_failed', retryable: false });
    expect(at({ pods: [pod('Pending', { waiting: { reason: 'CreateContainerConfigError', message: 'secret "s" not found' } })] })).toMatchObject({ code: 'container_config_error', deleteJob: true });
  });

  it('waits for an unschedulable pod up to the start timeout, then fails saying why', () => {
    const unschedulable = pod('Pending', {}, { conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes are available: 3 Insufficient cpu.' }] });
    expect(at({ pods: [unschedulable], pendingForMs: 59_000 })).toMatchObject({ kind: 'pending', note: 'unschedulable: 0/3 nodes are available: 3 Insufficient cpu.' });
    expect(at({ pods: [unschedulable], pendingForMs: 61_000 })).toEqual({
      kind: 'failed',
      pod: 'j-abcde',
      code: 'unschedulable',
      message: 'no node could take the pod within 60 s: 0/3 nodes are available: 3 Insufficient cpu.',
      exitCode: null,
      retryable: true,
      deleteJob: true,
    });
    expect(at({ pendingForMs: 61_000 })).toMatchObject({ code: 'start_timeout', message: 'no pod was created for the Job for more than 60 s (KUBE_START_TIMEOUT_MS)', deleteJob: true });
  });

  it('reports a Job deleted behind its back', () => {
    expect(at({ job: null })).toMatchObject({ kind: 'failed', code: 'job_deleted', retryable: true, deleteJob: false });
  });

  it('follows the newest pod that is not being deleted', () => {
    const old = { ...pod('Failed', {}, {}, 'old'), metadata: { name: 'old', creationTimestamp: '2026-01-01T00:00:00Z' } };
    const fresh = { ...pod('Running', {}, {}, 'new'), metadata: { name: 'new', creationTimestamp: '2026-01-01T00:01:00Z' } };
    const leaving = { ...pod('Running', {}, {}, 'leaving'), metadata: { name: 'leaving', creationTimestamp: '2026-01-01T00:02:00Z', deletionTimestamp: '2026-01-01T00:03:00Z' } };
    expect(currentPod([old, leaving, fresh])?.metadata?.name).toBe('new');
    expect(currentPod([leaving])?.metadata?.name).toBe('leaving');
  });
});
