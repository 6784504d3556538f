import { closeDatabase, createPrisma, Db, JobStore, LogStore } from '@blixard/db';
import { subjects } from '@blixard/contracts';
import { validateSubmission } from '@blixard/domain';
import type { LogLine } from '@blixard/contracts';
import { createTestInfra, TestInfra } from '@blixard/testing';

const line = (seq: number, text = `line ${seq}`): LogLine => ({ seq, stream: 'stdout', at: 1_700_000_000_000 + seq, line: text });
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => line(from + i));

describe('the log store: chunks of lines per attempt, idempotent, bounded', () => {
  let infra: TestInfra;
  let db: Db;
  let jobId: string;

  beforeAll(async () => {
    infra = await createTestInfra('log_store');
    db = createPrisma(infra.databaseUrl, 4);
    const jobs = new JobStore(db, { subjects: subjects(infra.prefix), source: '/test', claimLeaseMs: 1000, runLeaseMs: 1000 });
    jobId = (await jobs.submit(validateSubmission({ backend: 'mock', payload: {} }), 'h')).job.id;
  });

  afterAll(async () => {
    await closeDatabase(db);
    await infra?.cleanup();
  });

  it('stores batches in any order and any repetition once each, in seq order, and is complete after the end marker', async () => {
    const store = new LogStore(db, { maxBytesPerAttempt: 1_000_000 });
    // Out of order, redelivered, and overlapping the way a redelivery after a crash would.
    expect(await store.append(jobId, 1, range(11, 20))).toMatchObject({ stored: 10, skipped: 0 });
    expect(await store.append(jobId, 1, range(1, 10))).toMatchObject({ stored: 10, skipped: 0 });
    expect(await store.append(jobId, 1, range(11, 20))).toMatchObject({ stored: 0, skipped: 10 });
    expect(await store.append(jobId, 1, range(15, 25))).toMatchObject({ stored: 5, skipped: 6 });
    expect((await store.summary(jobId, 1)).complete).toBe(false);
    await store.endMany([{ jobId, attempt: 1, lastSeq: 25, droppedLines: 0, droppedBytes: 0, at: Date.now() }]);
    await store.endMany([{ jobId, attempt: 1, lastSeq: 25, droppedLines: 0, droppedBytes: 0, at: Date.now() }, { jobId, attempt: 1, lastSeq: 25, droppedLines: 0, droppedBytes: 0, at: Date.now() }]);
    const { lines, summary } = await store.read(jobId, 1);
    expect(lines.map((l) => l.seq)).toEqual(range(1, 25).map((l) => l.seq));
    expect(summary).toMatchObject({ lines: 25, lastSeq: 25, truncated: false, complete: true });
    expect((await store.read(jobId, 1, 22)).lines.map((l) => l.line)).toEqual(['line 23', 'line 24', 'line 25']);
    // Another attempt is kept apart.
    expect((await store.read(jobId, 2)).lines).toEqual([]);
  });

  it('keeps at most maxBytesPerAttempt of output and marks where it cut, even when the executor did not', async () => {
    const store = new LogStore(db, { maxBytesPerAttempt: 100 });
    // "line N\n" is 7-8 bytes: 13 lines fit in 100.
    await store.append(jobId, 3, range(1, 10));
    const result = await store.append(jobId, 3, range(11, 40));
    expect(result.dropped).toBeGreaterThan(0);
    const { lines, summary } = await store.read(jobId, 3);
    const kept = lines.filter((l) => l.stream === 'stdout');
    expect(kept.map((l) => l.line)).toEqual(range(1, kept.length).map((l) => l.line));
    expect(kept.reduce((n, l) => n + Buffer.byteLength(l.line) + 1, 0)).toBeLessThanOrEqual(100);
    expect(lines.filter((l) => l.stream === 'system').map((l) => l.line)).toEqual([expect.stringMatching(/stored output truncated: this attempt reached LOG_MAX_BYTES_PER_ATTEMPT \(100 bytes\)/)]);
    expect(summary).toMatchObject({ truncated: true, droppedLines: 40 - kept.length });
    expect(summary.bytes).toBeLessThanOrEqual(100);
  });

  it('refuses lines of a job that does not exist (foreign key)', async () => {
    const store = new LogStore(db, { maxBytesPerAttempt: 1000 });
    await expect(store.append('0192f0c4-8f3e-7aaa-8bbb-0123456789ab', 1, range(1, 2))).rejects.toMatchObject({ code: '23503' });
  });
});
