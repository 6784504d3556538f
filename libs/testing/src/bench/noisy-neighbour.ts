import { BlixardClient } from '@blixard/client';
import { percentile } from '../harness';
import { floodJobs, startBenchStack, waitUntil } from './stack';

/**
 * Noisy neighbour: tenant A floods 50,000 `mock` jobs; tenant B submits one job every 100 ms.
 * Reports B's pickup latency (submitted → started on an executor), p50/p99, with fairness on and
 * off, and how fast A's backlog drains meanwhile. Run: `pnpm bench:fairness`.
 */
const FLOOD = Number(process.env.BENCH_FLOOD ?? 50_000);
const B_JOBS = Number(process.env.BENCH_B_JOBS ?? 150);
/** How long each of A's jobs runs (mock `sleepMs`); 0 makes the control plane itself the bottleneck. */
const A_SLEEP_MS = Number(process.env.BENCH_A_SLEEP_MS ?? 0);
/** A rate limit on A's queue (jobs per second; 0: none), to see B's latency against A's load. */
const A_RATE = Number(process.env.BENCH_A_RATE ?? 0);

async function run(fairness: boolean) {
  const stack = await startBenchStack(`bench_fair_${fairness ? 'on' : 'off'}`, { env: { DISPATCH_FAIRNESS: String(fairness) } });
  try {
    const client = new BlixardClient(stack.gatewayUrl);
    await waitUntil('2 executors online', async () => (await client.workers()).filter((w) => w.status === 'ONLINE').length === 2, 30_000);
    await floodJobs(stack.db, FLOOD, { backend: 'mock', queue: 'flood', fairnessKey: 'tenant-a', payload: A_SLEEP_MS > 0 ? { sleepMs: A_SLEEP_MS } : {} });
    // A table that grew to this size through the API would have planner statistics by now.
    await stack.db.query('ANALYZE jobs');
    const t0 = Date.now();
    const floodQueue = A_RATE > 0 ? { rateLimit: { n: A_RATE, intervalMs: 1000 } } : {};
    const put = await fetch(`${stack.gatewayUrl}/v1/queues/flood`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(floodQueue) });
    if (!put.ok) throw new Error(`PUT /v1/queues/flood: ${put.status} ${await put.text()}`);
    // Wake the scheduler: the flood bypassed the gateway.
    await client.submit({ backend: 'mock', queue: 'flood', fairnessKey: 'tenant-a', payload: {} });
    // When the client sent each of B's submissions (this process shares the machine's clock).
    const sentAt = new Map<string, number>();
    for (let i = 0; i < B_JOBS; i++) {
      const sent = Date.now();
      sentAt.set((await client.submit({ backend: 'mock', queue: 'interactive', fairnessKey: 'tenant-b', payload: {} })).id, sent);
      await new Promise((r) => setTimeout(r, 100));
    }
    const aDoneDuringB = Number((await stack.db.query(`SELECT count(*) n FROM jobs WHERE fairness_key = 'tenant-a' AND status = 'COMPLETED'`)).rows[0].n);
    const bWindowS = (Date.now() - t0) / 1000;
    // An index probe, five times a second: a count over the tenant's 50,000 rows took 20 ms of
    // Postgres's CPU each time, which the system under test then lacked.
    const unfinished = async (tenant: string) =>
      (await stack.db.query(`SELECT EXISTS (SELECT 1 FROM jobs WHERE status IN ('BLOCKED', 'SCHEDULED', 'PENDING', 'CLAIMED', 'RUNNING') AND fairness_key = $1) AS left`, [tenant])).rows[0].left as boolean;
    await waitUntil('B jobs to finish', async () => !(await unfinished('tenant-b')), 600_000);
    await waitUntil('A backlog to drain', async () => !(await unfinished('tenant-a')), 900_000);
    const drainS = (Date.now() - t0) / 1000;
    const notCompleted = Number((await stack.db.query(`SELECT count(*) n FROM jobs WHERE fairness_key IN ('tenant-a', 'tenant-b') AND status <> 'COMPLETED'`)).rows[0].n);
    if (notCompleted > 0) throw new Error(`${notCompleted} jobs ended other than COMPLETED`);
    const b = (await stack.db.query<{ id: string; started: Date; pickup: number; claim: number; start: number }>(
      `SELECT id, started_at AS started, extract(epoch FROM (started_at - created_at)) * 1000 AS pickup,
              extract(epoch FROM (dispatched_at - created_at)) * 1000 AS claim,
              extract(epoch FROM (started_at - dispatched_at)) * 1000 AS start
       FROM jobs WHERE fairness_key = 'tenant-b'`,
    )).rows;
    const rows = b.map((r) => Number(r.pickup));
    const p = (v: number[]) => `p50 ${Math.round(percentile(v, 50))} / p99 ${Math.round(percentile(v, 99))} ms`;
    // Queue tables bloat without it (this machine's Postgres ships with it off; production's is on).
    const autovacuum = (await stack.db.query<{ autovacuum: string }>('SHOW autovacuum')).rows[0]?.autovacuum;
    process.stdout.write(`  scheduler: ${await schedulerFigures(stack.procs[1]!.url)}; Postgres autovacuum ${autovacuum}\n`);
    process.stdout.write(`  B: submitted→claimed ${p(b.map((r) => Number(r.claim)))}; claimed→started on an executor ${p(b.map((r) => Number(r.start)))}\n`);
    // The table's figure counts from the job's creation in the gateway; the client waited longer
    // (HTTP, authentication, the payload check with an executor, the quota).
    process.stdout.write(`  B from the client's request to started: ${p(b.map((r) => r.started.getTime() - sentAt.get(r.id)!))}\n`);
    return {
      fairness,
      bPickupMs: { p50: Math.round(percentile(rows, 50)), p99: Math.round(percentile(rows, 99)), max: Math.round(Math.max(...rows)) },
      aThroughputDuringB: Math.round(aDoneDuringB / bWindowS),
      aDrainSeconds: Math.round(drainS),
      aThroughputOverall: Math.round((FLOOD + 1) / drainS),
    };
  } finally {
    await stack.stop();
  }
}

