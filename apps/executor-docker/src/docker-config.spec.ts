import { tmpdir } from 'node:os';
import { ConfigError } from '@blixard/config';
import { loadDockerSettings } from './docker-config';

describe('docker executor settings', () => {
  it('defaults to the Docker socket, networks none and bridge, and the OS temp dir', () => {
    expect(loadDockerSettings({})).toEqual({ socketPath: '/var/run/docker.sock', networks: ['none', 'bridge'], scratchDir: tmpdir() });
  });

  it('reads DOCKER_HOST, DOCKER_NETWORKS and DOCKER_SCRATCH_DIR', () => {
    expect(
      loadDockerSettings({ DOCKER_HOST: 'unix:///run/blixard-podman/podman.sock', DOCKER_NETWORKS: ' bridge , none ', DOCKER_SCRATCH_DIR: '/var/lib/blixard-scratch' }),
    ).toEqual({ socketPath: '/run/blixard-podman/podman.sock', networks: ['bridge', 'none'], scratchDir: '/var/lib/blixard-scratch' });
  });

  it('refuses to start on bad values, naming every bad variable', () => {
    let error: unknown;
    try {
      loadDockerSettings({ DOCKER_HOST: 'tcp://127.0.0.1:2375', DOCKER_NETWORKS: 'none,bad name', DOCKER_SCRATCH_DIR: 'relative/dir' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      'DOCKER_HOST="tcp://127.0.0.1:2375": only a unix socket is supported (unix:///var/run/docker.sock)',
      'DOCKER_NETWORKS: "bad name" not a network name',
      'DOCKER_SCRATCH_DIR="relative/dir": must be an absolute path without \':\' or \',\'',
    ]);
  });
});
