import type { CallHandler, ExecutionContext, INestApplication, LoggerService, NestInterceptor } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { setHttpRoute, shutdownTracing, type Logger } from '@blixard/telemetry';

/** Routes Nest's own log lines into the service's pino logger. */
export class PinoNestLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}
  log(message: unknown, context?: string) {
    this.logger.debug({ context }, String(message));
  }
  error(message: unknown, trace?: string, context?: string) {
    this.logger.error({ context, trace }, String(message));
  }
  warn(message: unknown, context?: string) {
    this.logger.warn({ context }, String(message));
  }
  debug(message: unknown, context?: string) {
    this.logger.debug({ context }, String(message));
  }
  verbose(message: unknown, context?: string) {
    this.logger.trace({ context }, String(message));
  }
}

/** Gives each traced HTTP request its route (`POST /v1/jobs`, `GET /v1/jobs/:id`) as span name. */
class HttpRouteInterceptor implements NestInterceptor {
  intercept(ctx: ExecutionContext, next: CallHandler) {
    const route = ctx.switchToHttp().getRequest<{ route?: { path?: unknown } }>()?.route?.path;
    if (typeof route === 'string') setHttpRoute(route);
    return next.handle();
  }
}

export interface ServiceBootstrap {
  module: unknown;
  port: number;
  logger: Logger;
  /** Express body limit; requests above it get a 413. */
  bodyLimitBytes?: number;
  configure?: (app: INestApplication) => void | Promise<void>;
}

/** Creates and starts a service's Nest HTTP app; returns it and the port it listens on. */
export async function startHttpService({ module, port, logger, bodyLimitBytes, configure }: ServiceBootstrap): Promise<{ app: INestApplication; port: number }> {
  const app = await NestFactory.create(module as never, {
    logger: new PinoNestLogger(logger),
    bodyParser: bodyLimitBytes === undefined,
    abortOnError: false,
  });
  if (bodyLimitBytes !== undefined) {
    // Accept application/json and every application/*+json type.
    (app as unknown as { useBodyParser(type: string, opts: object): void }).useBodyParser('json', {
      limit: bodyLimitBytes,
      type: ['application/json', 'application/*+json'],
    });
  }
  app.useGlobalInterceptors(new HttpRouteInterceptor());
  await configure?.(app);
  await app.listen(port, '0.0.0.0');
  const address = app.getHttpServer().address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  return { app, port: actualPort };
}

/**
 * Runs `stop` once on SIGTERM or SIGINT, then exits; a second signal exits at once.
 * `stop` is the service's graceful shutdown (executors: drain).
 */
export function onShutdownSignal(logger: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    stop()
      // The last spans are still buffered: export them before the process ends.
      .then(() => shutdownTracing())
      .then(() => process.exit(0))
      .catch((err) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}

/** `main.ts` of a service: start it, stop it gracefully on SIGTERM/SIGINT, exit 1 if it cannot start. */
export async function runService(name: string, start: () => Promise<{ stop(): Promise<void> }>): Promise<void> {
  try {
    const service = await start();
    const logger = (await import('@blixard/telemetry')).createLogger({ service: name, level: process.env.LOG_LEVEL ?? 'info' });
    onShutdownSignal(logger, () => service.stop());
  } catch (err) {
    process.stderr.write(`${name} failed to start: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
