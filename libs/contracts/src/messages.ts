import { z } from 'zod';

/**
 * Message schemas. Everything that crosses NATS is parsed with one of these on receipt; a message
 * that does not parse is rejected, counted and logged — never a crash, never a silent drop.
 */
const jsonValue: z.ZodType<unknown> = z.unknown().refine((v) => v !== undefined, 'required');

export const resourcesSchema = z.record(z.string(), z.number().nonnegative());

/** scheduler → executor, on `dispatch.<backend>`. */
export const dispatchMessageSchema = z.object({
  jobId: z.string().uuid(),
  attempt: z.number().int().positive(),
  backend: z.string().min(1),
  queue: z.string().min(1),
  payload: jsonValue,
  timeoutMs: z.number().int().positive().nullable(),
  labels: z.record(z.string(), z.string()),
  maxAttempts: z.number().int().positive(),
  dispatchedAt: z.string(),
  /** The parents of a dependent job, with their results. */
  parents: z.array(z.object({ jobId: z.string(), status: z.string(), result: z.unknown() })).default([]),
  /** What the job reserved on the worker (`resources` of a placed job): backends may enforce it as limits. */
  resources: z.record(z.string(), z.number()).default({}),
});
export type DispatchMessage = z.infer<typeof dispatchMessageSchema>;

const reportBase = {
  jobId: z.string().uuid(),
  attempt: z.number().int().positive(),
  workerId: z.string().min(1),
  at: z.string(),
};

export const startedReportSchema = z.object({ ...reportBase, type: z.literal('started') });

export const completedReportSchema = z.object({
  ...reportBase,
  type: z.literal('completed'),
  output: z.unknown().optional(),
  exitCode: z.number().int().nullable().optional(),
  durationMs: z.number().int().nonnegative(),
  stdoutTail: z.string().optional(),
  stderrTail: z.string().optional(),
});

/** Why an attempt ended without success. */
export const failureReasonSchema = z.enum([
  'error', // the work itself failed (non-zero exit, thrown error)
  'timed_out', // the attempt outlived its timeoutMs
  'cancelled', // a cancel request stopped it
  'invalid_payload', // the backend refused the payload: never retryable
  'worker_shutdown', // the executor drained past its deadline and handed it back
]);
export type FailureReason = z.infer<typeof failureReasonSchema>;

export const failedReportSchema = z.object({
  ...reportBase,
  type: z.literal('failed'),
  reason: failureReasonSchema,
  errorCode: z.string().min(1),
  message: z.string(),
  retryable: z.boolean(),
  exitCode: z.number().int().nullable().optional(),
  durationMs: z.number().int().nonnegative(),
  stdoutTail: z.string().optional(),
  stderrTail: z.string().optional(),
});

export const reportMessageSchema = z.discriminatedUnion('type', [
  startedReportSchema,
  completedReportSchema,
  failedReportSchema,
]);
export type ReportMessage = z.infer<typeof reportMessageSchema>;
export type StartedReport = z.infer<typeof startedReportSchema>;
export type CompletedReport = z.infer<typeof completedReportSchema>;
export type FailedReport = z.infer<typeof failedReportSchema>;

/** executor → registry, every HEARTBEAT_INTERVAL_MS; the first one registers the worker. */
export const heartbeatMessageSchema = z.object({
  workerId: z.string().min(1).max(200).regex(/^[A-Za-z0-9_-]+$/),
  backend: z.string().min(1),
  host: z.string(),
  version: z.string(),
  labels: z.record(z.string(), z.string()),
  capacity: resourcesSchema,
  concurrency: z.number().int().positive(),
  status: z.enum(['ONLINE', 'DRAINING', 'OFFLINE']),
  running: z.array(z.object({ jobId: z.string().uuid(), attempt: z.number().int().positive() })),
  at: z.string(),
});
export type HeartbeatMessage = z.infer<typeof heartbeatMessageSchema>;

/** anyone → one executor, on `control.<workerId>`. */
export const controlMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('cancel'), jobId: z.string().uuid(), attempt: z.number().int().positive() }),
  z.object({ type: z.literal('drain') }),
]);
export type ControlMessage = z.infer<typeof controlMessageSchema>;

/** Result of `safeParse`, flattened to one readable line for logs and counters. */
export function describeZodError(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}
