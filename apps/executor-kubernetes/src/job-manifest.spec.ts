import { Job } from 'kubernetes-models/batch/v1';
import { ExecutionJob, PayloadError } from '@blixard/executor-sdk';
import { buildJobManifest, containerResources, jobName, placementFromLabels, workerLabelValue, workerSelector } from './job-manifest';
import { KubernetesPayload, validateKubernetesPayload } from './payload';

const JOB_ID = '0b7e0f9e-52a4-4a53-9d0c-1f5e8f0c2a11';

function job(payload: unknown, extra: Partial<ExecutionJob<KubernetesPayload>> = {}): ExecutionJob<KubernetesPayload> {
  return { id: JOB_ID, attempt: 2, maxAttempts: 3, queue: 'default', labels: {}, timeoutMs: 90_500, parents: [], payload: validateKubernetesPayload(payload), ...extra };
}

const options = { namespace: 'jobs', workerId: 'kubernetes-pod-abc12', ttlSecondsAfterFinished: 600, serviceAccountName: null, startedAt: new Date('2026-01-02T03:04:05.000Z') };

describe('the Job an attempt runs as', () => {
  it('is a valid batch/v1 Job that Blixard retries, times out and finds again', () => {
    const m = buildJobManifest(job({ image: 'busybox:1.36', command: ['sh', '-c'], args: ['echo hi'], env: { A: 'b' }, workingDir: '/w' }), options);
    new Job(m as never).validate(); // the Kubernetes OpenAPI schema, offline
    const spec = m.spec as any; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(m.metadata).toMatchObject({
      name: `blixard-${JOB_ID}-2`,
      namespace: 'jobs',
      labels: { 'app.kubernetes.io/managed-by': 'blixard', 'blixard.io/job-id': JOB_ID, 'blixard.io/attempt': '2', 'blixard.io/worker': 'kubernetes-pod-abc12' },
      annotations: { 'blixard.io/worker-id': 'kubernetes-pod-abc12', 'blixard.io/started-at': '2026-01-02T03:04:05.000Z', 'blixard.io/timeout-ms': '90500' },
    });
    expect(spec.backoffLimit).toBe(0);
    expect(spec.activeDeadlineSeconds).toBe(91); // rounded up: never shorter than the timeout
    expect(spec.ttlSecondsAfterFinished).toBe(600);
    expect(spec.template.metadata.labels).toEqual(m.metadata!.labels);
    expect(spec.template.spec.restartPolicy).toBe('Never');
    expect(spec.template.spec.automountServiceAccountToken).toBe(false);
    expect(spec.template.spec.containers).toEqual([
      {
        name: 'job',
        image: 'busybox:1.36',
        command: ['sh', '-c'],
        args: ['echo hi'],
        workingDir: '/w',
        env: [
          { name: 'BLIXARD_JOB_ID', value: JOB_ID },
          { name: 'BLIXARD_ATTEMPT', value: '2' },
          { name: 'A', value: 'b' },
        ],
      },
    ]);
  });

  it('has no deadline without a timeout, and the configured service account when there is one', () => {
    const m = buildJobManifest(job({ image: 'a' }, { timeoutMs: null }), { ...options, serviceAccountName: 'runner' });
    const spec = m.spec as any; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(spec.activeDeadlineSeconds).toBeUndefined();
    expect(m.metadata!.annotations!['blixard.io/timeout-ms']).toBeUndefined();
    expect(spec.template.spec.serviceAccountName).toBe('runner');
    expect(spec.template.spec.automountServiceAccountToken).toBeUndefined();
  });

  it('takes node selector and tolerations from the payload, the job labels and GPU requests', () => {
    const m = buildJobManifest(
      job(
        { image: 'a', nodeSelector: { disktype: 'nvme' }, resources: { limits: { 'nvidia.com/gpu': 1 } }, tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'batch', effect: 'NoSchedule' }] },
        { labels: { 'node/disktype': 'ssd', 'node/kubernetes.io/arch': 'arm64', 'tolerate/spot': '', 'tolerate/dedicated': 'batch', team: 'core' } },
      ),
      options,
    );
    new Job(m as never).validate();
    const pod = (m.spec as any).template.spec; // eslint-disable-line @typescript-eslint/no-explicit-any
    // The payload wins over a label for the same key.
    expect(pod.nodeSelector).toEqual({ disktype: 'nvme', 'kubernetes.io/arch': 'arm64' });
    expect(pod.tolerations).toEqual([
      { key: 'dedicated', operator: 'Equal', value: 'batch', effect: 'NoSchedule' },
      { key: 'spot', operator: 'Exists' },
      { key: 'dedicated', operator: 'Equal', value: 'batch' },
      { key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' },
    ]);
    expect(pod.containers[0].resources).toEqual({ limits: { 'nvidia.com/gpu': '1' } });
  });

  it('refuses job labels that cannot be a node selector or toleration, naming the label', () => {
    expect(() => placementFromLabels({ 'node/bad key': 'x' })).toThrow(new PayloadError('labels.node/bad key: "bad key" is not a node label key'));
    expect(() => placementFromLabels({ 'node/zone': 'a b' })).toThrow('labels.node/zone: "a b" is not a node label value');
    expect(() => placementFromLabels({ 'tolerate/k': '-x' })).toThrow('labels.tolerate/k: "-x" is not a taint value');
  });

  it('turns the job-level resources (cpuMillis, memoryMb, gpu) into requests the payload did not set', () => {
    expect(containerResources(undefined, { cpuMillis: 500, memoryMb: 256, gpu: 2 })).toEqual({
      resources: { requests: { cpu: '500m', memory: '256Mi' }, limits: { 'nvidia.com/gpu': '2' } },
      tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
    });
    expect(containerResources({ requests: { cpu: '2' } }, { cpuMillis: 500 }).resources).toEqual({ requests: { cpu: '2' } });
    expect(containerResources(undefined, undefined)).toEqual({ resources: {}, tolerations: [] });
  });

  it('passes the parents\' results as BLIXARD_PARENTS, and refuses ones too large for a pod spec', () => {
    const parents = [{ jobId: 'p1', status: 'COMPLETED', result: { n: 1 } }];
    const env = ((buildJobManifest(job({ image: 'a' }, { parents }), options).spec as any).template.spec.containers[0].env) as { name: string; value: string }[]; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(JSON.parse(env.find((e) => e.name === 'BLIXARD_PARENTS')!.value)).toEqual(parents);
    const huge = [{ jobId: 'p1', status: 'COMPLETED', result: 'x'.repeat(40_000) }];
    expect(() => buildJobManifest(job({ image: 'a' }, { parents: huge }), options)).toThrow(PayloadError);
  });

  it('labels long or odd worker ids with a stable hash (label values are at most 63 characters)', () => {
    expect(workerLabelValue('kubernetes-pod-abc12')).toBe('kubernetes-pod-abc12');
    const long = `kubernetes-${'x'.repeat(100)}`;
    expect(workerLabelValue(long)).toMatch(/^h-[0-9a-f]{40}$/);
    expect(workerLabelValue(long)).toBe(workerLabelValue(long));
    expect(workerLabelValue('ends-with-dash-')).toMatch(/^h-/);
    expect(workerSelector('w1')).toBe('app.kubernetes.io/managed-by=blixard,blixard.io/worker=w1');
    expect(jobName(JOB_ID.toUpperCase(), 12).length).toBeLessThanOrEqual(63);
  });
});
