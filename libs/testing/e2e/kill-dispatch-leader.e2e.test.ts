import { BlixardClient } from '@blixard/client';
import { createTestInfra, ServiceProcess, TestInfra, waitFor } from '../src';
import { assertExactlyOnceCompletion, submitMany, waitAllTerminal } from './chaos';

/** Whether a scheduler process leads dispatch, from its own /metrics. */
async function leads(p: ServiceProcess): Promise<boolean> {
  const text = await (await fetch(`${p.url}/metrics`)).text();
  return /^blixard_dispatch_leader(\{[^}]*\})? 1$/m.test(text);
}

describe('the dispatch leader killed while a standby runs', () => {
  let infra: TestInfra;
  const procs: ServiceProcess[] = [];

  beforeAll(async () => {
    infra = await createTestInfra('kill_leader');
  });

  afterAll(async () => {
    for (const p of procs.splice(0)) await p.kill();
    await infra?.cleanup();
  });

  it('the standby takes the lead at once and every job finishes exactly once', async () => {
    const env = infra.env({ EXECUTOR_CONCURRENCY: '16' });
    const gateway = await ServiceProcess.start('gateway', env);
    const schedulers = [await ServiceProcess.start('scheduler', env), await ServiceProcess.start('scheduler', env)];
    procs.push(gateway, ...schedulers, await ServiceProcess.start('worker-registry', env), await ServiceProcess.start('executor-mock', env));
    const client = new BlixardClient(gateway.url);
    await waitFor('the executor online', async () => (await client.workers()).some((w) => w.status === 'ONLINE'));

    const ids = await submitMany(client, 300, { sleepMs: 20 });
    await waitFor('a third of the jobs done', async () => (await client.stats()).byStatus.COMPLETED >= 100, 60_000, 20);
    // Exactly one replica leads; the other applies reports and wakes it.
    const leading = await Promise.all(schedulers.map(leads));
    expect(leading.filter(Boolean)).toHaveLength(1);
    const [leader, standby] = leading[0] ? [schedulers[0]!, schedulers[1]!] : [schedulers[1]!, schedulers[0]!];

    await leader.kill('SIGKILL');
    const killedAt = Date.now();
    // The lock ends with the dead leader's connection; the standby takes it at its next try.
    await waitFor('the standby to lead', () => leads(standby), 10_000, 20);
    const takeover = Date.now() - killedAt;
    expect(takeover).toBeLessThan(5_000);
    await waitAllTerminal(client, 300);
    await assertExactlyOnceCompletion(infra.databaseUrl, ids);
  });
});
