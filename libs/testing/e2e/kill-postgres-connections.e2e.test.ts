import { Client } from 'pg';
import { BlixardClient } from '@blixard/client';
import { createTestInfra, ServiceProcess, TestInfra, waitFor } from '../src';
import { assertExactlyOnceCompletion, submitMany, waitAllTerminal } from './chaos';

describe('Postgres drops every connection mid-stream', () => {
  let infra: TestInfra;
  const procs: ServiceProcess[] = [];

  afterAll(async () => {
    for (const p of procs) await p.kill();
    await infra?.cleanup();
  });

  it('the services reconnect and every job finishes exactly once', async () => {
    infra = await createTestInfra('kill_pg');
    const env = infra.env({ EXECUTOR_CONCURRENCY: '16' });
    const gateway = await ServiceProcess.start('gateway', env);
    procs.push(gateway, await ServiceProcess.start('scheduler', env), await ServiceProcess.start('worker-registry', env), await ServiceProcess.start('executor-mock', env));
    const client = new BlixardClient(gateway.url);
    await waitFor('the executor online', async () => (await client.workers()).some((w) => w.status === 'ONLINE'));
    const ids = await submitMany(client, 300, { sleepMs: 20 });

    const admin = new Client({ connectionString: infra.databaseUrl });
    await admin.connect();
    const dbName = new URL(infra.databaseUrl).pathname.slice(1);
    let killed = 0;
    try {
      for (let round = 1; round <= 3; round++) {
        await waitFor(`progress before kill ${round}`, async () => (await client.stats()).byStatus.COMPLETED >= 60 * round, 60_000, 20);
        // Every connection of every service to this database, as a Postgres restart would.
        const r = await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [dbName]);
        killed += r.rowCount ?? 0;
      }
    } finally {
      await admin.end();
    }
    expect(killed).toBeGreaterThanOrEqual(3);
    await waitAllTerminal(client, 300);
    await assertExactlyOnceCompletion(infra.databaseUrl, ids);
  });
});
