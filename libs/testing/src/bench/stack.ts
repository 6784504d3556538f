import { Client } from 'pg';
import { newJobId } from '@blixard/domain';
import { createTestInfra, TestInfra } from '../harness';
import { AppName, ServiceProcess } from '../processes';

/**
 * A stack of real service processes for benchmarks, on its own database and subject prefix, with
 * the production defaults for every interval and lease (tests shorten them; benchmarks must not),
 * each service in a session of its own as deployed (see `ServiceProcess.start`).
 */
export interface BenchStack {
  infra: TestInfra;
  gatewayUrl: string;
  db: Client;
  /** The service processes (gateway, scheduler, registry, executors), e.g. to read their CPU time. */
  procs: ServiceProcess[];
  stop(): Promise<void>;
}

const TEST_TUNING = [
  'DISPATCH_INTERVAL_MS', 'RECONCILE_INTERVAL_MS', 'HEARTBEAT_INTERVAL_MS', 'WORKER_LOST_AFTER_MISSED', 'RUN_LEASE_MS',
  'CLAIM_LEASE_MS', 'TIMEOUT_GRACE_MS', 'DISPATCH_ACK_WAIT_MS', 'REPORT_ACK_WAIT_MS', 'DRAIN_TIMEOUT_MS', 'KILL_GRACE_MS',
];

export async function startBenchStack(
  tag: string,
  options: { env?: Record<string, string>; executors?: { app: AppName; concurrency: number; count: number }[] } = {},
): Promise<BenchStack> {
  const infra = await createTestInfra(tag);
  const env = infra.env({ LOG_LEVEL: 'warn', ...(options.env ?? {}) });
  for (const k of TEST_TUNING) if (!options.env || !(k in options.env)) delete env[k];
  const procs: ServiceProcess[] = [];
  try {
    procs.push(await ServiceProcess.start('gateway', env, { ownSession: true }));
    // BENCH_PROFILE=<app>,<app>: a CPU profile of those services (node --cpu-prof) in BENCH_PROFILE_DIR.
    const profiled = (process.env.BENCH_PROFILE ?? '').split(',').filter(Boolean);
    const nodeArgs = (app: string) => (profiled.includes(app) ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR ?? '/tmp/blixard-profiles'}`] : []);
    procs.push(await ServiceProcess.start('scheduler', env, { nodeArgs: nodeArgs('scheduler'), ownSession: true }));
    procs.push(await ServiceProcess.start('worker-registry', env, { ownSession: true }));
    for (const e of options.executors ?? [{ app: 'executor-mock', concurrency: 32, count: 2 }]) {
      for (let i = 0; i < e.count; i++) procs.push(await ServiceProcess.start(e.app, { ...env, EXECUTOR_CONCURRENCY: String(e.concurrency) }, { nodeArgs: nodeArgs(e.app), ownSession: true }));
    }
  } catch (err) {
    for (const p of procs) await p.kill();
    await infra.cleanup();
    throw err;
  }
  const db = new Client({ connectionString: infra.databaseUrl });
  await db.connect();
  return {
    infra,
    gatewayUrl: procs[0]!.url,
    db,
    procs,
    async stop() {
      await db.end();
      // SIGTERM, so a profiled process writes its profile.
      for (const p of procs) await p.stop(5_000);
      await infra.cleanup();
    },
  };
}

/**
 * Inserts `n` ready jobs in bulk, straight into Postgres (a flood that would take minutes over
 * HTTP). They carry no `created` event: nothing in a benchmark listens for it.
 */
export async function floodJobs(db: Client, n: number, job: { backend: string; queue: string; fairnessKey: string; payload: unknown }): Promise<void> {
  for (let done = 0; done < n; done += 10_000) {
    const ids = Array.from({ length: Math.min(10_000, n - done) }, () => newJobId());
    await db.query(
      `INSERT INTO jobs (id, queue, backend, payload, status, fairness_key, created_at, updated_at, run_at)
       SELECT id, $2, $3, $4::jsonb, 'PENDING', $5, now(), now(), now() FROM unnest($1::uuid[]) AS id`,
      [ids, job.queue, job.backend, JSON.stringify(job.payload), job.fairnessKey],
    );
  }
}

export async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
