import { HealthController } from '@blixard/service';
import { json, ref } from './components';
import { ApiOperation, type ApiOperationSpec } from './operation';

/**
 * The health, readiness and metrics endpoints every service mounts (`HealthController`, in
 * libs/service). A library cannot import an app, so the gateway, which documents what it serves,
 * puts the `@ApiOperation` on those handlers here: the same decorator, applied by hand.
 */
const HEALTH_OPERATIONS: Record<'healthz' | 'readyz' | 'prometheus', ApiOperationSpec> = {
  healthz: {
    operationId: 'getLiveness',
    summary: 'Liveness',
    description: 'The process serves requests; never depends on Postgres or NATS.',
    tags: ['service'],
    responses: {
      '200': json({ type: 'object', required: ['status'], properties: { status: { const: 'ok' } } }, 'Alive.'),
    },
  },
  readyz: {
    operationId: 'getReadiness',
    summary: 'Readiness',
    description: 'Every dependency (Postgres, NATS) answers.',
    tags: ['service'],
    responses: {
      '200': json(ref('Readiness'), 'Ready: `status` is `ready`.'),
      '503': json(ref('Readiness'), 'Not ready: `status` is `unready` and `checks` names what is unreachable.'),
    },
  },
  prometheus: {
    operationId: 'getMetrics',
    summary: 'Prometheus metrics',
    tags: ['service'],
    responses: {
      '200': { description: 'Metrics in the Prometheus text format 0.0.4.', content: { 'text/plain': { schema: { type: 'string' } } } },
    },
  },
};

for (const [method, spec] of Object.entries(HEALTH_OPERATIONS)) {
  const descriptor = Object.getOwnPropertyDescriptor(HealthController.prototype, method);
  // A handler renamed in libs/service is named here, at start, rather than left undescribed.
  if (descriptor === undefined) throw new Error(`HealthController has no handler ${method} to describe`);
  ApiOperation(spec)(HealthController.prototype, method, descriptor);
}
