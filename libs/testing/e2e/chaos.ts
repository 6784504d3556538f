import { Client } from 'pg';
import { BlixardClient } from '@blixard/client';
import { waitFor } from '../src';

/**
 * What every chaos test asserts at the end: every job reached the expected terminal state, none
 * was lost, and none completed twice — counted from the attempts table and from the events.
 */
export async function assertExactlyOnceCompletion(databaseUrl: string, ids: string[]): Promise<void> {
  const db = new Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    const jobs = await db.query<{ status: string; n: string }>(`SELECT status::text, count(*) AS n FROM jobs WHERE id = ANY($1::uuid[]) GROUP BY 1`, [ids]);
    expect(Object.fromEntries(jobs.rows.map((r) => [r.status, Number(r.n)]))).toEqual({ COMPLETED: ids.length });
    const completions = await db.query<{ job_id: string; n: string }>(
      `SELECT job_id, count(*) AS n FROM job_attempts WHERE outcome = 'COMPLETED' AND job_id = ANY($1::uuid[]) GROUP BY 1`,
      [ids],
    );
    expect(completions.rows).toHaveLength(ids.length);
    expect(completions.rows.filter((r) => Number(r.n) !== 1)).toEqual([]);
    const events = await db.query<{ subject: string; n: string }>(
      `SELECT event->>'subject' AS subject, count(*) AS n FROM outbox_events
       WHERE subject LIKE '%.events.job.completed' AND event->>'subject' = ANY($1::text[]) GROUP BY 1`,
      [ids],
    );
    expect(events.rows).toHaveLength(ids.length);
    expect(events.rows.filter((r) => Number(r.n) !== 1)).toEqual([]);
  } finally {
    await db.end();
  }
}

export async function submitMany(client: BlixardClient, n: number, payload: object): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += 20) {
    const batch = await Promise.all(Array.from({ length: Math.min(20, n - i) }, () => client.submit({ backend: 'mock', payload, maxAttempts: 10, backoff: { baseMs: 100, maxMs: 1000 } })));
    ids.push(...batch.map((j) => j.id));
  }
  return ids;
}

export async function waitAllTerminal(client: BlixardClient, total: number, timeoutMs = 120_000): Promise<void> {
  await waitFor(`${total} jobs to finish`, async () => {
    const s = (await client.stats()).byStatus;
    return s.COMPLETED + s.FAILED + s.CANCELLED === total;
  }, timeoutMs, 250);
}
