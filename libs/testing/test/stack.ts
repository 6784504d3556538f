// In-process stack for integration tests: the real NestJS apps, started from their app.ts.
import { startGateway, RunningGateway } from '../../../apps/gateway/src/app';
import { startScheduler, RunningScheduler } from '../../../apps/scheduler/src/app';
import { startRegistry, RunningRegistry } from '../../../apps/worker-registry/src/app';
import { ProcessBackend } from '../../../apps/executor-process/src/process-backend';
import { MockBackend } from '../../../apps/executor-mock/src/mock-backend';
import { startExecutor, RunningExecutor, ExecutionBackend } from '@blixard/executor-sdk';
import { BlixardClient } from '@blixard/client';

export { startGateway, startScheduler, startRegistry, startExecutor, ProcessBackend, MockBackend };
export type { RunningGateway, RunningScheduler, RunningRegistry, RunningExecutor };

/** A mock backend under another name: its own durable consumer and its own capacity. */
export function namedMock(name: string): MockBackend {
  return new (class extends MockBackend {
    override readonly name = name;
  })();
}


export interface InProcessStack {
  gateway: RunningGateway;
  schedulers: RunningScheduler[];
  registry: RunningRegistry | undefined;
  executors: RunningExecutor[];
  client: BlixardClient;
  /** Starts one more executor on the same environment (its own overrides on top). */
  addExecutor(backend: ExecutionBackend, overrides?: Record<string, string>): Promise<RunningExecutor>;
  /** Stops everything it started, executors first. */
  stop(): Promise<void>;
}

/** The real NestJS apps in-process: a gateway, `schedulers` schedulers, a registry and executors. */
export async function startStack(
  env: Record<string, string>,
  options: { schedulers?: number; registry?: boolean; executors?: ExecutionBackend[] } = {},
): Promise<InProcessStack> {
  const gateway = await startGateway(env);
  const schedulers: RunningScheduler[] = [];
  for (let i = 0; i < (options.schedulers ?? 1); i++) schedulers.push(await startScheduler(env));
  const registry = options.registry === false ? undefined : await startRegistry(env);
  const executors: RunningExecutor[] = [];
  for (const backend of options.executors ?? []) executors.push(await startExecutor(backend, env));
  return {
    gateway,
    schedulers,
    registry,
    executors,
    client: new BlixardClient(gateway.url),
    async addExecutor(backend, overrides = {}) {
      const e = await startExecutor(backend, { ...env, ...overrides });
      executors.push(e);
      return e;
    },
    async stop() {
      for (const e of executors) await e.stop();
      await registry?.stop();
      for (const s of schedulers) await s.stop();
      await gateway.stop();
    },
  };
}
