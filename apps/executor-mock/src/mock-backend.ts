import { z } from 'zod';
import type { JsonValue } from '@blixard/domain';
import { abortableSleep, ExecutionBackend, ExecutionFailure, ExecutionJob, ExecutionContext, ExecutionResult, PayloadError } from '@blixard/executor-sdk';

/**
 * The `mock` backend: sleeps, fails or returns what it is told. For benchmarks, failure tests and
 * trying Blixard out: `{ "sleepMs": 100, "fail": false, "output": {"any": "json"} }`.
 */
export const mockPayloadSchema = z
  .object({
    sleepMs: z.number().int().min(0).max(86_400_000).default(0),
    fail: z.boolean().default(false),
    /** With `fail`: whether a retry may help (default true). */
    retryable: z.boolean().default(true),
    /** With `fail`: fail only attempts up to this number, then succeed (flaky jobs). */
    failAttempts: z.number().int().min(1).optional(),
    message: z.string().max(10_000).optional(),
    exitCode: z.number().int().optional(),
    output: z.unknown().optional(),
    /** Return the parents' results (a dependent job reading what its parents made). */
    echoParents: z.boolean().default(false),
    /** Progress reports, spread evenly over `sleepMs` (the first after one share of it). */
    progress: z.array(z.object({ fraction: z.number().min(0).max(1), note: z.string().max(1000).optional() }).strict()).max(1000).optional(),
    /** Return a string of this many bytes as the output (to try the output size cap). */
    outputBytes: z.number().int().min(0).max(16 * 1024 * 1024).optional(),
    /** Lines written to stdout at the start (`ctx.log`). */
    log: z.array(z.string().max(16_384)).max(100_000).optional(),
  })
  .strict();
export type MockPayload = z.infer<typeof mockPayloadSchema>;

export class MockBackend implements ExecutionBackend<MockPayload> {
  readonly name: string = 'mock';

  capabilities() {
    return { features: ['sleep', 'fail', 'output'] };
  }

  validate(payload: unknown): MockPayload {
    const parsed = mockPayloadSchema.safeParse(payload ?? {});
    if (!parsed.success) throw new PayloadError(`mock payload: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
    return parsed.data;
  }

  async execute(job: ExecutionJob<MockPayload>, ctx: ExecutionContext): Promise<ExecutionResult> {
    const p = job.payload;
    for (const line of p.log ?? []) ctx.log?.('stdout', line);
    const reports = p.progress ?? [];
    const share = reports.length > 0 ? Math.floor(p.sleepMs / (reports.length + 1)) : p.sleepMs;
    for (const r of reports) {
      await abortableSleep(share, ctx.signal);
      ctx.progress?.(r.fraction, r.note);
    }
    const rest = p.sleepMs - share * reports.length;
    if (rest > 0) await abortableSleep(rest, ctx.signal);
    const failsNow = p.fail && (p.failAttempts === undefined || job.attempt <= p.failAttempts);
    if (failsNow) {
      throw new ExecutionFailure('mock_failure', p.message ?? `mock failure requested (attempt ${job.attempt})`, {
        retryable: p.retryable,
        exitCode: p.exitCode ?? null,
      });
    }
    if (p.outputBytes !== undefined) return { output: 'x'.repeat(p.outputBytes), exitCode: 0 };
    if (p.echoParents) return { output: job.parents.map((x) => ({ jobId: x.jobId, result: x.result })) as JsonValue, exitCode: 0 };
    return { output: (p.output ?? null) as JsonValue, exitCode: p.exitCode ?? 0 };
  }
}
