import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { JOB_TRANSITIONS, type JobTransitionName } from '@blixard/domain';
import { CloudEvent, EVENT_TYPE_PREFIX, JobEventData, jobEventType } from './events';

/**
 * Live jobs: what executors stream while an attempt runs (progress, output lines), the events
 * that are not transitions (progress, a webhook disabled), and the HTTP views of logs, webhooks
 * and the audit log.
 */

// ---------------------------------------------------------------- progress

/** executor → schedulers on `progress.<jobId>` (core NATS, lossy): the latest `seq` of an attempt wins. */
export const progressMessageSchema = z.object({
  jobId: z.string().uuid(),
  attempt: z.number().int().positive(),
  workerId: z.string().min(1),
  /** Per attempt, from 1, one more per report: a report older than the stored one is dropped. */
  seq: z.number().int().positive(),
  fraction: z.number().min(0).max(1),
  note: z.string().max(1000).nullable(),
  at: z.string().datetime({ offset: true }),
});
export type ProgressMessage = z.infer<typeof progressMessageSchema>;

export interface JobProgress {
  fraction: number;
  note: string | null;
  /** The attempt that reported it. */
  attempt: number;
  seq: number;
  at: string;
}

export interface JobProgressEventData extends JobEventData {
  progress: JobProgress;
}

export const JOB_PROGRESS_EVENT_TYPE = `${EVENT_TYPE_PREFIX}.job.progress`;

export function jobProgressEvent(data: JobProgressEventData, source: string, time: Date = new Date()): CloudEvent<JobProgressEventData> {
  return { specversion: '1.0', id: randomUUID(), source, type: JOB_PROGRESS_EVENT_TYPE, subject: data.jobId, time: time.toISOString(), datacontenttype: 'application/json', data };
}

// ---------------------------------------------------------------- logs

export const LOG_STREAMS = ['stdout', 'stderr', 'system'] as const;
/** `system` lines are Blixard's own (truncation markers), never the job's output. */
export type LogStream = (typeof LOG_STREAMS)[number];

/** A longer line is cut here (and says so): one line must fit a NATS message with room to spare. */
export const MAX_LOG_LINE_BYTES = 16_384;

const logLineSchema = z.object({
  /** Per attempt, from 1, no gaps: followers and the archiver order and de-duplicate by it. */
  seq: z.number().int().positive(),
  stream: z.enum(LOG_STREAMS),
  /** When the executor read the line (epoch ms). */
  at: z.number(),
  line: z.string(),
});
export type LogLine = z.infer<typeof logLineSchema>;

const logBase = { jobId: z.string().uuid(), attempt: z.number().int().positive(), workerId: z.string().min(1) };

/** executor → stream `<PREFIX>_LOGS` on `logs.<jobId>`: a batch of lines, then one `end` per attempt. */
export const logMessageSchema = z.discriminatedUnion('type', [
  z.object({ ...logBase, type: z.literal('lines'), lines: z.array(logLineSchema).min(1) }),
  z.object({
    ...logBase,
    type: z.literal('end'),
    /** The seq of the attempt's last line (0: it printed nothing). */
    lastSeq: z.number().int().nonnegative(),
    /** Lines past LOG_MAX_BYTES_PER_ATTEMPT, or lost when NATS refused them: counted, never silent. */
    droppedLines: z.number().int().nonnegative(),
    droppedBytes: z.number().int().nonnegative(),
    at: z.number(),
  }),
]);
export type LogMessage = z.infer<typeof logMessageSchema>;
export type LogLinesMessage = Extract<LogMessage, { type: 'lines' }>;
export type LogEndMessage = Extract<LogMessage, { type: 'end' }>;

export interface LogLineView {
  seq: number;
  stream: LogStream;
  at: string;
  line: string;
}

export interface JobLogsView {
  jobId: string;
  attempt: number;
  lines: LogLineView[];
  /** Bytes stored for the attempt (LOG_MAX_BYTES_PER_ATTEMPT bounds it). */
  bytes: number;
  /** Output was dropped past the cap (a `system` line says where). */
  truncated: boolean;
  /** The attempt has ended and its last line is stored: nothing more will come. */
  complete: boolean;
}

