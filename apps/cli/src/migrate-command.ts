import { loadConfig } from '@blixard/config';
import { ensureDatabase, migrate } from '@blixard/db';
import { describeError } from './errors';
import { redactUrl } from './net';

/**
 * Creates the database if missing, then applies the pending migrations. Shared by `migrate`
 * and `up`, so a fresh machine needs no separate `createdb` step.
 */
export async function migrateDatabase(databaseUrl: string, log: (line: string) => void = console.log): Promise<string[]> {
  await ensureDatabase(databaseUrl);
  const applied = await migrate(databaseUrl);
  if (applied.length === 0) {
    log(`database ${redactUrl(databaseUrl)} is up to date: no migration to apply`);
  } else {
    log(`applied ${applied.length} migration(s) to ${redactUrl(databaseUrl)}:`);
    for (const name of applied) log(`  - ${name}`);
  }
  return applied;
}

/** `blixard migrate`: exit code 0 when the schema is current, 1 with the reason otherwise. */
export async function migrateCommand(): Promise<number> {
  let databaseUrl = process.env.DATABASE_URL ?? '(unset)';
  try {
    ({ databaseUrl } = loadConfig(['databaseUrl']));
    await migrateDatabase(databaseUrl);
    return 0;
  } catch (err) {
    console.error(`migrate failed (DATABASE_URL=${redactUrl(databaseUrl)}): ${describeError(err)}`);
    return 1;
  }
}