/** Dispatch round time and report batch size, from the scheduler's own histograms. */
async function schedulerFigures(url: string): Promise<string> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const lines = (name: string) => text.split('\n').filter((l) => l.startsWith(name));
  const value = (name: string) => Number(lines(name)[0]?.split(' ').pop() ?? NaN);
  // The bucket bound under which a share `q` of the observations fell.
  const quantile = (name: string, q: number) => {
    const buckets = lines(`${name}_bucket`).map((l) => ({ le: /le="([^"]+)"/.exec(l)![1]!, n: Number(l.split(' ').pop()) }));
    const total = value(`${name}_count`);
    return buckets.find((b) => b.n >= q * total)?.le ?? '?';
  };
  const round = 'blixard_dispatch_round_seconds';
  const batch = 'blixard_report_batch_size';
  return `${value(`${round}_count`)} dispatch rounds, mean ${((value(`${round}_sum`) / value(`${round}_count`)) * 1000).toFixed(1)} ms, p99 ≤ ${quantile(round, 0.99)} s; ` +
    `${value(`${batch}_count`)} report batches, mean ${(value(`${batch}_sum`) / value(`${batch}_count`)).toFixed(1)} reports`;
}

async function main() {
  const results = [];
  const modes = (process.env.BENCH_FAIRNESS ?? 'on,off').split(',').map((m) => m.trim() === 'on');
  for (const fairness of modes) {
    process.stdout.write(`running with fairness ${fairness ? 'on' : 'off'}...\n`);
    results.push(await run(fairness));
  }
  process.stdout.write(`\nnoisy neighbour: tenant A floods ${FLOOD} mock jobs${A_SLEEP_MS > 0 ? ` of ${A_SLEEP_MS} ms each` : ''}, tenant B submits one every 100 ms (${B_JOBS} jobs); 2 mock executors x 32 slots${A_RATE > 0 ? `; A's queue limited to ${A_RATE} jobs/s` : ''}\n`);
  process.stdout.write('| fairness | B pickup p50 | B pickup p99 | B max | A jobs/s while B submits | A drained in | A jobs/s overall |\n|---|---|---|---|---|---|---|\n');
  for (const r of results) {
    process.stdout.write(`| ${r.fairness ? 'on' : 'off'} | ${r.bPickupMs.p50} ms | ${r.bPickupMs.p99} ms | ${r.bPickupMs.max} ms | ${r.aThroughputDuringB} | ${r.aDrainSeconds} s | ${r.aThroughputOverall} |\n`);
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
