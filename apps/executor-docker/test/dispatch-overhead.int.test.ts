import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { BlixardClient } from '@blixard/client';
import { createTestInfra, percentile, TestInfra } from '@blixard/testing';
import { InProcessStack, startStack } from '../../../libs/testing/test/stack';
import { DockerBackend } from '../src/docker-backend';
import { LABELS } from '../src/docker-payload';
import { DockerEngine } from '../src/engine-client';
import { ensureTestEngine, TEST_IMAGE, testSettings } from './engine';

const JOBS = 30;

// Measures, for a trivial container job (`true`), the time from the scheduler's dispatch to the
// container running, as the engine itself timestamps it (its `start` event), and prints the split.
// Jobs run one after another so each measures an idle executor, not a queue.
describe('docker dispatch-to-start overhead', () => {
  let infra: TestInfra;
  let stack: InProcessStack;
  let client: BlixardClient;
  let engine: DockerEngine;
  let backend: DockerBackend;
  let events: IncomingMessage;
  const workerId = `docker-bench-${randomBytes(4).toString('hex')}`;
  /** Container start times (ms since the epoch) by job id, from the engine's event stream. */
  const startedAt = new Map<string, number>();

  beforeAll(async () => {
    const socket = await ensureTestEngine();
    engine = new DockerEngine(socket);
    events = await engine.open('GET', '/events', { query: { filters: JSON.stringify({ event: ['start'], label: [`${LABELS.workerId}=${workerId}`] }) } });
    let rest = '';
    events.on('data', (chunk: Buffer) => {
      const lines = (rest + chunk.toString('utf8')).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines.filter(Boolean)) {
        const e = JSON.parse(line) as { timeNano: number; Actor: { Attributes: Record<string, string> } };
        const jobId = e.Actor.Attributes[LABELS.jobId];
        if (jobId) startedAt.set(jobId, e.timeNano / 1e6);
      }
    });
    events.on('error', () => undefined);
    backend = new DockerBackend(testSettings(socket));
    infra = await createTestInfra('docker_overhead');
    stack = await startStack(infra.env({ EXECUTOR_CONCURRENCY: '4', EXECUTOR_ID: workerId }), { executors: [backend] });
    client = stack.client;
  });

  afterAll(async () => {
    events?.destroy();
    await stack?.stop();
    await infra?.cleanup();
    backend?.close();
    engine?.close();
  });

  it(`starts a trivial container within a bounded time of its dispatch (p50 over ${JOBS} jobs)`, async () => {
    const rows: { dispatchToStart: number; dispatchToPickup: number; pickupToStart: number; submitToDone: number }[] = [];
    for (let i = 0; i < JOBS; i++) {
      const t0 = Date.now();
      const { id } = await client.submit({ backend: 'docker', payload: { image: TEST_IMAGE, command: ['true'] } });
      const job = await client.waitForTerminal(id);
      const done = Date.now();
      expect(job.status).toBe('COMPLETED');
      const start = startedAt.get(id);
      expect(start).toBeDefined();
      const dispatched = Date.parse(job.dispatchedAt!);
      const pickup = Date.parse(job.attempts![0]!.startedAt!);
      rows.push({ dispatchToStart: start! - dispatched, dispatchToPickup: pickup - dispatched, pickupToStart: start! - pickup, submitToDone: done - t0 });
    }
    const stat = (k: keyof (typeof rows)[number]) => {
      const v = rows.map((r) => r[k]);
      return `p50 ${percentile(v, 50).toFixed(0)} ms, p95 ${percentile(v, 95).toFixed(0)} ms`;
    };
    process.stdout.write(
      [
        `docker backend, ${JOBS} trivial jobs (\`true\` in ${TEST_IMAGE}), one at a time, the engine's API over a unix socket:`,
        `  dispatch -> container started (engine event): ${stat('dispatchToStart')}`,
        `    dispatch -> executor picked it up (started report): ${stat('dispatchToPickup')}`,
        `    picked up -> container started (inspect image, scratch dir, create, start): ${stat('pickupToStart')}`,
        `  submit -> COMPLETED seen by the client (incl. container removal): ${stat('submitToDone')}`,
        '',
      ].join('\n'),
    );
    // Generous: the point is the number printed above; this only catches a broken path (e.g. a pull per job).
    expect(percentile(rows.map((r) => r.dispatchToStart), 50)).toBeLessThan(5_000);
    expect(await engine.listContainers({ [LABELS.workerId]: workerId })).toEqual([]);
  });
});
