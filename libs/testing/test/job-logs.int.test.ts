import { BlixardClient, readSse } from '@blixard/client';
import type { JobLogsView, LogLineView } from '@blixard/contracts';
import { createTestInfra, TestInfra, waitFor } from '../src';
import { InProcessStack, ProcessBackend, startStack } from './stack';

interface Followed {
  lines: (LogLineView & { id: string | undefined })[];
  end: { attempt: number; lastSeq: number; truncated: boolean; complete: boolean } | undefined;
}

/** Follows `GET /v1/jobs/:id/logs?follow=true` to its `end` event. */
async function follow(url: string, lastEventId?: string): Promise<Followed> {
  const out: Followed = { lines: [], end: undefined };
  for await (const e of readSse(url, { lastEventId })) {
    if (e.event === 'log') out.lines.push({ ...(JSON.parse(e.data) as LogLineView), id: e.id });
    else if (e.event === 'end') out.end = JSON.parse(e.data) as Followed['end'];
  }
  return out;
}

const TEN_THOUSAND_LINES = ['sh', '-c', 'i=1; while [ $i -le 10000 ]; do echo "line $i"; i=$((i+1)); done'];

async function storedWhenComplete(client: BlixardClient, id: string): Promise<JobLogsView> {
  return waitFor('the whole log stored', async () => {
    const logs = await client.logs(id);
    return logs.complete ? logs : undefined;
  }, 30_000, 100);
}

describe('logs of a process job: followed live, stored in Postgres', () => {
  let infra: TestInfra;
  let stack: InProcessStack;
  let client: BlixardClient;

  beforeAll(async () => {
    infra = await createTestInfra('job_logs');
    stack = await startStack(infra.env(), { executors: [new ProcessBackend()] });
    client = stack.client;
  });

  afterAll(async () => {
    await stack?.stop();
    await infra?.cleanup();
  });

  it('follows 10,000 lines live from before the attempt starts: none lost, none doubled, in order', async () => {
    const job = await client.submit({ backend: 'process', payload: { command: TEN_THOUSAND_LINES } });
    const followed = await follow(`${stack.gateway.url}/v1/jobs/${job.id}/logs?follow=true`);
    expect(followed.lines).toHaveLength(10_000);
    expect(followed.lines.every((l, i) => l.line === `line ${i + 1}` && l.seq === i + 1 && l.id === String(i + 1) && l.stream === 'stdout')).toBe(true);
    expect(followed.end).toMatchObject({ attempt: 1, lastSeq: 10_000, truncated: false });
    expect((await client.waitForTerminal(job.id)).status).toBe('COMPLETED');

    // The same lines in Postgres, as JSON and as text.
    const stored = await storedWhenComplete(client, job.id);
    expect(stored.lines.map((l) => l.line)).toEqual(followed.lines.map((l) => l.line));
    expect(stored).toMatchObject({ attempt: 1, truncated: false, complete: true, bytes: followed.lines.reduce((n, l) => n + Buffer.byteLength(l.line) + 1, 0) });
    const text = await fetch(`${stack.gateway.url}/v1/jobs/${job.id}/logs`, { headers: { Accept: 'text/plain' } });
    expect(text.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(text.headers.get('blixard-log-complete')).toBe('true');
    const body = await text.text();
    expect(body.split('\n')).toHaveLength(10_001);
    expect(body.startsWith('line 1\nline 2\n')).toBe(true);

    // Following a finished attempt replays it from storage, and resumes after Last-Event-ID.
    const resumed = await follow(`${stack.gateway.url}/v1/jobs/${job.id}/logs?follow=true&attempt=1`, '9995');
    expect(resumed.lines.map((l) => l.line)).toEqual(['line 9996', 'line 9997', 'line 9998', 'line 9999', 'line 10000']);
    expect(resumed.end).toMatchObject({ lastSeq: 10_000, complete: true });
  });

  it('keeps each attempt apart: stdout and stderr of a retried job under their attempt numbers', async () => {
    const job = await client.submit({
      backend: 'process',
      payload: { command: ['sh', '-c', 'echo "attempt $BLIXARD_ATTEMPT"; echo "oops $BLIXARD_ATTEMPT" >&2; [ "$BLIXARD_ATTEMPT" = 2 ]'] },
      maxAttempts: 2,
      backoff: { type: 'fixed', baseMs: 50, jitter: 0 },
    });
    expect((await client.waitForTerminal(job.id)).status).toBe('COMPLETED');
    const second = await storedWhenComplete(client, job.id);
    expect(second.attempt).toBe(2);
    expect(second.lines.map((l) => [l.stream, l.line]).sort()).toEqual([
      ['stderr', 'oops 2'],
      ['stdout', 'attempt 2'],
    ]);
    const first = await client.logs(job.id, 1);
    expect(first.lines.map((l) => [l.stream, l.line]).sort()).toEqual([
      ['stderr', 'oops 1'],
      ['stdout', 'attempt 1'],
    ]);
    const none = await fetch(`${stack.gateway.url}/v1/jobs/${job.id}/logs?attempt=3`);
    expect(none.status).toBe(400);
    expect(await (await fetch(`${stack.gateway.url}/v1/jobs/${job.id}/logs?follow=maybe`)).json()).toMatchObject({ status: 400, errors: [{ field: 'follow' }] });
  });
});

describe('a log over LOG_MAX_BYTES_PER_ATTEMPT', () => {
  let infra: TestInfra;
  let stack: InProcessStack;

  beforeAll(async () => {
    infra = await createTestInfra('job_logs_cap');
    stack = await startStack(infra.env({ LOG_MAX_BYTES_PER_ATTEMPT: '2048' }), { executors: [new ProcessBackend()] });
  });

  afterAll(async () => {
    await stack?.stop();
    await infra?.cleanup();
  });

  it('is cut at the cap, live and stored, with a line that says so and how much was dropped', async () => {
    const job = await stack.client.submit({ backend: 'process', payload: { command: TEN_THOUSAND_LINES } });
    const followed = await follow(`${stack.gateway.url}/v1/jobs/${job.id}/logs?follow=true`);
    const output = followed.lines.filter((l) => l.stream === 'stdout');
    const system = followed.lines.filter((l) => l.stream === 'system');
    // Every kept line, in order, from the first; within the cap.
    expect(output.length).toBeGreaterThan(100);
    expect(output.every((l, i) => l.line === `line ${i + 1}`)).toBe(true);
    expect(output.reduce((n, l) => n + Buffer.byteLength(l.line) + 1, 0)).toBeLessThanOrEqual(2048);
    expect(system.map((l) => l.line)).toEqual([
      expect.stringMatching(/output truncated: this attempt reached LOG_MAX_BYTES_PER_ATTEMPT \(2048 bytes\)/),
      `[blixard] ${10_000 - output.length} lines (${Array.from({ length: 10_000 - output.length }, (_, i) => `line ${output.length + i + 1}\n`).join('').length} bytes) of output were dropped`,
    ]);
    expect(followed.end).toMatchObject({ truncated: true });

    const stored = await storedWhenComplete(stack.client, job.id);
    expect(stored.lines.map((l) => l.line)).toEqual(followed.lines.map((l) => l.line));
    expect(stored).toMatchObject({ truncated: true, complete: true });
    expect(stored.bytes).toBeLessThanOrEqual(2048);
    // The job itself is not failed by its log being cut. (Its end-of-log marker goes out beside
    // the completed report, so the log may be complete a moment before the job is.)
    expect((await stack.client.waitForTerminal(job.id)).status).toBe('COMPLETED');
  });
});
