import { BlixardClient } from '@blixard/client';
import { createTestInfra, TestInfra } from '../src';
import { RunningGateway, startGateway } from './stack';

/** The gateway alone (no scheduler): what it accepts, what it refuses, and how it says so. */
describe('the gateway HTTP API', () => {
  let infra: TestInfra;
  let gateway: RunningGateway;
  let client: BlixardClient;

  beforeAll(async () => {
    infra = await createTestInfra('gateway');
    gateway = await startGateway(infra.env({ MAX_BODY_BYTES: '4096' }));
    client = new BlixardClient(gateway.url);
  });

  afterAll(async () => {
    await gateway?.stop();
    await infra?.cleanup();
  });

  const post = (path: string, body: string, headers: Record<string, string> = { 'Content-Type': 'application/json' }) =>
    fetch(`${gateway.url}${path}`, { method: 'POST', headers, body });

  async function expectProblem(res: Response, status: number, code: string) {
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const body = (await res.json()) as { type: string; title: string; status: number; detail: string; code: string; errors?: { field: string }[] };
    expect(body).toMatchObject({ status, code, type: `https://blixard.dev/problems/${code}` });
    expect(typeof body.title).toBe('string');
    expect(typeof body.detail).toBe('string');
    expect(JSON.stringify(body)).not.toMatch(/\bat .*\.(js|ts):\d+/); // no stack trace
    return body;
  }

  it.each([
    ['an object', { a: 1 }],
    ['an array', [1, 'two']],
    ['a string', 'hello'],
    ['a number', 0],
    ['a boolean', false],
  ])('accepts %s as payload and answers 201 with the job', async (_kind, payload) => {
    const res = await post('/v1/jobs', JSON.stringify({ backend: 'mock', payload, allowUnknownBackend: true }));
    expect(res.status).toBe(201);
    const job = (await res.json()) as { id: string; payload: unknown; status: string; queue: string; maxAttempts: number };
    expect(job).toMatchObject({ payload, status: 'PENDING', queue: 'default', maxAttempts: 3 });
    expect((await client.get(job.id)).payload).toEqual(payload);
  });

  it('refuses a null or missing payload with a 400 naming the field', async () => {
    for (const body of [{ backend: 'mock', payload: null }, { backend: 'mock' }]) {
      const problem = await expectProblem(await post('/v1/jobs', JSON.stringify(body)), 400, 'validation_failed');
      expect(problem.errors).toEqual([expect.objectContaining({ field: 'payload' })]);
    }
  });

  it('lists every invalid field at once', async () => {
    const res = await post('/v1/jobs', JSON.stringify({ backend: 'Not A Backend!', payload: 1, priority: 1.5, maxAttempts: 0, timeoutMs: -1, labels: { ok: 3 }, colour: 'red' }));
    const problem = await expectProblem(res, 400, 'validation_failed');
    expect(problem.errors!.map((e) => e.field).sort()).toEqual(['backend', 'colour', 'labels.ok', 'maxAttempts', 'priority', 'timeoutMs']);
  });

  it('answers malformed JSON with 400, a body that is not an object with 400, an oversized body with 413', async () => {
    await expectProblem(await post('/v1/jobs', '{"backend": "mock", "payload": '), 400, 'malformed_json');
    await expectProblem(await post('/v1/jobs', '[1,2,3]'), 400, 'validation_failed');
    await expectProblem(await post('/v1/jobs', JSON.stringify({ backend: 'mock', payload: 'x'.repeat(5000) })), 413, 'payload_too_large');
  });

  it('answers an unknown job with 404, a malformed id with 400 and an unknown route with 404, all problem+json', async () => {
    await expectProblem(await fetch(`${gateway.url}/v1/jobs/0190d5a8-0000-7000-8000-000000000000`), 404, 'not_found');
    await expectProblem(await fetch(`${gateway.url}/v1/jobs/not-a-uuid`), 400, 'validation_failed');
    await expectProblem(await fetch(`${gateway.url}/v1/nothing-here`), 404, 'not_found');
  });

  it('cancels a waiting job, and answers 409 to cancelling it again', async () => {
    const job = await client.submit({ backend: 'mock', payload: {}, allowUnknownBackend: true });
    const cancelled = await client.cancel(job.id);
    expect(cancelled).toMatchObject({ status: 'CANCELLED', errorCode: 'cancelled' });
    await expectProblem(await post(`/v1/jobs/${job.id}/cancel`, ''), 409, 'invalid_transition');
  });

  it('returns the original job for a repeated idempotency key and 409 for a different body', async () => {
    const first = await post('/v1/jobs', JSON.stringify({ backend: 'mock', payload: { n: 1 }, allowUnknownBackend: true }), { 'Content-Type': 'application/json', 'Idempotency-Key': 'order-17' });
    expect(first.status).toBe(201);
    const again = await post('/v1/jobs', JSON.stringify({ backend: 'mock', payload: { n: 1 }, allowUnknownBackend: true }), { 'Content-Type': 'application/json', 'Idempotency-Key': 'order-17' });
    expect(again.status).toBe(200);
    expect(((await again.json()) as { id: string }).id).toBe(((await first.json()) as { id: string }).id);
    const conflict = await post('/v1/jobs', JSON.stringify({ backend: 'mock', payload: { n: 2 }, allowUnknownBackend: true }), { 'Content-Type': 'application/json', 'Idempotency-Key': 'order-17' });
    await expectProblem(conflict, 409, 'idempotency_key_reused');
  });

  it('pages through jobs newest first with a cursor and filters by status, backend, queue and label', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await client.submit({ backend: 'pager', queue: 'paging', payload: i, labels: { batch: i % 2 ? 'odd' : 'even' }, allowUnknownBackend: true })).id);
    const page1 = await client.list({ queue: 'paging', limit: 2 });
    expect(page1.items.map((j) => j.id)).toEqual([ids[4], ids[3]]);
    const page2 = await client.list({ queue: 'paging', limit: 2, cursor: page1.nextCursor! });
    expect(page2.items.map((j) => j.id)).toEqual([ids[2], ids[1]]);
    const page3 = await client.list({ queue: 'paging', limit: 2, cursor: page2.nextCursor! });
    expect(page3.items.map((j) => j.id)).toEqual([ids[0]]);
    expect(page3.nextCursor).toBeNull();
    expect((await client.list({ backend: 'pager', label: { batch: 'odd' } })).items.map((j) => j.id)).toEqual([ids[3], ids[1]]);
    expect((await client.list({ backend: 'pager', status: ['CANCELLED'] })).items).toEqual([]);
    await expectProblem(await fetch(`${gateway.url}/v1/jobs?status=NOPE`), 400, 'validation_failed');
    await expectProblem(await fetch(`${gateway.url}/v1/jobs?limit=100000`), 400, 'validation_failed');
  });

  it('refuses a backend no worker ever registered, listing the known ones, unless allowUnknownBackend', async () => {
    const problem = await expectProblem(await post('/v1/jobs', JSON.stringify({ backend: 'nobody-runs-this', payload: 1 })), 400, 'validation_failed');
    expect(problem.errors).toEqual([expect.objectContaining({ field: 'backend', message: expect.stringContaining('known: none yet') })]);
    expect((await post('/v1/jobs', JSON.stringify({ backend: 'nobody-runs-this', payload: 1, allowUnknownBackend: true }))).status).toBe(201);
    await expectProblem(await post('/v1/jobs', JSON.stringify({ backend: 'mock', payload: 1, allowUnknownBackend: 'yes' })), 400, 'validation_failed');
  });

  it('filters workers by repeated or comma-separated status, and refuses a bad one with 400', async () => {
    expect((await fetch(`${gateway.url}/v1/workers?status=ONLINE&status=LOST`)).status).toBe(200);
    expect((await fetch(`${gateway.url}/v1/workers?status=ONLINE,DRAINING`)).status).toBe(200);
    const problem = await expectProblem(await fetch(`${gateway.url}/v1/workers?status=ONLINE&status=ASLEEP`), 400, 'validation_failed');
    expect(problem.errors).toEqual([expect.objectContaining({ field: 'status' })]);
    await expectProblem(await fetch(`${gateway.url}/v1/workers?backend=a&backend=b`), 400, 'validation_failed');
  });

  it('serves /healthz, /readyz and Prometheus /metrics', async () => {
    expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${gateway.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { postgres: 'ok', nats: 'ok' } });
    const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
    expect(metrics).toMatch(/^# HELP /m);
    expect(metrics).toContain('process_cpu_seconds_total');
  });
});
