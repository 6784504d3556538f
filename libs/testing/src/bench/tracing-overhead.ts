import { readFileSync } from 'node:fs';
import { BlixardClient } from '@blixard/client';
import { percentile } from '../harness';
import { OtlpReceiver } from '../otlp-receiver';
import { ServiceProcess } from '../processes';
import { startBenchStack, waitUntil } from './stack';

/**
 * What tracing costs: the same stack (gateway, scheduler, registry, two mock executors with 32
 * slots each, production intervals) run end to end with tracing off, on, and on with 10% of jobs
 * sampled, in turns, in one run. "On" exports every span (OTLP/HTTP JSON, the default batch
 * processor, parent-based always-on sampling) to a local receiver that counts them. Each round
 * submits BENCH_JOBS mock jobs (sleepMs 0: the orchestration alone, the worst case for relative
 * overhead) over HTTP from BENCH_CLIENTS concurrent clients and waits for all to complete.
 *
 * Reported per round: throughput (jobs / first submit → last completed), created → finished
 * latency, and the CPU time the services spent per job (from /proc: less sensitive than
 * throughput to whatever else the machine runs).
 *
 *   node libs/testing/dist/bench/tracing-overhead.js
 *   (BENCH_JOBS=2000 BENCH_CLIENTS=16 BENCH_ROUNDS=2 BENCH_MODES=off,on,sampled)
 */
const N = Number(process.env.BENCH_JOBS ?? 2000);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 16);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const WARMUP = 100;
type Mode = 'off' | 'on' | 'sampled';
const MODES = (process.env.BENCH_MODES ?? 'off,on,sampled').split(',').map((m) => m.trim()) as Mode[];
const LABEL: Record<Mode, string> = { off: 'off', on: 'on (every job)', sampled: 'on, 10% sampled' };

interface RoundResult {
  mode: Mode;
  jobsPerSecond: number;
  p50: number;
  p99: number;
  spans: number;
  /** CPU milliseconds per job, by app (summed over its processes). */
  cpuMsPerJob: Record<string, number>;
}

/** user + system CPU time of a process so far, in ms (Linux /proc; 0 elsewhere). */
function cpuMs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, in 100 Hz ticks
  } catch {
    return 0;
  }
}

function cpuByApp(procs: ServiceProcess[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of procs) out[p.app] = (out[p.app] ?? 0) + cpuMs(p.pid);
  return out;
}

async function round(mode: Mode, receiver: OtlpReceiver): Promise<RoundResult> {
  const tracing = mode !== 'off';
  const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' };
  const stack = await startBenchStack(`bench_trace_${mode}`, {
    env: mode === 'off' ? {} : mode === 'on' ? otel : { ...otel, OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' },
  });
  try {
    const client = new BlixardClient(stack.gatewayUrl);
    await waitUntil('executors online', async () => (await client.workers()).filter((w) => w.status === 'ONLINE').length === 2, 30_000);
    // Warm up (JIT, connection pools) before the clock starts.
    await Promise.all(Array.from({ length: 10 }, async () => {
      for (let i = 0; i < WARMUP / 10; i++) await client.submit({ backend: 'mock', payload: {}, queue: 'warmup' });
    }));
    await waitUntil('warm-up done', async () => (await client.stats()).byStatus.COMPLETED === WARMUP, 60_000);
    if (tracing) await new Promise((r) => setTimeout(r, 6_000)); // the warm-up's spans are exported
    const spansBefore = receiver.received;
    const cpuBefore = cpuByApp(stack.procs);

    const t0 = Date.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (next < N) {
          next++;
          await client.submit({ backend: 'mock', payload: {} });
        }
      }),
    );
    await waitUntil('all jobs completed', async () => (await client.stats()).byStatus.COMPLETED === N + WARMUP, 600_000);
    const cpuAfter = cpuByApp(stack.procs);
    const { rows } = await stack.db.query<{ last: Date }>(`SELECT max(finished_at) AS last FROM jobs WHERE queue = 'default'`);
    const seconds = (rows[0]!.last.getTime() - t0) / 1000;
    const lat = (
      await stack.db.query<{ ms: number }>(`SELECT extract(epoch FROM (finished_at - created_at)) * 1000 AS ms FROM jobs WHERE queue = 'default'`)
    ).rows.map((r) => Number(r.ms));
    // Let the last batches of spans arrive before counting them.
    if (tracing) await new Promise((r) => setTimeout(r, 6_000));
    const cpuMsPerJob = Object.fromEntries(Object.keys(cpuAfter).map((app) => [app, (cpuAfter[app]! - (cpuBefore[app] ?? 0)) / N]));
    return { mode, jobsPerSecond: N / seconds, p50: percentile(lat, 50), p99: percentile(lat, 99), spans: receiver.received - spansBefore, cpuMsPerJob };
  } finally {
    await stack.stop();
  }
}

const total = (r: RoundResult) => Object.values(r.cpuMsPerJob).reduce((a, b) => a + b, 0);
const cpuText = (r: RoundResult) =>
  `CPU ${total(r).toFixed(2)} ms/job (${Object.entries(r.cpuMsPerJob).map(([app, ms]) => `${app} ${ms.toFixed(2)}`).join(', ')})`;

async function main() {
  const receiver = await OtlpReceiver.start({ keep: false });
  const results: RoundResult[] = [];
  try {
    for (let r = 0; r < ROUNDS; r++) {
      // Rotate the order so drift (a busy neighbour, a warming disk) hits every mode.
      const order = MODES.map((_, i) => MODES[(i + r) % MODES.length]!);
      for (const mode of order) {
        const res = await round(mode, receiver);
        results.push(res);
        process.stdout.write(
          `round ${r + 1} tracing ${LABEL[mode]}: ${res.jobsPerSecond.toFixed(0)} jobs/s, created→finished p50 ${res.p50.toFixed(0)} ms p99 ${res.p99.toFixed(0)} ms, ${cpuText(res)}${mode !== 'off' ? `, ${res.spans} spans exported (${(res.spans / N).toFixed(1)} per job)` : ''}\n`,
        );
      }
    }
  } finally {
    await receiver.close();
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const summary = (mode: Mode) => {
    const rs = results.filter((r) => r.mode === mode);
    return { tput: mean(rs.map((r) => r.jobsPerSecond)), p50: mean(rs.map((r) => r.p50)), p99: mean(rs.map((r) => r.p99)), cpu: mean(rs.map(total)) };
  };
  const off = MODES.includes('off') ? summary('off') : undefined;
  let text = `\ntracing overhead, ${ROUNDS} round(s) of ${N} mock jobs per mode, ${CLIENTS} concurrent HTTP clients:\n`;
  for (const mode of MODES) {
    const s = summary(mode);
    const vs = off && mode !== 'off' ? `   (throughput ${((s.tput / off.tput - 1) * 100).toFixed(1)}%, CPU per job +${((s.cpu / off.cpu - 1) * 100).toFixed(1)}%)` : '';
    text += `  ${LABEL[mode].padEnd(16)} ${s.tput.toFixed(0)} jobs/s, p50 ${s.p50.toFixed(0)} ms, p99 ${s.p99.toFixed(0)} ms, CPU ${s.cpu.toFixed(2)} ms/job${vs}\n`;
  }
  process.stdout.write(text);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
