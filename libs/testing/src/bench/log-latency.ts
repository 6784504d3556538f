import { BlixardClient, readSse } from '@blixard/client';
import type { LogLineView } from '@blixard/contracts';
import { percentile } from '../harness';
import { startBenchStack, waitUntil } from './stack';

/**
 * Log latency: a `process` job prints a line with its own clock reading every BENCH_INTERVAL_MS
 * (default 10 ms) for BENCH_LINES lines (default 500: 5 s); a client follows
 * `GET /v1/jobs/:id/logs?follow=true` over SSE from before the job starts. Latency = the moment
 * the client parses the line − the time printed in it (one machine, one clock): the pipe to the
 * executor, its line splitting, the JetStream publish, the gateway's feed and the SSE write.
 * Real service processes, production defaults. Run: `pnpm bench:log-latency`.
 */
const LINES = Number(process.env.BENCH_LINES ?? 500);
const INTERVAL_MS = Number(process.env.BENCH_INTERVAL_MS ?? 10);
const JOBS = Number(process.env.BENCH_JOBS ?? 3);

const PRINTER = `let i = 0; const t = setInterval(() => { i++; process.stdout.write(Date.now() + ' ' + i + '\\n'); if (i >= ${LINES}) clearInterval(t); }, ${INTERVAL_MS});`;

async function main() {
  const stack = await startBenchStack('bench_log_latency', { executors: [{ app: 'executor-process', concurrency: 4, count: 1 }] });
  try {
    const client = new BlixardClient(stack.gatewayUrl);
    await waitUntil('the executor online', async () => (await client.workers()).some((w) => w.status === 'ONLINE'), 30_000);
    const latencies: number[] = [];
    for (let j = 0; j < JOBS; j++) {
      const job = await client.submit({ backend: 'process', payload: { command: [process.execPath, '-e', PRINTER] } });
      let received = 0;
      for await (const e of readSse(`${stack.gatewayUrl}/v1/jobs/${job.id}/logs?follow=true`)) {
        if (e.event !== 'log') continue;
        const now = Date.now();
        const line = JSON.parse(e.data) as LogLineView;
        const printedAt = Number(line.line.split(' ')[0]);
        if (line.stream === 'stdout' && Number.isFinite(printedAt)) {
          latencies.push(now - printedAt);
          received++;
        }
      }
      if (received !== LINES) throw new Error(`job ${j + 1}: ${received} of ${LINES} lines arrived`);
    }
    const fmt = (p: number) => `${percentile(latencies, p).toFixed(0)} ms`;
    process.stdout.write(
      `log line printed by a process job → line on an SSE client (${JOBS} jobs × ${LINES} lines, one every ${INTERVAL_MS} ms)\n` +
        `  p50 ${fmt(50)}, p90 ${fmt(90)}, p99 ${fmt(99)}, max ${Math.max(...latencies)} ms, min ${Math.min(...latencies)} ms (${latencies.length} lines, none lost)\n`,
    );
  } finally {
    await stack.stop();
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
