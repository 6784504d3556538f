import { Client } from 'pg';
import { BlixardClient } from '@blixard/client';
import { createTestInfra, ServiceProcess, TestInfra, waitFor } from '../src';
import { assertExactlyOnceCompletion, submitMany, waitAllTerminal } from './chaos';

describe('SIGKILL one of two executors while its jobs run', () => {
  let infra: TestInfra;
  const procs: ServiceProcess[] = [];

  let db: Client | undefined;

  afterAll(async () => {
    await db?.end();
    for (const p of procs) await p.kill();
    await infra?.cleanup();
  });

  it('finishes every job on the other executor, none lost, none completed twice', async () => {
    infra = await createTestInfra('kill_exec');
    // Default lease and heartbeat settings, so the recovery time measured is the one users get.
    const env = infra.env({ EXECUTOR_CONCURRENCY: '16' });
    for (const k of ['HEARTBEAT_INTERVAL_MS', 'WORKER_LOST_AFTER_MISSED', 'RUN_LEASE_MS', 'CLAIM_LEASE_MS', 'RECONCILE_INTERVAL_MS', 'DISPATCH_ACK_WAIT_MS']) delete env[k];
    const gateway = await ServiceProcess.start('gateway', env);
    procs.push(gateway, await ServiceProcess.start('scheduler', env), await ServiceProcess.start('worker-registry', env));
    const victim = await ServiceProcess.start('executor-mock', env);
    const survivor = await ServiceProcess.start('executor-mock', env);
    procs.push(victim, survivor);
    const client = new BlixardClient(gateway.url);
    await waitFor('both executors online', async () => (await client.workers()).filter((w) => w.status === 'ONLINE').length === 2);

    const ids = await submitMany(client, 160, { sleepMs: 1500 });
    db = new Client({ connectionString: infra.databaseUrl });
    await db.connect();
    // Wait until the victim runs attempts, then kill it without warning.
    const victimId = await waitFor('the victim to run attempts', async () => {
      const r = await db.query<{ worker_id: string; n: string }>(`SELECT worker_id, count(*) n FROM jobs WHERE status = 'RUNNING' GROUP BY 1`);
      const workers = await client.workers();
      const vw = workers.find((w) => r.rows.some((row) => row.worker_id === w.id && Number(row.n) >= 8) && w.host && w.id.includes(`-${victim.pid}-`));
      return vw?.id;
    }, 30_000, 20);
    await victim.kill('SIGKILL');
    const killedAt = Date.now();
    // Let reports the victim published before it died be applied; what it still holds is orphaned.
    await new Promise((r) => setTimeout(r, 300));
    const orphans = (await db.query<{ id: string }>(`SELECT id FROM jobs WHERE status = 'RUNNING' AND worker_id = $1`, [victimId])).rows.map((r) => r.id);
    expect(orphans.length).toBeGreaterThan(0);

    // Orphan recovery: every attempt the dead worker held is taken away from it (retried).
    await waitFor('the orphans to be requeued', async () => {
      const r = await db.query(`SELECT 1 FROM jobs WHERE id = ANY($1::uuid[]) AND status = 'RUNNING' AND worker_id = $2`, [orphans, victimId]);
      return r.rowCount === 0;
    }, 60_000, 50);
    const recoveryMs = Date.now() - killedAt;
    process.stdout.write(`orphan recovery after SIGKILL of an executor (default settings): ${recoveryMs} ms for ${orphans.length} attempts\n`);
    expect(recoveryMs).toBeLessThan(30_000);

    await waitAllTerminal(client, 160);
    await assertExactlyOnceCompletion(infra.databaseUrl, ids);
    const lost = await db.query<{ outcome: string }>(`SELECT DISTINCT outcome::text FROM job_attempts WHERE job_id = ANY($1::uuid[]) AND worker_id = $2 AND outcome <> 'COMPLETED'`, [orphans, victimId]);
    expect(lost.rows.map((r) => r.outcome)).toEqual(expect.arrayContaining([expect.stringMatching(/WORKER_LOST|LEASE_EXPIRED/)]));
  });
});
