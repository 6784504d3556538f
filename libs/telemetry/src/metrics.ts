import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * One Prometheus registry per service (not the global one, so several services can share a
 * process in tests). Counters are created through it so their names stay in one place per
 * service; `/metrics` serves `registry.metrics()`.
 */
export class Metrics {
  readonly registry = new Registry();
  /** Failed NATS operations (publish, request, pull, connection), by operation. */
  readonly natsErrors: Counter<'operation'>;
  /** Failed database operations, by operation (the loop or handler that ran them). */
  readonly dbErrors: Counter<'operation'>;

  constructor(service: string, defaults = true) {
    this.registry.setDefaultLabels({ service });
    if (defaults) collectDefaultMetrics({ register: this.registry });
    this.natsErrors = this.counter('blixard_nats_errors_total', 'NATS operations that failed (publish, request, pull, connection)', ['operation'] as const);
    this.dbErrors = this.counter('blixard_db_errors_total', 'Database operations that failed', ['operation'] as const);
  }

  /** Counts `err` as a NATS or a database error (when it is one of those); returns which. */
  countError(err: unknown, operation: string): ErrorKind {
    const kind = classifyError(err);
    if (kind === 'nats') this.natsErrors.inc({ operation });
    else if (kind === 'db') this.dbErrors.inc({ operation });
    return kind;
  }

  counter<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  /** `collect`, if given, sets the gauge's value(s) just before each scrape. */
  gauge<L extends string>(name: string, help: string, labelNames: readonly L[] = [], collect?: (gauge: Gauge<L>) => void | Promise<void>): Gauge<L> {
    return new Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      ...(collect ? { collect(this: Gauge<L>) { return collect(this); } } : {}),
    });
  }

  histogram<L extends string>(name: string, help: string, labelNames: readonly L[] = [], buckets?: number[]): Histogram<L> {
    return new Histogram({ name, help, labelNames, registers: [this.registry], ...(buckets ? { buckets } : {}) });
  }

  /** The current value of a counter or gauge (summed over labels matching `labels`), for tests and stats. */
  async value(name: string, labels: Record<string, string> = {}): Promise<number> {
    const metric = this.registry.getSingleMetric(name);
    if (!metric) return 0;
    const { values } = await metric.get();
    return values
      .filter((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want))
      .reduce((sum, v) => sum + v.value, 0);
  }
}

export type ErrorKind = 'db' | 'nats' | 'other';

/**
 * Tells a Postgres error from a NATS error without importing either client: pg errors carry a
 * SQLSTATE `code` and a `severity`, or a connection message of pg's; the NATS client's errors
 * are named after NATS/JetStream.
 */
export function classifyError(err: unknown): ErrorKind {
  if (!err || typeof err !== 'object') return 'other';
  const e = err as { name?: unknown; code?: unknown; severity?: unknown; message?: unknown; constructor?: { name?: string } };
  const message = typeof e.message === 'string' ? e.message : '';
  const name = `${typeof e.name === 'string' ? e.name : ''} ${e.constructor?.name ?? ''}`;
  if (typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) && typeof e.severity === 'string') return 'db';
  if (/Connection terminated|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|Cannot use a pool after calling end|ECONNREFUSED 127\.0\.0\.1:5432|Prisma|DriverAdapterError/i.test(`${name} ${message}`)) return 'db';
  if (/Nats|JetStream|NoResponders|ClosedConnection|RequestError|DrainingConnection|Permission/i.test(name) || /\b(nats|jetstream|no responders)\b/i.test(message)) return 'nats';
  return 'other';
}
