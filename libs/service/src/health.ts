import { Controller, DynamicModule, Get, Header, HttpException, Inject, Module } from '@nestjs/common';
import type { Metrics } from '@blixard/telemetry';

/** What readiness depends on: each check answers whether a dependency is reachable now. */
export type ReadinessChecks = Record<string, () => Promise<boolean>>;

export const READINESS_CHECKS = Symbol('READINESS_CHECKS');
export const METRICS = Symbol('METRICS');

@Controller()
export class HealthController {
  constructor(
    @Inject(READINESS_CHECKS) private readonly checks: ReadinessChecks,
    @Inject(METRICS) private readonly metrics: Metrics,
  ) {}

  /** Liveness: the process serves requests. Never depends on Postgres or NATS. */
  @Get('healthz')
  healthz() {
    return { status: 'ok' };
  }

  /** Readiness: every dependency answers; 503 naming the ones that do not. */
  @Get('readyz')
  async readyz() {
    const entries = await Promise.all(
      Object.entries(this.checks).map(async ([name, check]) => [name, await check().catch(() => false)] as const),
    );
    const checks = Object.fromEntries(entries.map(([n, ok]) => [n, ok ? 'ok' : 'unreachable']));
    if (entries.some(([, ok]) => !ok)) throw new HttpException({ status: 'unready', checks }, 503);
    return { status: 'ready', checks };
  }

  @Get('metrics')
  @Header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
  async prometheus(): Promise<string> {
    return this.metrics.registry.metrics();
  }
}

@Module({})
export class HealthModule {
  static forRoot(checks: ReadinessChecks, metrics: Metrics): DynamicModule {
    return {
      module: HealthModule,
      controllers: [HealthController],
      providers: [
        { provide: READINESS_CHECKS, useValue: checks },
        { provide: METRICS, useValue: metrics },
      ],
    };
  }
}
