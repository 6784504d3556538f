import { Config, ConfigKey, loadConfig } from '@blixard/config';
import { closeDatabase, createPrisma, Db, pingDatabase, poolOf } from '@blixard/db';
import { Bus, connectBus, ensureStreams } from '@blixard/messaging';
import { createLogger, Logger, Metrics } from '@blixard/telemetry';
import type { ReadinessChecks } from './health';

const BASE_KEYS = ['databaseUrl', 'databasePoolSize', 'natsUrl', 'subjectPrefix', 'logLevel', 'logFormat'] as const;
type BaseKey = (typeof BASE_KEYS)[number];

/** What every database-backed service starts with. */
export interface ServiceContext<K extends ConfigKey> {
  name: string;
  config: Config<K | BaseKey>;
  logger: Logger;
  metrics: Metrics;
  db: Db;
  bus: Bus;
  readiness: ReadinessChecks;
  close(): Promise<void>;
}

/**
 * Loads and validates the service's configuration (every problem listed at once), then connects
 * Postgres and NATS and provisions the streams.
 */
export async function createServiceContext<K extends ConfigKey>(
  name: string,
  keys: readonly K[],
  env: Record<string, string | undefined> = process.env,
): Promise<ServiceContext<K>> {
  const config = loadConfig([...BASE_KEYS, ...keys], env) as Config<K | BaseKey>;
  const logger = createLogger({ service: name, level: config.logLevel, format: config.logFormat as 'json' | 'pretty' });
  const metrics = new Metrics(name);
  const db = createPrisma(config.databaseUrl, config.databasePoolSize);
  // Connections Postgres dropped while idle (restart, failover) are errors worth counting.
  poolOf(db).on('error', () => metrics.dbErrors.inc({ operation: 'pool' }));
  await db.$connect();
  const bus = await connectBus({ servers: config.natsUrl, prefix: config.subjectPrefix, name, logger, metrics });
  await ensureStreams(bus);
  return {
    name,
    config,
    logger,
    metrics,
    db,
    bus,
    readiness: {
      postgres: () => pingDatabase(db),
      nats: async () => !bus.nc.isClosed() && !bus.nc.isDraining() && bus.nc.info !== undefined,
    },
    async close() {
      await bus.close();
      await closeDatabase(db);
    },
  };
}
