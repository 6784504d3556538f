import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from './generated/prisma/client';

export { Prisma, PrismaClient } from './generated/prisma/client';
export type { Job, JobAttempt, OutboxEvent, Worker } from './generated/prisma/client';

export type Db = PrismaClient;
/** The client inside an interactive transaction. */
export type Tx = Omit<PrismaClient, '$connect' | '$disconnect' | '$on' | '$transaction' | '$extends'>;

export function createPrisma(databaseUrl: string, poolSize = 10): PrismaClient {
  return new PrismaClient({
    adapter: new PrismaPg({
      connectionString: databaseUrl,
      max: poolSize,
      // A connection killed mid-query (Postgres restart, pg_terminate_backend) must fail the
      // query, not hang the loop that awaits it: every caller retries.
      query_timeout: 15_000,
      connectionTimeoutMillis: 10_000,
      keepAlive: true,
    }),
    // Under a burst, transactions queue for a connection; fail only when truly stuck.
    transactionOptions: { maxWait: 15_000, timeout: 20_000 },
  });
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