export function logLineView(l: LogLine): LogLineView {
  return { seq: l.seq, stream: l.stream, at: new Date(l.at).toISOString(), line: l.line };
}

// ---------------------------------------------------------------- webhooks

export interface WebhookEventData {
  webhookId: string;
  url: string;
  reason: string;
  failingSince: string | null;
  disabledAt: string;
  /** The tenant that owns the webhook. */
  tenant?: string;
}

export function webhookEvent(type: 'disabled', data: WebhookEventData, source: string, time: Date = new Date()): CloudEvent<WebhookEventData> {
  return {
    specversion: '1.0',
    id: randomUUID(),
    source,
    type: `${EVENT_TYPE_PREFIX}.webhook.${type}`,
    subject: data.webhookId,
    time: time.toISOString(),
    datacontenttype: 'application/json',
    data,
  };
}

export const WORKER_EVENT_NAMES = ['registered', 'lost', 'offline', 'draining'] as const;

/** Every event type Blixard publishes. */
export const EVENT_TYPES: readonly string[] = [
  ...(Object.keys(JOB_TRANSITIONS) as JobTransitionName[]).map(jobEventType),
  JOB_PROGRESS_EVENT_TYPE,
  ...WORKER_EVENT_NAMES.map((n) => `${EVENT_TYPE_PREFIX}.worker.${n}`),
  `${EVENT_TYPE_PREFIX}.webhook.disabled`,
];

/**
 * Whether an event type matches a subscription pattern: the exact type, `*` (everything), or a
 * prefix ending in `.*` (`dev.blixard.job.*`). The `dev.blixard.` prefix may be left out.
 */
export function eventTypeMatches(pattern: string, type: string): boolean {
  const full = pattern === '*' || pattern.startsWith(`${EVENT_TYPE_PREFIX}.`) ? pattern : `${EVENT_TYPE_PREFIX}.${pattern}`;
  if (full === '*') return true;
  if (full.endsWith('.*')) return type.startsWith(full.slice(0, -1));
  return type === full;
}

export interface WebhookView {
  id: string;
  /** The tenant that owns the webhook: it receives that tenant's events only. */
  tenant: string;
  url: string;
  /** Event type patterns it receives (`dev.blixard.job.completed`, `dev.blixard.job.*`, `*`). */
  events: string[];
  /** The secret is never returned: `secretSet` says there is one. */
  secretSet: true;
  enabled: boolean;
  disabledAt: string | null;
  disabledReason: string | null;
  /** Since when every delivery failed (null: the last one succeeded). */
  failingSince: string | null;
  createdAt: string;
  updatedAt: string;
}

export type WebhookDeliveryStatus = 'pending' | 'succeeded' | 'failed';

export interface WebhookDeliveryAttemptView {
  attempt: number;
  at: string;
  /** The receiver's HTTP status; null when no answer came (timeout, refused, address not allowed). */
  statusCode: number | null;
  error: string | null;
  durationMs: number;
}

export interface WebhookDeliveryView {
  id: string;
  webhookId: string;
  eventId: string;
  eventType: string;
  /** The event's sequence in the events stream (the SSE `id`). */
  eventSeq: number;
  status: WebhookDeliveryStatus;
  attempts: WebhookDeliveryAttemptView[];
  nextAttemptAt: string | null;
  createdAt: string;
  finishedAt: string | null;
}

// ---------------------------------------------------------------- audit

export interface AuditEntryView {
  id: string;
  at: string;
  /** Who: the API key's id (`anonymous` when auth is disabled). */
  actor: string;
  /** The API key's name. */
  actorName: string | null;
  /** The tenant the action was taken in. */
  tenant: string;
  remoteAddress: string | null;
  /** What: `job.submit`, `job.cancel`, `job.retry`, `jobs.retry`, `worker.drain`, `webhook.create`, `webhook.delete`, `queue.update`, `fairness.update`. */
  action: string;
  targetType: string;
  targetId: string | null;
  details: Record<string, unknown>;
}

export interface AuditPage {
  items: AuditEntryView[];
  nextCursor: string | null;
}
