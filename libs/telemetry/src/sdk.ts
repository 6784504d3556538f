import { randomUUID } from 'node:crypto';
import { diag, DiagConsoleLogger, DiagLogLevel } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { NestInstrumentation } from '@opentelemetry/instrumentation-nestjs-core';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { detectResources, envDetector, hostDetector, processDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { setTracingShutdown } from './tracing';

/**
 * The OpenTelemetry SDK of one service: W3C trace-context propagation, auto-instrumentation of
 * incoming/outgoing HTTP, NestJS handlers and pg queries (Prisma's too: it runs on pg), and an
 * OTLP/HTTP (JSON) exporter to `OTEL_EXPORTER_OTLP_ENDPOINT`. Tracing is off — nothing is
 * registered, the API stays a no-op — when no endpoint is set or `OTEL_SDK_DISABLED=true`.
 *
 * Must run before Nest, pg or http are loaded (instrumentation patches `require`): every
 * service's main.ts imports `@blixard/telemetry/register` first.
 */
export interface TracingOptions {
  serviceName: string;
  serviceVersion?: string;
  env?: Record<string, string | undefined>;
}

export interface TracingHandle {
  enabled: boolean;
  /** Exports what is buffered and stops; call before the process exits. */
  shutdown(): Promise<void>;
}

const SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'];

/** Checks the OTEL_* variables Blixard reads; returns every problem (an empty list when all is well). */
export function tracingConfigProblems(env: Record<string, string | undefined>): string[] {
  const problems: string[] = [];
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (endpoint) {
    try {
      const u = new URL(endpoint);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') problems.push(`OTEL_EXPORTER_OTLP_ENDPOINT=${JSON.stringify(endpoint)} must be an http(s) URL`);
    } catch {
      problems.push(`OTEL_EXPORTER_OTLP_ENDPOINT=${JSON.stringify(endpoint)} is not a URL`);
    }
  }
  const protocol = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL || env.OTEL_EXPORTER_OTLP_PROTOCOL;
  if (protocol && protocol !== 'http/json' && protocol !== 'http/protobuf') {
    problems.push(`OTEL_EXPORTER_OTLP_PROTOCOL=${JSON.stringify(protocol)} is not supported: Blixard exports OTLP over HTTP (http/json)`);
  }
  const sampler = env.OTEL_TRACES_SAMPLER;
  if (sampler && !SAMPLERS.includes(sampler)) problems.push(`OTEL_TRACES_SAMPLER=${JSON.stringify(sampler)} must be one of ${SAMPLERS.join(', ')}`);
  const arg = env.OTEL_TRACES_SAMPLER_ARG;
  if (arg !== undefined && arg !== '' && sampler?.endsWith('traceidratio')) {
    const p = Number(arg);
    if (!Number.isFinite(p) || p < 0 || p > 1) problems.push(`OTEL_TRACES_SAMPLER_ARG=${JSON.stringify(arg)} must be a number from 0 to 1`);
  }
  return problems;
}

export function tracingEnabled(env: Record<string, string | undefined>): boolean {
  if (/^(true|1)$/i.test(env.OTEL_SDK_DISABLED ?? '')) return false;
  if ((env.OTEL_TRACES_EXPORTER ?? '').split(',').map((s) => s.trim()).includes('none')) return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT);
}

let started: TracingHandle | undefined;

/** Starts tracing once per process; throws on an invalid OTEL_* value (every problem listed). */
export function startTracing({ serviceName, serviceVersion, env = process.env }: TracingOptions): TracingHandle {
  if (started) return started;
  const problems = tracingConfigProblems(env);
  if (problems.length > 0) throw new Error(`invalid tracing configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  if (!tracingEnabled(env)) {
    started = { enabled: false, shutdown: async () => undefined };
    return started;
  }
  if (env.OTEL_LOG_LEVEL) {
    const level = DiagLogLevel[env.OTEL_LOG_LEVEL.toUpperCase() as keyof typeof DiagLogLevel];
    if (level !== undefined) diag.setLogger(new DiagConsoleLogger(), level);
  }
  // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (envDetector) override these defaults.
  const resource = resourceFromAttributes({
    [ATTR_SERVICE_NAME]: serviceName,
    [ATTR_SERVICE_VERSION]: serviceVersion ?? '0.0.0',
    'service.namespace': 'blixard',
    'service.instance.id': randomUUID(),
  }).merge(detectResources({ detectors: [hostDetector, processDetector, envDetector] }));

  // The OTLP/HTTP JSON exporter reads OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT/HEADERS/TIMEOUT itself;
  // Jaeger and the OpenTelemetry Collector accept JSON on the same port as protobuf.
  const exporter = new OTLPTraceExporter();
  // The batch processor reads OTEL_BSP_* ; the provider reads OTEL_TRACES_SAMPLER(_ARG) (default
  // parentbased_always_on: a trace's first service decides, every later hop follows).
  const provider = new NodeTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(exporter)] });
  provider.register();

  // OTEL_NODE_DISABLED_INSTRUMENTATIONS=pg,nestjs-core,http leaves those out (the usual name).
  const disabled = new Set((env.OTEL_NODE_DISABLED_INSTRUMENTATIONS ?? '').split(',').map((s) => s.trim()).filter(Boolean));
  const instrumentations = [
    disabled.has('http')
      ? undefined
      : new HttpInstrumentation({
          // Probes and scrapes are not the work users trace.
          ignoreIncomingRequestHook: (req) => /^\/(healthz|readyz|metrics)(\?|$)/.test(req.url ?? ''),
          // Outgoing calls (Docker, Kubernetes APIs) belong to a job's trace, never start one.
          requireParentforOutgoingSpans: true,
        }),
    disabled.has('nestjs-core') ? undefined : new NestInstrumentation(),
    // Background loops poll Postgres many times a second: their queries are traced only inside
    // a span (a submit, a dispatch, a report), never as traces of their own.
    disabled.has('pg') ? undefined : new PgInstrumentation({ requireParentSpan: true, ignoreConnectSpans: true }),
  ];
  registerInstrumentations({ instrumentations: instrumentations.filter((i) => i !== undefined) });

  let stopping: Promise<void> | undefined;
  const shutdown = () => (stopping ??= provider.shutdown().catch(() => undefined));
  setTracingShutdown(shutdown);
  started = { enabled: true, shutdown };
  return started;
}
