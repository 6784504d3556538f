import { BlixardClient } from '@blixard/client';
import { createTestInfra, PrivateNatsServer, ServiceProcess, TestInfra, waitFor } from '../src';
import { assertExactlyOnceCompletion, submitMany, waitAllTerminal } from './chaos';

describe('nats-server is killed and restarted mid-stream', () => {
  let infra: TestInfra;
  let nats: PrivateNatsServer;
  const procs: ServiceProcess[] = [];

  afterAll(async () => {
    for (const p of procs) await p.kill();
    await nats?.stop();
    await infra?.cleanup();
  });

  it('every service reconnects and every job finishes exactly once', async () => {
    infra = await createTestInfra('restart_nats');
    nats = await PrivateNatsServer.start();
    const env = infra.env({ NATS_URL: nats.url, EXECUTOR_CONCURRENCY: '16' });
    const gateway = await ServiceProcess.start('gateway', env);
    procs.push(gateway, await ServiceProcess.start('scheduler', env), await ServiceProcess.start('worker-registry', env));
    procs.push(await ServiceProcess.start('executor-mock', env), await ServiceProcess.start('executor-mock', env));
    const client = new BlixardClient(gateway.url);
    await waitFor('the executors online', async () => (await client.workers()).filter((w) => w.status === 'ONLINE').length === 2);
    const ids = await submitMany(client, 300, { sleepMs: 50 });

    await waitFor('a fifth of the jobs done', async () => (await client.stats()).byStatus.COMPLETED >= 60, 60_000, 20);
    await nats.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 1_500));
    await nats.restart();

    await waitAllTerminal(client, 300, 150_000);
    await assertExactlyOnceCompletion(infra.databaseUrl, ids);
  });
});
