import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { BlixardApiError } from '@blixard/client';
import { createTestInfra, TestInfra } from '@blixard/testing';
import { InProcessStack, startStack } from '../../testing/test/stack';
import { HttpBackend } from '../example/http-backend';

/**
 * The SDK's README example is a real backend: it type-checks against the SDK as published, runs
 * real jobs through the whole stack, and the README shows its files exactly.
 */
describe('a custom backend built on the SDK (the README example)', () => {
  const exampleDir = path.join(__dirname, '..', 'example');
  let infra: TestInfra;
  let stack: InProcessStack;

  beforeAll(async () => {
    infra = await createTestInfra('sdk_example');
    stack = await startStack(infra.env(), { executors: [new HttpBackend()] });
  });

  afterAll(async () => {
    await stack?.stop();
    await infra?.cleanup();
  });

  it('is shown in the README exactly as it is, in under 60 lines', () => {
    const readme = readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');
    let lines = 0;
    for (const file of ['http-backend.ts', 'main.ts']) {
      const source = readFileSync(path.join(exampleDir, file), 'utf8');
      expect(readme).toContain('```ts\n' + source.trimEnd() + '\n```');
      lines += source.trimEnd().split('\n').length;
    }
    expect(lines).toBeLessThan(60);
    expect(readme).toContain(`A complete backend in ${lines} lines`);
  });

  it('type-checks against the SDK', async () => {
    const tsc = path.join(require.resolve('typescript/package.json'), '..', 'bin', 'tsc');
    await expect(promisify(execFile)(process.execPath, [tsc, '-p', path.join(exampleDir, 'tsconfig.json')])).resolves.toBeDefined();
  }, 120_000);

  it('runs jobs on the real stack: results, retryable and final failures, and payloads checked at submit', async () => {
    const { client, gateway } = stack;
    const ok = await client.submit({ backend: 'http', payload: { url: `${gateway.url}/healthz` } });
    const done = await client.waitForTerminal(ok.id);
    expect(done).toMatchObject({ status: 'COMPLETED', result: { status: 200 } });
    expect(done.workerId).toMatch(/^http-/);

    const missing = await client.submit({ backend: 'http', payload: { url: `${gateway.url}/v1/jobs/not-a-job` }, maxAttempts: 2 });
    expect(await client.waitForTerminal(missing.id)).toMatchObject({ status: 'FAILED', errorCode: 'http_400', attempt: 1 });

    const err = await client.submit({ backend: 'http', payload: { url: 'ftp://example.com/' } }).catch((e: unknown) => e);
    expect((err as BlixardApiError).problem).toMatchObject({ status: 400, errors: [{ field: 'payload', message: 'url: must be an http(s) URL' }] });
  });
});
