import { BlixardClient } from '@blixard/client';
import { createTestInfra, percentile, ServiceProcess, TestInfra, waitFor } from '../src';

/**
 * The services as separate processes, as they run in production. 200 `mock` jobs submitted over
 * HTTP all complete; the harness (ServiceProcess) can SIGKILL any of them for the chaos tests.
 */
describe('end to end with every service as its own process', () => {
  let infra: TestInfra;
  const procs: ServiceProcess[] = [];
  let gateway: ServiceProcess;

  beforeAll(async () => {
    infra = await createTestInfra('e2e_mock');
    const env = infra.env({ LOG_LEVEL: 'info', EXECUTOR_CONCURRENCY: '32' });
    gateway = await ServiceProcess.start('gateway', env);
    procs.push(gateway);
    procs.push(await ServiceProcess.start('scheduler', env));
    procs.push(await ServiceProcess.start('worker-registry', env));
    procs.push(await ServiceProcess.start('executor-mock', env));
    procs.push(await ServiceProcess.start('executor-mock', env));
  });

  afterAll(async () => {
    for (const p of procs) await p.kill();
    await infra?.cleanup();
  });

  it('runs 200 mock jobs submitted over HTTP to COMPLETED, and reports the submit-to-completed latency', async () => {
    const client = new BlixardClient(gateway.url);
    await waitFor('two mock workers online', async () => (await client.workers()).filter((w) => w.backend === 'mock' && w.status === 'ONLINE').length === 2);

    const ids: string[] = [];
    for (let i = 0; i < 200; i++) {
      // Paced like independent clients, so the figure is latency, not the drain time of a burst.
      ids.push((await client.submit({ backend: 'mock', payload: { sleepMs: 0, output: i } })).id);
      await new Promise((r) => setTimeout(r, 5));
    }
    await waitFor('200 jobs COMPLETED', async () => (await client.stats()).byStatus.COMPLETED === 200, 120_000, 250);

    const jobs = await Promise.all(ids.map((id) => client.get(id)));
    expect(jobs.every((j) => j.status === 'COMPLETED' && j.attempts?.length === 1)).toBe(true);
    expect(jobs.map((j) => j.result)).toEqual(ids.map((_, i) => i));
    const workers = new Set(jobs.map((j) => j.workerId));
    expect(workers.size).toBe(2); // both executors took work from the shared durable consumer

    // Server-side timestamps: created (gateway commit) → finished (executor's completion time).
    const latencies = jobs.map((j) => Date.parse(j.finishedAt!) - Date.parse(j.createdAt));
    const summary = { p50: percentile(latencies, 50), p90: percentile(latencies, 90), p99: percentile(latencies, 99), max: Math.max(...latencies) };
    process.stdout.write(`submit→COMPLETED latency over 200 mock jobs (sleepMs 0), ms: ${JSON.stringify(summary)}\n`);
    expect(summary.p50).toBeGreaterThanOrEqual(0);
  });

  it('stops every service gracefully on SIGTERM with exit code 0', async () => {
    const codes = [];
    for (const p of procs.splice(0)) codes.push([p.app, await p.stop()]);
    expect(codes).toEqual([
      ['gateway', 0],
      ['scheduler', 0],
      ['worker-registry', 0],
      ['executor-mock', 0],
      ['executor-mock', 0],
    ]);
  });
});
