import { PrismaPg } from '@prisma/adapter-pg';
import { Pool, PoolClient } from 'pg';
import { PrismaClient } from './generated/prisma/client';

export { Prisma, PrismaClient } from './generated/prisma/client';
export type { Job, JobAttempt, OutboxEvent, Worker, Queue, Schedule, FairnessWeight, JobDependency } from './generated/prisma/client';

export type Db = PrismaClient;
/** The client inside an interactive transaction. */
export type Tx = Omit<PrismaClient, '$connect' | '$disconnect' | '$on' | '$transaction' | '$extends'>;

export function createPrisma(databaseUrl: string, poolSize = 10): PrismaClient {
  const pool = createPool(databaseUrl, poolSize);
  const client = new PrismaClient({
    adapter: new PrismaPg(pool),
    // Under a burst, transactions queue for a connection; fail only when truly stuck.
    transactionOptions: { maxWait: 15_000, timeout: 20_000 },
  });
  pools.set(client, pool);
  return client;
}

const pools = new WeakMap<PrismaClient, Pool>();

/** The pg pool behind a client made by `createPrisma`, for the plain-SQL hot paths (sql.ts). */
export function poolOf(db: PrismaClient): Pool {
  const pool = pools.get(db);
  if (!pool) throw new Error('this PrismaClient was not made by createPrisma');
  return pool;
}

/**
 * The connection pool behind Prisma. When Postgres kills a connection in the middle of a
 * transaction (restart, failover, pg_terminate_backend), Prisma's pg adapter never hands that
 * client back to the pool, and a few such leaks drain the pool for good: every later query then
 * waits for a connection that never comes. So a client whose connection dies is released here
 * (with the error, so the pool discards it); a second release by the adapter is harmless.
 */
export function createPool(databaseUrl: string, poolSize: number): Pool {
  const pool = new Pool({
    connectionString: databaseUrl,
    max: poolSize,
    // A query on a connection that died without a word must fail, not hang its caller.
    query_timeout: 15_000,
    connectionTimeoutMillis: 10_000,
    keepAlive: true,
  });
  // Idle clients that lose their connection are removed by the pool; without a listener the
  // error would crash the process.
  pool.on('error', () => undefined);
  pool.on('connect', (client: PoolClient) => {
    client.on('error', (err: Error) => {
      setImmediate(() => {
        try {
          client.release(err);
        } catch {
          // Already released (it was idle, or the adapter released it first).
        }
      });
    });
  });
  return pool;
}

/** Disconnects Prisma and closes the pool behind it. */
export async function closeDatabase(db: PrismaClient): Promise<void> {
  await db.$disconnect();
  const pool = pools.get(db);
  pools.delete(db);
  await pool?.end().catch(() => undefined);
}

/** Readiness: the database answers. */
export async function pingDatabase(db: PrismaClient): Promise<boolean> {
  try {
    await db.$queryRaw`SELECT 1`;
    return true;
  } catch {
    return false;
  }
}
