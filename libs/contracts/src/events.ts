import { randomUUID } from 'node:crypto';
import type { JobStatus, JobTransitionName } from '@blixard/domain';

/**
 * The CloudEvents 1.0 JSON envelope every Blixard event travels in
 * (https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/formats/json-format.md).
 */
export interface CloudEvent<T = unknown> {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  subject: string;
  time: string;
  datacontenttype: 'application/json';
  data: T;
}

export const EVENT_TYPE_PREFIX = 'dev.blixard';

export interface JobEventData {
  jobId: string;
  queue: string;
  backend: string;
  status: JobStatus;
  previousStatus: JobStatus | null;
  attempt: number;
  maxAttempts: number;
  workerId: string | null;
  runAt: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  error: { code: string | null; message: string } | null;
  exitCode: number | null;
  result?: unknown;
  /** The tenant that owns the job: only its API keys and webhooks receive the event (absent: `default`). */
  tenant?: string;
}

export function jobEventType(transition: JobTransitionName): string {
  return `${EVENT_TYPE_PREFIX}.job.${transition}`;
}

export function jobEvent(
  transition: JobTransitionName,
  data: JobEventData,
  source: string,
  time: Date = new Date(),
): CloudEvent<JobEventData> {
  return {
    specversion: '1.0',
    id: randomUUID(),
    source,
    type: jobEventType(transition),
    subject: data.jobId,
    time: time.toISOString(),
    datacontenttype: 'application/json',
    data,
  };
}

export interface WorkerEventData {
  workerId: string;
  backend: string;
  status: string;
  previousStatus: string | null;
  host: string;
}

export function workerEvent(type: 'registered' | 'lost' | 'offline' | 'draining', data: WorkerEventData, source: string): CloudEvent<WorkerEventData> {
  return {
    specversion: '1.0',
    id: randomUUID(),
    source,
    type: `${EVENT_TYPE_PREFIX}.worker.${type}`,
    subject: data.workerId,
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    data,
  };
}
