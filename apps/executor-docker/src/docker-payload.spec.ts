import { PayloadError } from '@blixard/executor-sdk';
import { containerSpec, IMAGE_REFERENCE, LABELS, parseDockerPayload, splitImageReference, withReservedResources } from './docker-payload';

const NETWORKS = ['none', 'bridge'];
const validate = (payload: unknown) => parseDockerPayload(payload, NETWORKS);
const problem = (payload: unknown): string => {
  try {
    validate(payload);
  } catch (err) {
    expect(err).toBeInstanceOf(PayloadError);
    return (err as Error).message;
  }
  throw new Error('expected a PayloadError');
};

describe('docker payload validation', () => {
  it('accepts a bare image and fills in the defaults', () => {
    expect(validate({ image: 'busybox' })).toEqual({
      image: 'busybox',
      env: {},
      resources: { nanoCpus: undefined, memoryBytes: undefined },
      network: 'none',
      pullPolicy: 'if-missing',
      scratchPath: '/scratch',
    });
  });

  it('turns cpu and memory quantities into NanoCpus and bytes', () => {
    expect(validate({ image: 'busybox', resources: { cpu: '500m', memory: '256Mi' } }).resources).toEqual({ nanoCpus: 500_000_000, memoryBytes: 256 * 2 ** 20 });
    expect(validate({ image: 'busybox', resources: { cpu: 2, memory: 10_000_000 } }).resources).toEqual({ nanoCpus: 2_000_000_000, memoryBytes: 10_000_000 });
    expect(validate({ image: 'busybox', resources: { cpu: '1.5', memory: '1G' } }).resources).toEqual({ nanoCpus: 1_500_000_000, memoryBytes: 1e9 });
  });

  it('names each bad field in one message', () => {
    const message = problem({ image: 'Not An Image!', command: [], env: { 'A=B': 'x' }, workingDir: 'relative', pullPolicy: 'sometimes', network: 'host' });
    expect(message).toMatch(/^docker payload: /);
    expect(message).toContain('image: is not an image reference');
    expect(message).toContain('command: must name a program when given');
    expect(message).toContain('env.A=B: not a variable name');
    expect(message).toContain('workingDir: must be an absolute path inside the container');
    expect(message).toContain("pullPolicy: Invalid enum value. Expected 'never' | 'if-missing' | 'always'");
    expect(message).toContain('network: "host" is not allowed on this executor (allowed: none, bridge; see DOCKER_NETWORKS)');
  });

  it('refuses what is not an object, a missing image and unknown fields', () => {
    expect(problem(null)).toContain('(root): Expected object, received null');
    expect(problem('busybox')).toContain('(root): Expected object');
    expect(problem({})).toContain('image: Required');
    expect(problem({ image: 'busybox', privileged: true })).toContain("Unrecognized key(s) in object: 'privileged'");
  });

  it('refuses resource quantities the engine would refuse, saying what is accepted', () => {
    expect(problem({ image: 'busybox', resources: { memory: '512m' } })).toContain('resources.memory: "512m" is not a memory quantity');
    expect(problem({ image: 'busybox', resources: { memory: '1Mi' } })).toContain('resources.memory: "1Mi": memory is at least 6Mi');
    expect(problem({ image: 'busybox', resources: { memory: 1.5 } })).toContain('whole number of bytes');
    expect(problem({ image: 'busybox', resources: { cpu: 0 } })).toContain('resources.cpu: 0: cpu must be more than 0 cores');
    expect(problem({ image: 'busybox', resources: { cpu: '1m' } })).toContain('cpu is at least 0.01 cores');
    expect(problem({ image: 'busybox', resources: { cpu: 'two' } })).toContain('resources.cpu: "two" is not a cpu quantity');
    expect(problem({ image: 'busybox', resources: { gpu: 1 } })).toContain("resources: Unrecognized key(s) in object: 'gpu'");
  });

  it('refuses a scratch path that is not absolute or is the root', () => {
    expect(problem({ image: 'busybox', scratchPath: '/' })).toContain("scratchPath: must not be the container's root");
    expect(problem({ image: 'busybox', scratchPath: 'scratch' })).toContain('scratchPath: must be an absolute path');
  });

  it('uses the first allowed network as the default', () => {
    expect(parseDockerPayload({ image: 'busybox' }, ['bridge', 'none']).network).toBe('bridge');
    expect(parseDockerPayload({ image: 'busybox', network: 'none' }, ['bridge', 'none']).network).toBe('none');
  });
});

