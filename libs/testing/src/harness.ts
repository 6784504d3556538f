import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { migrate } from '@blixard/db';
import { connectBus, deleteStreams } from '@blixard/messaging';
import { createLogger } from '@blixard/telemetry';

/**
 * Test isolation: each test file gets its own database (migrated) and its own NATS subject prefix
 * (so its own streams and consumers), so files run in parallel against one Postgres and one NATS.
 */
export interface TestInfra {
  databaseUrl: string;
  prefix: string;
  natsUrl: string;
  /** The environment a service under test reads: fast intervals, quiet logs, ports picked freely. */
  env(overrides?: Record<string, string>): Record<string, string>;
  /** Drops the database and deletes the prefix's streams. */
  cleanup(): Promise<void>;
}

const ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
export const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

export async function createTestInfra(tag: string): Promise<TestInfra> {
  const safe = tag.toLowerCase().replace(/[^a-z0-9]/g, '_').slice(0, 30);
  const suffix = randomBytes(4).toString('hex');
  const dbName = `blixard_test_${safe}_${suffix}`;
  const admin = new Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${dbName}"`);
  await admin.end();
  const url = new URL(ADMIN_URL);
  url.pathname = `/${dbName}`;
  const databaseUrl = url.toString();
  await migrate(databaseUrl);
  const prefix = `t_${safe}_${suffix}`;

  return {
    databaseUrl,
    prefix,
    natsUrl: NATS_URL,
    env(overrides = {}) {
      return {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: process.env.HOME ?? '/tmp',
        DATABASE_URL: databaseUrl,
        DATABASE_POOL_SIZE: '8',
        NATS_URL: NATS_URL,
        BLIXARD_PREFIX: prefix,
        LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
        LOG_FORMAT: 'json',
        GATEWAY_PORT: '0',
        SCHEDULER_PORT: '0',
        REGISTRY_PORT: '0',
        EXECUTOR_PORT: '0',
        DISPATCH_INTERVAL_MS: '100',
        RECONCILE_INTERVAL_MS: '250',
        HEARTBEAT_INTERVAL_MS: '250',
        WORKER_LOST_AFTER_MISSED: '4',
        RUN_LEASE_MS: '3000',
        CLAIM_LEASE_MS: '5000',
        TIMEOUT_GRACE_MS: '1000',
        DISPATCH_ACK_WAIT_MS: '5000',
        REPORT_ACK_WAIT_MS: '2000',
        DRAIN_TIMEOUT_MS: '5000',
        KILL_GRACE_MS: '500',
        // Most tests are not about auth: they run as tenant `default` with every scope. The auth
        // and tenancy tests pass AUTH_DISABLED: 'false' and use keys.
        AUTH_DISABLED: 'true',
        ...overrides,
      };
    },
    async cleanup() {
      const logger = createLogger({ service: 'test', level: 'silent' });
      const bus = await connectBus({ servers: [NATS_URL], prefix, name: 'test-cleanup', logger }).catch(() => undefined);
      if (bus) {
        await deleteStreams(bus);
        await bus.close();
      }
      const c = new Client({ connectionString: ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`).catch(() => undefined);
      await c.end();
    },
  };
}

/** Polls `check` until it returns a truthy value; fails with `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs = 30_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
