import { BlixardClient } from '@blixard/client';
import { percentile } from '../harness';
import { startBenchStack, waitUntil } from './stack';

/**
 * Run-at lateness: 300 jobs with run-at times spread over the next 10 seconds, under the default
 * configuration. Lateness = dispatched (claimed) − run-at, and started on an executor − run-at.
 * Run: `pnpm bench:run-at`.
 */
const N = Number(process.env.BENCH_JOBS ?? 300);

async function main() {
  const stack = await startBenchStack('bench_run_at');
  try {
    const client = new BlixardClient(stack.gatewayUrl);
    await waitUntil('executors online', async () => (await client.workers()).filter((w) => w.status === 'ONLINE').length === 2, 30_000);
    // Every run-at lies after the last submission, so lateness measures the scheduler only.
    const t0 = Date.now() + 5_000;
    // Ten submissions at a time: one by one, 300 take about the whole lead on a 2-core machine.
    for (let i = 0; i < N; i += 10) {
      await Promise.all(
        Array.from({ length: Math.min(10, N - i) }, () => client.submit({ backend: 'mock', payload: {}, runAt: new Date(t0 + Math.floor(Math.random() * 10_000)).toISOString() })),
      );
    }
    if (Date.now() > t0) throw new Error('submitting took longer than the 5 s lead; lower BENCH_JOBS');
    await waitUntil('all jobs to complete', async () => (await client.stats()).byStatus.COMPLETED === N, 60_000);
    const rows = (
      await stack.db.query<{ dispatch_ms: number; start_ms: number }>(
        `SELECT extract(epoch FROM (a.claimed_at - j.run_at)) * 1000 AS dispatch_ms,
                extract(epoch FROM (j.started_at - j.run_at)) * 1000 AS start_ms
         FROM jobs j JOIN job_attempts a ON a.job_id = j.id AND a.attempt = 1`,
      )
    ).rows;
    const d = rows.map((r) => Number(r.dispatch_ms));
    const s = rows.map((r) => Number(r.start_ms));
    const fmt = (v: number[]) => `p50 ${Math.round(percentile(v, 50))} ms, p99 ${Math.round(percentile(v, 99))} ms, min ${Math.round(Math.min(...v))} ms, max ${Math.round(Math.max(...v))} ms`;
    process.stdout.write(`run-at lateness over ${N} jobs (default configuration)\n  dispatched − run-at: ${fmt(d)}\n  started − run-at:    ${fmt(s)}\n`);
  } finally {
    await stack.stop();
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
