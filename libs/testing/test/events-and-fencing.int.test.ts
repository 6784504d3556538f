import { BlixardClient } from '@blixard/client';
import type { CloudEvent, JobEventData } from '@blixard/contracts';
import { connectBus, encodeJson, Bus } from '@blixard/messaging';
import { createLogger } from '@blixard/telemetry';
import { createTestInfra, TestInfra, waitFor } from '../src';
import { InProcessStack, MockBackend, RunningExecutor, RunningScheduler, startStack } from './stack';

describe('the lifecycle emits one event per transition and refuses stale reports', () => {
  let infra: TestInfra;
  let stack: InProcessStack;
  let scheduler: RunningScheduler;
  let executor: RunningExecutor;
  let client: BlixardClient;
  let bus: Bus;
  const events: CloudEvent<JobEventData>[] = [];

  beforeAll(async () => {
    infra = await createTestInfra('events');
    const env = infra.env();
    bus = await connectBus({ servers: [infra.natsUrl], prefix: infra.prefix, name: 'test', logger: createLogger({ service: 'test', level: 'silent' }) });
    bus.nc.subscribe(`${infra.prefix}.events.job.>`, {
      callback: (_err, msg) => events.push(JSON.parse(new TextDecoder().decode(msg.data)) as CloudEvent<JobEventData>),
    });
    stack = await startStack(env, { executors: [new MockBackend()] });
    [scheduler] = stack.schedulers as [RunningScheduler];
    [executor] = stack.executors as [RunningExecutor];
    client = stack.client;
  });

  afterAll(async () => {
    await stack?.stop();
    await bus?.close();
    await infra?.cleanup();
  });

  const typesOf = (jobId: string) => events.filter((e) => e.subject === jobId).map((e) => e.type.replace('dev.blixard.job.', ''));

  it('publishes created, claimed, started, completed once each, as CloudEvents with the result', async () => {
    const job = await client.submit({ backend: 'mock', payload: { output: { answer: 42 } } });
    await client.waitForTerminal(job.id);
    await waitFor('the completed event', () => typesOf(job.id).includes('completed'));
    expect(typesOf(job.id)).toEqual(['created', 'claimed', 'started', 'completed']);
    const completed = events.find((e) => e.subject === job.id && e.type === 'dev.blixard.job.completed')!;
    expect(completed).toMatchObject({
      specversion: '1.0',
      source: '/blixard/scheduler',
      datacontenttype: 'application/json',
      data: { jobId: job.id, status: 'COMPLETED', previousStatus: 'RUNNING', attempt: 1, backend: 'mock', result: { answer: 42 } },
    });
    expect(Date.parse(completed.time)).not.toBeNaN();
    expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
  });

  it('retries a failed attempt through SCHEDULED and emits every step', async () => {
    const job = await client.submit({
      backend: 'mock',
      payload: { fail: true, failAttempts: 1, output: 'second time lucky' },
      maxAttempts: 2,
      backoff: { type: 'fixed', baseMs: 50, jitter: 0 },
    });
    const done = await client.waitForTerminal(job.id);
    expect(done.status).toBe('COMPLETED');
    expect(done.result).toBe('second time lucky');
    expect(done.attempts!.map((a) => [a.attempt, a.outcome])).toEqual([[1, 'FAILED'], [2, 'COMPLETED']]);
    await waitFor('the completed event', () => typesOf(job.id).includes('completed'));
    expect(typesOf(job.id)).toEqual(['created', 'claimed', 'started', 'retrying', 'due', 'claimed', 'started', 'completed']);
  });

  it('drops duplicate and stale reports, counts them, and changes nothing', async () => {
    const job = await client.submit({ backend: 'mock', payload: { output: 'original' } });
    const done = await client.waitForTerminal(job.id);
    const worker = executor.runtime.workerId;
    const at = new Date().toISOString();
    const dropsBefore = await scheduler.scheduler.counters.dropped.get();
    const count = (v: typeof dropsBefore) => v.values.reduce((s, x) => s + x.value, 0);
    const publish = (report: object, id: string) => bus.js.publish(`${infra.prefix}.report.${job.id}`, encodeJson(report), { msgID: id });

    // A duplicate completion (new message id, so JetStream does not dedupe it), a failure for
    // the finished attempt, a start for it, and a completion of an attempt that never existed.
    await publish({ type: 'completed', jobId: job.id, attempt: 1, workerId: worker, at, output: 'forged', durationMs: 1 }, 'dup-1');
    await publish({ type: 'failed', jobId: job.id, attempt: 1, workerId: worker, at, reason: 'error', errorCode: 'x', message: 'late', retryable: true, durationMs: 1 }, 'dup-2');
    await publish({ type: 'started', jobId: job.id, attempt: 1, workerId: worker, at }, 'dup-3');
    await publish({ type: 'completed', jobId: job.id, attempt: 7, workerId: 'someone-else', at, output: 'forged', durationMs: 1 }, 'dup-4');
    // And one that is not a report at all.
    await bus.js.publish(`${infra.prefix}.report.${job.id}`, new TextEncoder().encode('{"type":"exploded"'), { msgID: 'garbage-1' });

    await waitFor('the four stale reports to be counted', async () => count(await scheduler.scheduler.counters.dropped.get()) - count(dropsBefore) === 4);
    await waitFor('the malformed report to be rejected', async () => (await scheduler.scheduler.counters.rejected.get()).values.some((v) => v.labels.kind === 'report' && v.value >= 1));
    const after = await client.get(job.id);
    expect(after).toMatchObject({ status: 'COMPLETED', result: 'original', attempt: 1, finishedAt: done.finishedAt, updatedAt: done.updatedAt });
    expect(after.attempts).toHaveLength(1);
    expect(typesOf(job.id).filter((t) => t === 'completed')).toHaveLength(1);
  });

  it('ignores a flood of duplicated and stale reports for 200 jobs: no state changes twice', async () => {
    const jobs = await Promise.all(Array.from({ length: 200 }, (_, i) => client.submit({ backend: 'mock', queue: 'flood', payload: { output: i } })));
    // One list call per poll: 200 jobs each polled every 50 ms would load the in-process stack
    // with 4,000 requests a second and slow the very scheduler under test (a third of the time).
    await waitFor('the 200 jobs to finish', async () => (await client.list({ queue: 'flood', status: ['COMPLETED', 'FAILED', 'CANCELLED'], limit: 200 })).items.length === 200, 60_000, 250);
    const done = await Promise.all(jobs.map((j) => client.get(j.id)));
    expect(done.every((j) => j.status === 'COMPLETED')).toBe(true);
    const count = async () => (await scheduler.scheduler.counters.dropped.get()).values.reduce((s, x) => s + x.value, 0);
    const before = await count();
    const at = new Date().toISOString();
    // For every job: its started and completed reports again (as a redelivery would bring them),
    // a late failure of its attempt, and a report of an attempt that never was.
    await Promise.all(
      done.flatMap((j) => {
        const base = { jobId: j.id, workerId: j.workerId!, at };
        const publish = (report: object, tag: string) => bus.js.publish(`${infra.prefix}.report.${j.id}`, encodeJson(report), { msgID: `${j.id}:${tag}` });
        return [
          publish({ ...base, type: 'started', attempt: 1 }, 'flood-started'),
          publish({ ...base, type: 'completed', attempt: 1, output: 'forged', durationMs: 1 }, 'flood-completed'),
          publish({ ...base, type: 'failed', attempt: 1, reason: 'error', errorCode: 'late', message: 'late', retryable: true, durationMs: 1 }, 'flood-failed'),
          publish({ ...base, type: 'completed', attempt: 2, output: 'forged', durationMs: 1 }, 'flood-ghost'),
        ];
      }),
    );
    await waitFor('800 drops to be counted', async () => (await count()) - before === 800, 30_000, 100);
    const after = await Promise.all(done.map((j) => client.get(j.id)));
    after.forEach((j, i) => {
      expect(j).toMatchObject({ status: 'COMPLETED', attempt: 1, result: i, updatedAt: done[i]!.updatedAt });
      expect(j.attempts).toHaveLength(1);
      expect(typesOf(j.id).filter((t) => t === 'completed')).toHaveLength(1);
    });
  });
});
