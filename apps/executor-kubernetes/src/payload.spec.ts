import { PayloadError } from '@blixard/executor-sdk';
import { KubernetesBackend } from './kubernetes-backend';
import { quantityValue, validateKubernetesPayload } from './payload';
import type { KubeApi } from './kube-api';

function errorOf(payload: unknown): string {
  try {
    validateKubernetesPayload(payload);
  } catch (err) {
    expect(err).toBeInstanceOf(PayloadError);
    return (err as Error).message;
  }
  throw new Error('expected a PayloadError');
}

describe('kubernetes payload validation', () => {
  it('accepts a full payload and normalises quantities to strings', () => {
    const p = validateKubernetesPayload({
      image: 'busybox:1.36',
      command: ['sh', '-c'],
      args: ['echo hi'],
      env: { GREETING: 'hello', 'dotted.name': 'x' },
      workingDir: '/work',
      imagePullPolicy: 'IfNotPresent',
      resources: { requests: { cpu: '250m', memory: '64Mi' }, limits: { cpu: 1, memory: '128Mi', 'nvidia.com/gpu': 1 } },
      nodeSelector: { 'kubernetes.io/arch': 'amd64', disktype: 'ssd' },
      tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'batch', effect: 'NoSchedule' }, { operator: 'Exists' }],
    });
    expect(p.resources).toEqual({ requests: { cpu: '250m', memory: '64Mi' }, limits: { cpu: '1', memory: '128Mi', 'nvidia.com/gpu': '1' } });
    expect(p.env).toEqual({ GREETING: 'hello', 'dotted.name': 'x' });
  });

  it('needs only an image', () => {
    expect(validateKubernetesPayload({ image: 'alpine' })).toEqual({ image: 'alpine', env: {} });
  });

  it.each([
    [null, '(root): Expected object'],
    [{}, 'image: Required'],
    [{ image: '' }, 'image: must name an image'],
    [{ image: 'a b' }, 'image: must not contain whitespace'],
    [{ image: 'a', command: 'echo hi' }, 'command: Expected array'],
    [{ image: 'a', args: [1] }, 'args.0: Expected string'],
    [{ image: 'a', env: { '1=x': 'v' } }, 'env.1=x: is not an environment variable name'],
    [{ image: 'a', env: { A: 1 } }, 'env.A: Expected string'],
    [{ image: 'a', workingDir: 'rel' }, 'workingDir: must be an absolute path'],
    [{ image: 'a', imagePullPolicy: 'Sometimes' }, 'imagePullPolicy: Invalid enum value'],
    [{ image: 'a', resources: { requests: { cpu: 'lots' } } }, 'resources.requests.cpu: is not a quantity'],
    [{ image: 'a', resources: { requests: { cpu: -1 } } }, 'resources.requests.cpu: Number must be greater than or equal to 0'],
    [{ image: 'a', resources: { requests: { 'bad key!': '1' } } }, 'resources.requests.bad key!: is not a Kubernetes key'],
    [{ image: 'a', resources: { request: {} } }, "resources: Unrecognized key(s) in object: 'request'"],
    [{ image: 'a', resources: { requests: { memory: '1Gi' }, limits: { memory: '512Mi' } } }, 'resources.requests.memory: 1Gi is more than its limit 512Mi'],
    [{ image: 'a', nodeSelector: { zone: 'not valid' } }, 'nodeSelector.zone: is not a label value'],
    [{ image: 'a', tolerations: [{ key: 'k', operator: 'Exists', value: 'v' }] }, 'tolerations.0.value: must be empty with operator Exists'],
    [{ image: 'a', tolerations: [{ value: 'v' }] }, 'tolerations.0.operator: must be Exists when key is empty'],
    [{ image: 'a', tolerations: [{ key: 'k', tolerationSeconds: 5 }] }, 'tolerations.0.tolerationSeconds: needs effect NoExecute'],
    [{ image: 'a', tolerations: [{ key: 'k', effect: 'Sometimes' }] }, 'tolerations.0.effect: Invalid enum value'],
    [{ image: 'a', serviceAccountName: 'admin' }, "(root): Unrecognized key(s) in object: 'serviceAccountName'"],
  ])('refuses %j, naming the field', (payload, message) => {
    expect(errorOf(payload)).toContain(message);
  });

  it('names every bad field at once', () => {
    const msg = errorOf({ image: '', workingDir: 'x', env: { '=': '' } });
    expect(msg).toMatch(/^kubernetes payload: /);
    expect(msg).toContain('image:');
    expect(msg).toContain('workingDir:');
    expect(msg).toContain('env.=:');
  });

  it('is what the backend validates with, and needs no cluster to do it', () => {
    const unreachable = new Proxy({}, { get: () => () => Promise.reject(new Error('no API calls in validate')) }) as KubeApi;
    const backend = new KubernetesBackend(unreachable, { namespace: 'x', apiUrl: null, token: null, insecureSkipTlsVerify: false, jobTtlSeconds: 60, pollIntervalMs: 500, startTimeoutMs: 1000, jobServiceAccount: null });
    expect(backend.validate({ image: 'alpine', args: ['true'] })).toMatchObject({ image: 'alpine', args: ['true'] });
    expect(() => backend.validate({ image: 'alpine', bogus: 1 })).toThrow(PayloadError);
  });

  it('compares quantities across units', () => {
    expect(quantityValue('500m')).toBe(0.5);
    expect(quantityValue('1Gi')).toBe(2 ** 30);
    expect(quantityValue('1G')).toBe(1e9);
    expect(quantityValue('1e3')).toBe(1000);
    expect(quantityValue('2')).toBe(2);
    expect(quantityValue('x')).toBeNaN();
  });
});
