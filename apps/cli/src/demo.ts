import { BlixardClient } from '@blixard/client';
import { ApiKeyStore, createPool } from '@blixard/db';
import type { JobView } from '@blixard/contracts';
import { waitUntil } from './net';

const WORKER_TIMEOUT_MS = 60_000;
const JOB_TIMEOUT_MS = 60_000;

/** Settles like `promise`, or rejects with the abort reason first (waitForTerminal takes no signal). */
function unlessAborted<T>(promise: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * Runs `echo hello from blixard` through the whole system: gateway → Postgres → scheduler →
 * NATS → executor-process → back. It waits for an ONLINE process worker first: a job submitted
 * earlier would still complete, but only once a worker registers, and the wait would be blamed on
 * the job.
 */
export async function runDemoJob(gatewayUrl: string, apiKey: string | undefined, signal?: AbortSignal): Promise<JobView> {
  const client = new BlixardClient(gatewayUrl, { apiKey });
  console.log('waiting for an ONLINE worker for backend "process"');
  await waitUntil(
    `an ONLINE "process" worker in GET ${gatewayUrl}/v1/workers`,
    async () => {
      try {
        return (await client.workers()).some((w) => w.backend === 'process' && w.status === 'ONLINE');
      } catch {
        return false;
      }
    },
    { timeoutMs: WORKER_TIMEOUT_MS, intervalMs: 500, signal },
  );
  const job = await unlessAborted(client.submit({ backend: 'process', payload: { command: ['echo', 'hello from blixard'] } }), signal);
  console.log(`submitted demo job ${job.id}`);
  return unlessAborted(client.waitForTerminal(job.id, { timeoutMs: JOB_TIMEOUT_MS }), signal);
}

/** The demo job's outcome; a job that did not complete is printed whole, for its error fields. */
export function printDemoJob(job: JobView): void {
  console.log('');
  console.log(`demo job: ${job.id}`);
  console.log(`status:   ${job.status}`);
  console.log(`stdout:   ${(job.stdoutTail ?? '').trimEnd() || '(empty)'}`);
  if (job.status !== 'COMPLETED') {
    console.log('the demo job did not complete:');
    console.log(JSON.stringify(job, null, 2));
  }
}

/**
 * The API key the demo and the printed examples use: BLIXARD_API_KEY when set, else a new one
 * (tenant `default`, scope `admin`, valid 7 days) made in the database the gateway reads.
 */
export async function createDemoKey(databaseUrl: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if (env.BLIXARD_API_KEY) {
    console.log('using the API key in BLIXARD_API_KEY');
    return env.BLIXARD_API_KEY;
  }
  const pool = createPool(databaseUrl, 1);
  try {
    const { key, token } = await new ApiKeyStore(pool).create({ tenant: 'default', name: 'blixard-up', scopes: ['admin'], expiresAt: new Date(Date.now() + 7 * 86_400_000) });
    console.log(`created API key ${key.id} (tenant default, scope admin, expires ${key.expiresAt}); revoke it with \`blixard keys revoke ${key.id}\``);
    return token;
  } finally {
    await pool.end();
  }
}

/** Ready-to-copy requests against this gateway. */
export function printCurlExamples(gatewayUrl: string, jobId: string, apiKey: string): void {
  const auth = `-H "Authorization: Bearer $BLIXARD_API_KEY"`;
  const post = (body: object) => `curl -s -X POST ${gatewayUrl}/v1/jobs ${auth} -H 'Content-Type: application/json' -d '${JSON.stringify(body)}'`;
  console.log(
    [
      '',
      'Try it (every request needs the API key; this one is shown once):',
      `  export BLIXARD_API_KEY=${apiKey}`,
      '  # submit a process job',
      `  ${post({ backend: 'process', payload: { command: ['echo', 'hello from blixard'] } })}`,
      '  # submit a mock job',
      `  ${post({ backend: 'mock', payload: { sleepMs: 100, output: { ok: true } } })}`,
      '  # get a job',
      `  curl -s ${auth} ${gatewayUrl}/v1/jobs/${jobId}`,
      '  # list workers',
      `  curl -s ${auth} ${gatewayUrl}/v1/workers`,
      '  # job counts by status and backend',
      `  curl -s ${auth} ${gatewayUrl}/v1/stats`,
      '  # a key for another tenant, allowed to submit and read jobs only',
      `  pnpm blixard keys create --tenant acme --scopes jobs:read,jobs:write`,
      '  # the API, documented (`up` serves the page without a key; paste the key into it to load the document)',
      `  open ${gatewayUrl}/docs`,
      '',
    ].join('\n'),
  );
}