describe('image references', () => {
  it.each([
    'busybox',
    'busybox:1.36',
    'library/busybox:latest',
    'localhost/blixard-test:latest',
    'localhost:5000/team/app:v1.2.3',
    'registry.example.com/team/sub/app@sha256:' + 'a'.repeat(64),
    'ghcr.io/org/app:1.0@sha256:' + 'b'.repeat(64),
  ])('accepts %s', (ref) => expect(IMAGE_REFERENCE.test(ref)).toBe(true));

  it.each(['', 'Busybox', 'busybox:', ':tag', 'a b', 'busybox@sha256:short', '-x/app', 'app:' + 'x'.repeat(129)])('refuses %j', (ref) =>
    expect(IMAGE_REFERENCE.test(ref)).toBe(false),
  );

  it('splits a reference into what the pull API takes (no tag is latest)', () => {
    expect(splitImageReference('busybox')).toEqual({ repository: 'busybox', reference: 'latest' });
    expect(splitImageReference('busybox:1.36')).toEqual({ repository: 'busybox', reference: '1.36' });
    expect(splitImageReference('localhost:5000/app')).toEqual({ repository: 'localhost:5000/app', reference: 'latest' });
    expect(splitImageReference('localhost:5000/app:v1')).toEqual({ repository: 'localhost:5000/app', reference: 'v1' });
    const digest = 'sha256:' + 'c'.repeat(64);
    expect(splitImageReference(`ghcr.io/org/app:1.0@${digest}`)).toEqual({ repository: 'ghcr.io/org/app', reference: digest });
  });
});

describe('container spec', () => {
  const base = {
    jobId: '0190a0b0-0000-7000-8000-000000000001',
    attempt: 2,
    queue: 'q',
    workerId: 'docker-w1',
    startedAt: new Date('2026-01-02T03:04:05.678Z'),
    timeoutMs: 60_000,
    scratchHostDir: '/tmp/blixard-scratch-x/scratch',
  };

  it('maps image, command, env, working dir, user, limits, network, scratch and labels', () => {
    const payload = validate({
      image: 'busybox:1.36',
      command: ['sh', '-c', 'echo hi'],
      entrypoint: ['/bin/env'],
      env: { A: '1', BLIXARD_ATTEMPT: 'overridden by the job' },
      workingDir: '/work',
      user: '1000:1000',
      resources: { cpu: 0.25, memory: '64Mi' },
      network: 'bridge',
      scratchPath: '/data',
    });
    const spec = containerSpec({ ...base, payload, parentsFile: '/data/.blixard/parents.json' });
    expect(spec).toEqual({
      Image: 'busybox:1.36',
      Cmd: ['sh', '-c', 'echo hi'],
      Entrypoint: ['/bin/env'],
      Env: [
        `BLIXARD_JOB_ID=${base.jobId}`,
        'BLIXARD_ATTEMPT=overridden by the job',
        'BLIXARD_SCRATCH_DIR=/data',
        'BLIXARD_PARENTS_FILE=/data/.blixard/parents.json',
        'A=1',
      ],
      WorkingDir: '/work',
      User: '1000:1000',
      Labels: {
        [LABELS.managed]: 'true',
        [LABELS.jobId]: base.jobId,
        [LABELS.attempt]: '2',
        [LABELS.workerId]: 'docker-w1',
        [LABELS.queue]: 'q',
        [LABELS.startedAt]: '2026-01-02T03:04:05.678Z',
        [LABELS.timeoutMs]: '60000',
      },
      Tty: false,
      OpenStdin: false,
      AttachStdin: false,
      AttachStdout: false,
      AttachStderr: false,
      HostConfig: {
        NetworkMode: 'bridge',
        Binds: ['/tmp/blixard-scratch-x/scratch:/data:rw'],
        RestartPolicy: { Name: 'no' },
        AutoRemove: false,
        NanoCpus: 250_000_000,
        Memory: 64 * 2 ** 20,
        MemorySwap: 64 * 2 ** 20,
      },
    });
  });

  it('leaves out what the job does not set, so the image decides', () => {
    const spec = containerSpec({ ...base, timeoutMs: null, payload: validate({ image: 'busybox' }) });
    expect(spec).not.toHaveProperty('Cmd');
    expect(spec).not.toHaveProperty('Entrypoint');
    expect(spec).not.toHaveProperty('WorkingDir');
    expect(spec).not.toHaveProperty('User');
    expect(spec.HostConfig).not.toHaveProperty('NanoCpus');
    expect(spec.HostConfig).not.toHaveProperty('Memory');
    expect(spec.HostConfig).toMatchObject({ NetworkMode: 'none' });
    expect(spec.Env).toEqual([`BLIXARD_JOB_ID=${base.jobId}`, 'BLIXARD_ATTEMPT=2', 'BLIXARD_SCRATCH_DIR=/scratch']);
    expect(spec.Labels).not.toHaveProperty([LABELS.timeoutMs]);
  });
});

describe('withReservedResources', () => {
  const p = parseDockerPayload({ image: 'busybox' }, ['none']);
  it('turns a placed job\'s cpuMillis and memoryMb into limits', () => {
    expect(withReservedResources(p, { cpuMillis: 500, memoryMb: 64 }).resources).toEqual({ nanoCpus: 500_000_000, memoryBytes: 64 * 1024 * 1024 });
  });
  it('keeps the payload\'s own limits', () => {
    const own = parseDockerPayload({ image: 'busybox', resources: { cpu: '2', memory: '1Gi' } }, ['none']);
    expect(withReservedResources(own, { cpuMillis: 500, memoryMb: 64 }).resources).toEqual(own.resources);
    expect(withReservedResources(p).resources).toEqual({});
  });
});
