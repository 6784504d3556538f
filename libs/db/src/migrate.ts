import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';

/**
 * Applies prisma/migrations/<name>/migration.sql in name order, each once, each in its own
 * transaction, under an advisory lock so that several services (or test files) starting at once
 * migrate safely. The SQL is what `prisma migrate diff` generated; this small runner replaces
 * `prisma migrate deploy`, whose engine cannot be downloaded on offline machines.
 */
export async function migrate(databaseUrl: string, migrationsDir = findMigrationsDir()): Promise<string[]> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  const applied: string[] = [];
  try {
    await client.query('SELECT pg_advisory_lock(727274)');
    await client.query(`CREATE TABLE IF NOT EXISTS blixard_migrations (
      name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = new Set((await client.query<{ name: string }>('SELECT name FROM blixard_migrations')).rows.map((r) => r.name));
    const names = readdirSync(migrationsDir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort();
    for (const name of names) {
      if (done.has(name)) continue;
      const sql = readFileSync(path.join(migrationsDir, name, 'migration.sql'), 'utf8');
      await client.query('BEGIN');
      try {
        await client.query(sql);
        await client.query('INSERT INTO blixard_migrations (name) VALUES ($1)', [name]);
        await client.query('COMMIT');
        applied.push(name);
      } catch (err) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${name} failed: ${(err as Error).message}`);
      }
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock(727274)').catch(() => undefined);
    await client.end();
  }
  return applied;
}

/** prisma/migrations of the repository (or BLIXARD_MIGRATIONS_DIR). */
export function findMigrationsDir(): string {
  if (process.env.BLIXARD_MIGRATIONS_DIR) return process.env.BLIXARD_MIGRATIONS_DIR;
  let dir = __dirname;
  for (;;) {
    const candidate = path.join(dir, 'prisma', 'migrations');
    if (existsSync(candidate)) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('prisma/migrations not found; set BLIXARD_MIGRATIONS_DIR');
    dir = parent;
  }
}

/** Creates the database named in `databaseUrl` if it does not exist (local development, tests). */
export async function ensureDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.slice(1));
  url.pathname = '/postgres';
  const client = new Client({ connectionString: url.toString() });
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rowCount === 0) {
      await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`).catch((err: Error) => {
        if (!/already exists/.test(err.message)) throw err;
      });
    }
  } finally {
    await client.end();
  }
}
