import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError } from '@blixard/config';

/**
 * The docker executor's own settings, read from the environment and validated at start like
 * every other value (an invalid one stops the executor, naming the variable):
 *
 * | variable | default | meaning |
 * |---|---|---|
 * | `DOCKER_HOST` | `unix:///var/run/docker.sock` | The engine's API socket (Docker, or podman's `podman system service`); only `unix://`. |
 * | `DOCKER_NETWORKS` | `none,bridge` | Network modes a job may ask for (`payload.network`); the first is the default. |
 * | `DOCKER_SCRATCH_DIR` | the OS temp dir | Host directory under which each attempt's scratch directory is made and bind-mounted. It is a path on the engine's host: an executor in a container must see it at the same path. |
 */
export interface DockerSettings {
  socketPath: string;
  networks: string[];
  scratchDir: string;
}

export const DOCKER_SETTINGS_DEFAULTS = {
  DOCKER_HOST: 'unix:///var/run/docker.sock',
  DOCKER_NETWORKS: 'none,bridge',
} as const;

const NETWORK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export function loadDockerSettings(env: Record<string, string | undefined> = process.env): DockerSettings {
  const problems: string[] = [];

  const host = env.DOCKER_HOST || DOCKER_SETTINGS_DEFAULTS.DOCKER_HOST;
  let socketPath = '';
  if (!host.startsWith('unix://')) {
    problems.push(`DOCKER_HOST=${JSON.stringify(host)}: only a unix socket is supported (unix:///var/run/docker.sock)`);
  } else {
    socketPath = host.slice('unix://'.length);
    if (!path.isAbsolute(socketPath)) problems.push(`DOCKER_HOST=${JSON.stringify(host)}: the socket path must be absolute`);
  }

  const networks = (env.DOCKER_NETWORKS || DOCKER_SETTINGS_DEFAULTS.DOCKER_NETWORKS).split(',').map((s) => s.trim()).filter(Boolean);
  const badNetworks = networks.filter((n) => !NETWORK_NAME.test(n));
  if (networks.length === 0) problems.push('DOCKER_NETWORKS: name at least one network mode (e.g. none)');
  if (badNetworks.length > 0) problems.push(`DOCKER_NETWORKS: ${badNetworks.map((n) => JSON.stringify(n)).join(', ')} not a network name`);

  const scratchDir = env.DOCKER_SCRATCH_DIR || tmpdir();
  // The directory goes into a `host:container:rw` bind: a ':' or ',' would split it.
  if (!path.isAbsolute(scratchDir) || /[:,\0]/.test(scratchDir)) {
    problems.push(`DOCKER_SCRATCH_DIR=${JSON.stringify(scratchDir)}: must be an absolute path without ':' or ','`);
  }

  if (problems.length > 0) throw new ConfigError(problems);
  return { socketPath, networks, scratchDir };
}
