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
    if (p.sleepMs > 0) await abortableSleep(p.sleepMs, ctx.signal);
    const failsNow = p.fail && (p.failAttempts === undefined || job.attempt <= p.failAttempts);
    if (failsNow) {
      throw new ExecutionFailure('mock_failure', p.message ?? `mock failure requested (attempt ${job.attempt})`, {
        retryable: p.retryable,
        exitCode: p.exitCode ?? null,
      });
    }
    if (p.echoParents) return { output: job.parents.map((x) => ({ jobId: x.jobId, result: x.result })) as JsonValue, exitCode: 0 };
    return { output: (p.output ?? null) as JsonValue, exitCode: p.exitCode ?? 0 };
  }
}
