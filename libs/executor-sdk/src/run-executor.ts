import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Module } from '@nestjs/common';
import { loadConfig, parseLabels, parseResources } from '@blixard/config';
import { connectBus } from '@blixard/messaging';
import { HealthModule, onShutdownSignal, startHttpService } from '@blixard/service';
import { createLogger, Logger, Metrics, shutdownTracing } from '@blixard/telemetry';
import type { ExecutionBackend } from './backend';
import { ExecutorRuntime } from './runtime';

export interface RunningExecutor {
  runtime: ExecutorRuntime;
  port: number;
  logger: Logger;
  /** Drains (finish or hand back running attempts), then closes HTTP and NATS. */
  stop(): Promise<void>;
}

const EXECUTOR_KEYS = [
  'natsUrl', 'subjectPrefix', 'logLevel', 'logFormat', 'executorPort', 'executorConcurrency', 'executorLabels', 'executorResources',
  'executorId', 'heartbeatIntervalMs', 'drainTimeoutMs', 'ackWaitMs', 'outputTailBytes', 'killGraceMs',
  'logMaxBytesPerAttempt', 'progressMinIntervalMs',
] as const;

/**
 * Starts an executor for `backend`: configuration from the environment (validated), NATS,
 * the runtime, and an HTTP server for /healthz, /readyz and /metrics. This is everything a
 * backend's `main.ts` calls.
 */
export async function startExecutor(
  backend: ExecutionBackend,
  env: Record<string, string | undefined> = process.env,
  version = '0.1.0',
  /** Called once a drain asked for over NATS has finished and everything is closed. */
  onStopped?: () => void,
): Promise<RunningExecutor> {
  const config = loadConfig(EXECUTOR_KEYS, env);
  const labels = parseLabels(config.executorLabels);
  const host = hostname();
  const workerId = config.executorId || `${backend.name}-${host.replace(/[^A-Za-z0-9_-]/g, '-')}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const logger = createLogger({ service: `executor-${backend.name}`, level: config.logLevel, format: config.logFormat as 'json' | 'pretty' }).child({ workerId });
  const metrics = new Metrics(`executor-${backend.name}`);
  const bus = await connectBus({ servers: config.natsUrl, prefix: config.subjectPrefix, name: workerId, logger, metrics });
  const runtime = new ExecutorRuntime({
    backend,
    bus,
    logger,
    metrics,
    workerId,
    host,
    version,
    concurrency: config.executorConcurrency,
    labels,
    resources: parseResources(config.executorResources),
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    drainTimeoutMs: config.drainTimeoutMs,
    ackWaitMs: config.ackWaitMs,
    outputTailBytes: config.outputTailBytes,
    killGraceMs: config.killGraceMs,
    logMaxBytesPerAttempt: config.logMaxBytesPerAttempt,
    progressMinIntervalMs: config.progressMinIntervalMs,
    // A drain asked for over NATS ends the executor, as SIGTERM does.
    onDrainRequested: () => void stop().then(() => onStopped?.()),
  });

  @Module({ imports: [HealthModule.forRoot({ nats: async () => !bus.nc.isClosed() && !bus.nc.isDraining() }, metrics)] })
  class ExecutorModule {}

  const { app, port } = await startHttpService({ module: ExecutorModule, port: config.executorPort, logger });
  await runtime.start();
  logger.info({ port }, 'executor listening');
  let stopping: Promise<void> | undefined;
  function stop(): Promise<void> {
    stopping ??= (async () => {
      await runtime.drain();
      await app.close();
      await bus.close();
    })();
    return stopping;
  }
  return { runtime, port, logger, stop };
}

/** `main.ts` of an executor app: start, and drain on SIGTERM/SIGINT. */
export async function runExecutor(backend: ExecutionBackend): Promise<void> {
  try {
    const executor = await startExecutor(backend, process.env, '0.1.0', () => {
      executor.logger.info('drained on request; exiting');
      void shutdownTracing().then(() => process.exit(0));
    });
    onShutdownSignal(executor.logger, () => executor.stop());
  } catch (err) {
    process.stderr.write(`executor-${backend.name} failed to start: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
