import { BlixardClient } from '@blixard/client';
import { createTestInfra, ServiceProcess, TestInfra, waitFor } from '../src';
import { assertExactlyOnceCompletion, submitMany, waitAllTerminal } from './chaos';

describe('a scheduler killed mid-stream', () => {
  let infra: TestInfra;
  const procs: ServiceProcess[] = [];

  beforeEach(async () => {
    infra = await createTestInfra('kill_sched');
  });

  afterEach(async () => {
    for (const p of procs.splice(0)) await p.kill();
    await infra?.cleanup();
  });

  async function startStack(env: Record<string, string>) {
    const gateway = await ServiceProcess.start('gateway', env);
    const scheduler = await ServiceProcess.start('scheduler', env);
    procs.push(gateway, scheduler, await ServiceProcess.start('worker-registry', env), await ServiceProcess.start('executor-mock', env));
    const client = new BlixardClient(gateway.url);
    await waitFor('the executor online', async () => (await client.workers()).some((w) => w.status === 'ONLINE'));
    return { gateway, scheduler, client };
  }

  it('SIGKILL the scheduler mid-stream and start a new one: every job finishes exactly once', async () => {
    const env = infra.env({ EXECUTOR_CONCURRENCY: '16' });
    const { scheduler, client } = await startStack(env);
    const ids = await submitMany(client, 300, { sleepMs: 20 });
    await waitFor('a third of the jobs done', async () => (await client.stats()).byStatus.COMPLETED >= 100, 60_000, 20);
    await scheduler.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 1_000));
    procs.push(await ServiceProcess.start('scheduler', env));
    await waitAllTerminal(client, 300);
    await assertExactlyOnceCompletion(infra.databaseUrl, ids);
  });
});
