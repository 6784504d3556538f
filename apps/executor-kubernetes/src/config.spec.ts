import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError } from '@blixard/config';
import { loadKubeSettings } from './config';

const NO_FILE = '/nonexistent/namespace';

describe('kubernetes executor configuration', () => {
  it('defaults to the `default` namespace and the library\'s own credential discovery', () => {
    expect(loadKubeSettings({}, NO_FILE)).toEqual({
      namespace: 'default',
      apiUrl: null,
      token: null,
      insecureSkipTlsVerify: false,
      jobTtlSeconds: 600,
      pollIntervalMs: 500,
      startTimeoutMs: 300_000,
      jobServiceAccount: null,
    });
  });

  it('runs Jobs in the executor pod\'s own namespace when in a cluster', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kube-ns-'));
    writeFileSync(path.join(dir, 'namespace'), 'blixard\n');
    expect(loadKubeSettings({}, path.join(dir, 'namespace')).namespace).toBe('blixard');
    expect(loadKubeSettings({ KUBE_NAMESPACE: 'batch-jobs' }, path.join(dir, 'namespace')).namespace).toBe('batch-jobs');
  });

  it('names every bad variable at once', () => {
    let error: unknown;
    try {
      loadKubeSettings({ KUBE_NAMESPACE: 'Not_A_Namespace', KUBE_API_URL: 'ftp://x', KUBE_POLL_INTERVAL_MS: '5', KUBE_JOB_SERVICE_ACCOUNT: 'UPPER' }, NO_FILE);
    } catch (err) {
      error = err;
    }
    // Range errors come first, from the shared table; then this app's own checks.
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual(['KUBE_POLL_INTERVAL_MS=5 is out of range 50..60000']);
    expect(() => loadKubeSettings({ KUBE_NAMESPACE: 'Not_A_Namespace', KUBE_API_URL: 'ftp://x', KUBE_JOB_SERVICE_ACCOUNT: 'UPPER' }, NO_FILE)).toThrow(
      new ConfigError([
        'KUBE_NAMESPACE="Not_A_Namespace" is not a namespace name (lower-case letters, digits, -)',
        'KUBE_API_URL="ftp://x" must be http(s)',
        'KUBE_JOB_SERVICE_ACCOUNT="UPPER" is not a service account name',
      ]),
    );
    expect(() => loadKubeSettings({ KUBE_TOKEN: 'secret' }, NO_FILE)).toThrow('KUBE_TOKEN is set without KUBE_API_URL');
  });
});
