import { subjects } from '@blixard/contracts';
import { closeDatabase, createPool, createPrisma, DispatchStore, JobStore } from '@blixard/db';
import { PLACEMENT_POLICIES, PlacementPolicy, validateSubmission } from '@blixard/domain';
import { createTestInfra } from '../harness';

/**
 * Placement throughput: the dispatcher's decisions per second with 50 workers registered. Each
 * worker offers 128 slots, 64,000 mCPU and 256 GB in one of three zones; 5,000 jobs each ask for
 * CPU and memory, half of them with a zone constraint. The dispatcher claims in rounds of its
 * default batch size (each round reads the fleet and what it holds, places every job, writes the
 * claims) until every job is placed, once per policy. Only Postgres is involved: this measures
 * the placement path itself, not the executors. Run: `pnpm bench:placement`.
 */
const WORKERS = Number(process.env.BENCH_WORKERS ?? 50);
const JOBS = Number(process.env.BENCH_JOBS ?? 5_000);
const BATCH = Number(process.env.BENCH_BATCH ?? 256);

async function main() {
  const infra = await createTestInfra('bench_placement');
  const db = createPrisma(infra.databaseUrl, 4);
  const pool = createPool(infra.databaseUrl, 4);
  const s = subjects(infra.prefix);
  const store = new JobStore(db, { subjects: s, source: '/bench', claimLeaseMs: 30_000, runLeaseMs: 30_000, idempotencyWindowMs: 86_400_000 });
  const dispatch = new DispatchStore(db, { subjects: s, source: '/bench', claimLeaseMs: 30_000, fairness: true }, pool);
  const results: string[] = [];
  try {
    for (const policy of PLACEMENT_POLICIES.filter((p) => p !== 'explicit') as PlacementPolicy[]) {
      await pool.query(`TRUNCATE jobs, job_attempts, outbox_events, workers, queues CASCADE`);
      await pool.query(
        `INSERT INTO workers (id, backend, host, version, labels, capacity, concurrency, status)
         SELECT 'w-' || lpad(i::text, 3, '0'), 'mock', 'bench', 'bench',
                jsonb_build_object('zone', (ARRAY['a', 'b', 'c'])[1 + i % 3]),
                '{"cpuMillis": 64000, "memoryMb": 262144}'::jsonb, 128, 'ONLINE'
         FROM generate_series(1, $1) AS i`,
        [WORKERS],
      );
      await pool.query(`INSERT INTO queues (name, placement_policy) VALUES ('default', $1)`, [policy]);
      for (let i = 0; i < JOBS; i++) {
        const submission = validateSubmission({
          backend: 'mock',
          payload: {},
          resources: { cpuMillis: 100 + (i % 4) * 100, memoryMb: 256 * (1 + (i % 3)) },
          ...(i % 2 ? { constraints: [`zone=${['a', 'b', 'c'][i % 3]}`] } : {}),
        });
        await store.submit(submission, 'bench');
      }
      const t0 = process.hrtime.bigint();
      let placed = 0;
      let rounds = 0;
      for (;;) {
        const batch = await dispatch.claimForDispatch(BATCH);
        rounds++;
        placed += batch.jobs.length;
        if (batch.jobs.length === 0) break;
      }
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const { rows: [over] } = await pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM (
           SELECT j.worker_id, sum((j.requirements -> 'resources' ->> 'cpuMillis')::int) AS cpu, count(*) AS slots
           FROM jobs j WHERE j.status = 'CLAIMED' GROUP BY j.worker_id) u
         WHERE u.cpu > 64000 OR u.slots > 128`);
      const { rows: [waiting] } = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM jobs WHERE status = 'PENDING'`);
      results.push(
        `  ${policy.padEnd(11)} ${Math.round(placed / seconds)} placements/s (${placed} placed in ${rounds} rounds, ${seconds.toFixed(2)} s; ` +
          `${waiting!.n} left waiting for room, ${over!.n} workers over-committed)`,
      );
    }
    process.stdout.write(`placement throughput, ${WORKERS} workers, ${JOBS} jobs with requirements, rounds of ${BATCH}\n${results.join('\n')}\n`);
  } finally {
    await dispatch.close();
    await pool.end();
    await closeDatabase(db);
    await infra.cleanup();
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
