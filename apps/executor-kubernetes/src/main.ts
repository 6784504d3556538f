// First: tracing must patch http, pg and Nest before they load.
import '@blixard/executor-sdk/register';
import 'reflect-metadata';
import { runExecutor } from '@blixard/executor-sdk';
import { createClientNodeApi } from './client-node-api';
import { loadKubeSettings } from './config';
import { KubernetesBackend } from './kubernetes-backend';

async function main(): Promise<void> {
  let backend: KubernetesBackend;
  try {
    const settings = loadKubeSettings();
    backend = new KubernetesBackend(await createClientNodeApi(settings), settings);
  } catch (err) {
    process.stderr.write(`executor-kubernetes failed to start: ${(err as Error).message}\n`);
    process.exit(1);
  }
  await runExecutor(backend);
}

void main();
