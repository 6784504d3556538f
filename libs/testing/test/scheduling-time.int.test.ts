import { Client } from 'pg';
import { BlixardClient } from '@blixard/client';
import { createTestInfra, TestInfra, waitFor } from '../src';
import { InProcessStack, MockBackend, startStack } from './stack';

/** Run-at, cron (with two schedulers racing) and dependencies. */
describe('time and order: run-at, cron schedules, dependencies', () => {
  let infra: TestInfra;
  let stack: InProcessStack;
  let client: BlixardClient;
  let db: Client;

  beforeAll(async () => {
    infra = await createTestInfra('sched_time');
    stack = await startStack(infra.env({ EXECUTOR_CONCURRENCY: '32' }), { schedulers: 2, executors: [new MockBackend()] });
    client = stack.client;
    db = new Client({ connectionString: infra.databaseUrl });
    await db.connect();
    await waitFor('the executor online', async () => (await client.workers()).some((w) => w.status === 'ONLINE'));
  });

  afterAll(async () => {
    await stack?.stop();
    await db?.end();
    await infra?.cleanup();
  });

  it('holds a delayed job in SCHEDULED and dispatches it at its run-at, never early', async () => {
    const t0 = Date.now();
    const jobs = await Promise.all(
      [300, 500, 700].map((d, i) => (i === 0 ? client.submit({ backend: 'mock', payload: {}, delayMs: d }) : client.submit({ backend: 'mock', payload: {}, runAt: new Date(t0 + d).toISOString() }))),
    );
    expect(jobs.map((j) => j.status)).toEqual(['SCHEDULED', 'SCHEDULED', 'SCHEDULED']);
    for (const j of jobs) {
      const done = await client.waitForTerminal(j.id);
      expect(done.status).toBe('COMPLETED');
      const lateness = Date.parse(done.attempts![0]!.claimedAt) - Date.parse(done.runAt);
      expect(lateness).toBeGreaterThanOrEqual(0);
      expect(lateness).toBeLessThan(1_000);
    }
  });

  it('fires a cron schedule once per fire time with two schedulers, and pauses, resumes and deletes it', async () => {
    const s = await client.createSchedule({ name: 'every second', cron: '* * * * * *', template: { backend: 'mock', queue: 'cron', payload: { sleepMs: 10 } } });
    expect(s).toMatchObject({ cron: '* * * * * *', timezone: 'UTC', overlap: 'allow', catchUp: 'none', paused: false });
    expect(Date.parse(s.nextFireAt!)).toBeGreaterThan(Date.now() - 1000);
    await waitFor('four fires', async () => (await db.query(`SELECT 1 FROM jobs WHERE schedule_id = $1`, [s.id])).rowCount! >= 4, 15_000, 100);
    const paused = await client.pauseSchedule(s.id);
    expect(paused).toMatchObject({ paused: true, nextFireAt: null });
    const made = await db.query<{ idempotency_key: string; created_at: Date }>(`SELECT idempotency_key, created_at FROM jobs WHERE schedule_id = $1 ORDER BY idempotency_key`, [s.id]);
    const fireTimes = made.rows.map((r) => Date.parse(r.idempotency_key.split(':').slice(2).join(':')));
    expect(new Set(fireTimes).size).toBe(fireTimes.length); // one job per fire time
    fireTimes.slice(1).forEach((t, i) => expect(t - fireTimes[i]!).toBe(1000)); // none missed, none doubled
    await new Promise((r) => setTimeout(r, 1_500));
    expect((await db.query(`SELECT 1 FROM jobs WHERE schedule_id = $1`, [s.id])).rowCount).toBe(made.rowCount);
    expect((await client.schedules()).find((x) => x.id === s.id)).toMatchObject({ paused: true });
    const resumed = await client.resumeSchedule(s.id);
    expect(resumed.paused).toBe(false);
    expect(resumed.nextFireAt).not.toBeNull();
    await waitFor('a fire after resume', async () => (await db.query(`SELECT 1 FROM jobs WHERE schedule_id = $1`, [s.id])).rowCount! > made.rowCount!, 5_000, 100);
    await client.deleteSchedule(s.id);
    await expect(client.schedule(s.id)).rejects.toMatchObject({ problem: { status: 404 } });
  });

  it('skips a fire while the previous job runs (overlap skip), or cancels it (cancel_previous)', async () => {
    const skip = await client.createSchedule({ cron: '* * * * * *', overlap: 'skip', template: { backend: 'mock', queue: 'cron-skip', payload: { sleepMs: 2_500 } } });
    const cancel = await client.createSchedule({ cron: '* * * * * *', overlap: 'cancel_previous', template: { backend: 'mock', queue: 'cron-cancel', payload: { sleepMs: 10_000 } } });
    await new Promise((r) => setTimeout(r, 3_300));
    await client.pauseSchedule(skip.id);
    await client.pauseSchedule(cancel.id);
    const skipped = await db.query<{ n: string }>(`SELECT count(*) n FROM jobs WHERE schedule_id = $1`, [skip.id]);
    expect(Number(skipped.rows[0]!.n)).toBeLessThanOrEqual(2); // 3+ fire times, the first still running for 2.5 s
    const cancelled = await db.query<{ status: string; error_code: string | null }>(`SELECT status::text, error_code FROM jobs WHERE schedule_id = $1 ORDER BY created_at`, [cancel.id]);
    expect(cancelled.rows.length).toBeGreaterThanOrEqual(3);
    expect(cancelled.rows.slice(0, -1).every((r) => r.status === 'CANCELLED')).toBe(true);
  });

  it('catches up after downtime: all (bounded), latest, or none', async () => {
    const make = (catchUp: 'all' | 'latest' | 'none') =>
      client.createSchedule({ cron: '* * * * * *', catchUp, catchUpLimit: 5, template: { backend: 'mock', queue: `catchup-${catchUp}`, payload: {} } });
    const schedules = { all: await make('all'), latest: await make('latest'), none: await make('none') };
    for (const s of Object.values(schedules)) await client.pauseSchedule(s.id);
    // As if no scheduler had run for 30 seconds.
    await db.query(`UPDATE schedules SET paused = false, last_fire_at = now() - interval '30 seconds', next_fire_at = now() - interval '29 seconds' WHERE id = ANY($1::uuid[])`, [Object.values(schedules).map((s) => s.id)]);
    await db.query(`SELECT pg_notify('x', '')`);
    await waitFor('the catch-up round', async () => {
      const r = await db.query(`SELECT 1 FROM schedules WHERE id = ANY($1::uuid[]) AND next_fire_at > now()`, [Object.values(schedules).map((s) => s.id)]);
      return r.rowCount === 3;
    }, 10_000, 50);
    for (const s of Object.values(schedules)) await client.pauseSchedule(s.id);
    const count = async (id: string) => Number((await db.query<{ n: string }>(`SELECT count(*) n FROM jobs WHERE schedule_id = $1`, [id])).rows[0]!.n);
    expect(await count(schedules.all.id)).toBeGreaterThanOrEqual(5);
    expect(await count(schedules.all.id)).toBeLessThanOrEqual(7); // the bound, plus a fire or two of the present
    expect(await count(schedules.latest.id)).toBeLessThanOrEqual(3);
    expect(await count(schedules.none.id)).toBeLessThanOrEqual(3); // only what was due, none of the missed
    expect(await count(schedules.latest.id)).toBeGreaterThanOrEqual(1);
  });

  it('runs a dependent after all its parents complete and hands it their results', async () => {
    const a = await client.submit({ backend: 'mock', payload: { sleepMs: 200, output: { from: 'a' } } });
    const b = await client.submit({ backend: 'mock', payload: { sleepMs: 400, output: { from: 'b' } } });
    const c = await client.submit({ backend: 'mock', payload: { echoParents: true }, dependsOn: [a.id, b.id] });
    expect(c.status).toBe('BLOCKED');
    const done = await client.waitForTerminal(c.id);
    expect(done.status).toBe('COMPLETED');
    expect(Date.parse(done.startedAt!)).toBeGreaterThanOrEqual(Date.parse((await client.get(b.id)).finishedAt!));
    expect(done.result).toEqual(expect.arrayContaining([{ jobId: a.id, result: { from: 'a' } }, { jobId: b.id, result: { from: 'b' } }]));
    expect((await client.get(c.id)).dependsOn?.sort()).toEqual([a.id, b.id].sort());
  });

  it('cancels dependents of a failed parent down the graph, unless they run anyway', async () => {
    const parent = await client.submit({ backend: 'mock', payload: { fail: true, retryable: false } });
    const child = await client.submit({ backend: 'mock', payload: {}, dependsOn: [parent.id] });
    const grandchild = await client.submit({ backend: 'mock', payload: {}, dependsOn: [child.id] });
    const stubborn = await client.submit({ backend: 'mock', payload: { output: 'ran anyway' }, dependsOn: [parent.id], onParentFailure: 'run' });
    expect((await client.waitForTerminal(child.id))).toMatchObject({ status: 'CANCELLED', errorCode: 'parent_failed' });
    expect((await client.waitForTerminal(grandchild.id))).toMatchObject({ status: 'CANCELLED', errorCode: 'parent_failed' });
    expect((await client.waitForTerminal(stubborn.id))).toMatchObject({ status: 'COMPLETED', result: 'ran anyway' });
  });

  it('refuses a dependency on a job that does not exist with a 400 naming it', async () => {
    const missing = '0190d5a8-0000-7000-8000-00000000dead';
    await expect(client.submit({ backend: 'mock', payload: {}, dependsOn: [missing] })).rejects.toMatchObject({
      problem: { status: 400, errors: [{ field: 'dependsOn[0]', message: `job ${missing} does not exist` }] },
    });
  });
});
