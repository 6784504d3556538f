// First: tracing must patch http, pg and Nest before they load.
import '@blixard/executor-sdk/register';
import 'reflect-metadata';
import { access, constants } from 'node:fs/promises';
import { runExecutor } from '@blixard/executor-sdk';
import { DockerBackend } from './docker-backend';
import { loadDockerSettings } from './docker-config';

async function main(): Promise<void> {
  let backend: DockerBackend;
  try {
    const settings = loadDockerSettings();
    await access(settings.scratchDir, constants.W_OK).catch((err: Error) => {
      throw new Error(`DOCKER_SCRATCH_DIR=${settings.scratchDir} is not a writable directory: ${err.message}`);
    });
    // The engine is pinged, and containers an earlier run of this EXECUTOR_ID left are adopted or
    // removed, by the backend's `recover` as the executor starts.
    backend = new DockerBackend(settings);
  } catch (err) {
    process.stderr.write(`executor-docker failed to start: ${(err as Error).message}\n`);
    process.exit(1);
  }
  await runExecutor(backend);
}

void main();
