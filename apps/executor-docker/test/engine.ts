// The container engine for the docker executor's integration tests. These tests must run, not
// skip: they find a Docker-compatible engine, or start podman's through .ci/podman-engine.sh,
// or fail with a message that says what to do.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { DockerEngine } from '../src/engine-client';
import { DockerSettings } from '../src/docker-config';

/** The image .ci/podman-engine.sh imports from a local busybox root filesystem. */
export const TEST_IMAGE = 'localhost/blixard-test:latest';
/** Where .ci/podman-engine.sh serves the API when run as root. */
export const WELL_KNOWN_SOCKET = '/run/blixard-podman/podman.sock';
const SCRIPT = path.resolve(__dirname, '../../../.ci/podman-engine.sh');

async function usable(socketPath: string): Promise<boolean> {
  const engine = new DockerEngine(socketPath);
  try {
    await engine.ping(AbortSignal.timeout(3_000));
    return (await engine.inspectImage(TEST_IMAGE)) !== null;
  } catch {
    return false;
  } finally {
    engine.close();
  }
}

/**
 * The socket of an engine that answers and has the test image. BLIXARD_DOCKER_SOCKET, when set,
 * is used as it is (an engine someone else runs: it is never started or changed here). Otherwise
 * the well-known podman socket; when nothing usable answers there, `.ci/podman-engine.sh start`
 * (as root it installs podman and runc, imports the image and starts the service) makes it so.
 */
export async function ensureTestEngine(): Promise<string> {
  const explicit = process.env.BLIXARD_DOCKER_SOCKET;
  if (explicit) {
    if (await usable(explicit)) return explicit;
    throw new Error(
      `BLIXARD_DOCKER_SOCKET=${explicit}: no Docker-compatible engine with ${TEST_IMAGE} answers there. ` +
        `Start one (.ci/podman-engine.sh start serves podman's on ${WELL_KNOWN_SOCKET}), or unset BLIXARD_DOCKER_SOCKET to let the tests do it.`,
    );
  }
  if (await usable(WELL_KNOWN_SOCKET)) return WELL_KNOWN_SOCKET;
  let socket: string;
  try {
    const { stdout } = await promisify(execFile)(SCRIPT, ['start'], { timeout: 600_000 });
    socket = stdout.trim().split('\n').pop() ?? '';
  } catch (err) {
    const e = err as { message: string; stderr?: string };
    throw new Error(
      `the docker executor's tests need a Docker-compatible engine with ${TEST_IMAGE}; none answers at ${WELL_KNOWN_SOCKET}, ` +
        `and starting podman's with ${SCRIPT} failed: ${e.stderr?.trim() || e.message}. ` +
        'Run `.ci/podman-engine.sh start` as root (it installs podman and runc from Debian packages), or point BLIXARD_DOCKER_SOCKET at an engine that has the image.',
    );
  }
  if (!(await usable(socket))) {
    throw new Error(`.ci/podman-engine.sh reported ${socket}, but no engine with ${TEST_IMAGE} answers there (see service.log next to the socket)`);
  }
  return socket;
}

/** Settings for a DockerBackend under test. */
export function testSettings(socketPath: string, overrides: Partial<DockerSettings> = {}): DockerSettings {
  return { socketPath, networks: ['none', 'bridge'], scratchDir: '/tmp', ...overrides };
}
