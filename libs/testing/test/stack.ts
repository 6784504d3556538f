// In-process stack for integration tests: the real NestJS apps, started from their app.ts.
import { startGateway, RunningGateway } from '../../../apps/gateway/src/app';
import { startScheduler, RunningScheduler } from '../../../apps/scheduler/src/app';
import { startRegistry, RunningRegistry } from '../../../apps/worker-registry/src/app';
import { ProcessBackend } from '../../../apps/executor-process/src/process-backend';
import { MockBackend } from '../../../apps/executor-mock/src/mock-backend';
import { startExecutor, RunningExecutor } from '@blixard/executor-sdk';

export { startGateway, startScheduler, startRegistry, startExecutor, ProcessBackend, MockBackend };
export type { RunningGateway, RunningScheduler, RunningRegistry, RunningExecutor };

/** A mock backend under another name: its own durable consumer and its own capacity. */
export function namedMock(name: string): MockBackend {
  return new (class extends MockBackend {
    override readonly name = name;
  })();
}
