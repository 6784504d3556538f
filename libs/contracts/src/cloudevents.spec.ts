import { CloudEvent as SdkCloudEvent, HTTP, ValidationError } from 'cloudevents';
import { JOB_TRANSITIONS, type JobTransitionName } from '@blixard/domain';
import { CloudEvent, jobEvent, JobEventData, workerEvent } from './events';
import { EVENT_TYPES, jobProgressEvent, webhookEvent, WORKER_EVENT_NAMES } from './live';

/**
 * Every event Blixard publishes, built by the same functions the outbox writers use, must be a
 * valid CloudEvents 1.0 event to the official SDK: in structured mode (how webhooks deliver it,
 * `application/cloudevents+json`) and as an object checked strictly.
 */
const jobData: JobEventData = {
  jobId: '0192f0c4-8f3e-7aaa-8bbb-0123456789ab',
  queue: 'default',
  backend: 'process',
  status: 'COMPLETED',
  previousStatus: 'RUNNING',
  attempt: 1,
  maxAttempts: 3,
  workerId: 'process-host-1',
  runAt: '2026-11-28T10:00:00.000Z',
  createdAt: '2026-11-28T10:00:00.000Z',
  startedAt: '2026-11-28T10:00:01.000Z',
  finishedAt: '2026-11-28T10:00:02.000Z',
  error: null,
  exitCode: 0,
  result: { answer: 42 },
};

// A Record over the union: adding a transition without listing it here fails to compile.
const everyTransition: Record<JobTransitionName, true> = {
  created: true, released: true, due: true, claimed: true, started: true, completed: true,
  retrying: true, failed: true, cancelled: true, redriven: true, unplaced: true,
};

function allEvents(): CloudEvent<unknown>[] {
  return [
    ...(Object.keys(everyTransition) as JobTransitionName[]).map((t) => jobEvent(t, jobData, '/blixard/scheduler')),
    jobProgressEvent({ ...jobData, status: 'RUNNING', progress: { fraction: 0.5, note: 'half way', attempt: 1, seq: 3, at: '2026-11-28T10:00:01.500Z' } }, '/blixard/scheduler'),
    ...WORKER_EVENT_NAMES.map((n) => workerEvent(n, { workerId: 'w-1', backend: 'mock', status: 'ONLINE', previousStatus: null, host: 'h' }, '/blixard/worker-registry')),
    webhookEvent('disabled', { webhookId: '0192f0c4-8f3e-7aaa-8bbb-0123456789ac', url: 'https://example.com/hook', reason: 'failing', failingSince: '2026-11-28T10:00:00.000Z', disabledAt: '2026-11-28T11:00:00.000Z' }, '/blixard/notifier'),
  ];
}

describe('events as CloudEvents 1.0, read by the official cloudevents SDK', () => {
  it('covers every transition of the lifecycle table and every published type', () => {
    expect(Object.keys(everyTransition).sort()).toEqual(Object.keys(JOB_TRANSITIONS).sort());
    expect(allEvents().map((e) => e.type).sort()).toEqual([...EVENT_TYPES].sort());
  });

  it.each(allEvents().map((e) => [e.type, e] as const))('parses %s in structured mode with its id, source, subject, time and data', (_type, event) => {
    const body = JSON.stringify(event);
    const message = { headers: { 'content-type': 'application/cloudevents+json; charset=utf-8' }, body };
    expect(HTTP.isEvent(message)).toBe(true);
    const parsed = HTTP.toEvent(message) as SdkCloudEvent<unknown>;
    expect(parsed.specversion).toBe('1.0');
    expect(parsed).toMatchObject({ id: event.id, source: event.source, type: event.type, subject: event.subject, datacontenttype: 'application/json' });
    expect(parsed.time).toBe(event.time);
    expect(parsed.data).toEqual(event.data);
    expect(parsed.validate()).toBe(true);
    // And validates strictly as an object (throws ValidationError otherwise).
    expect(() => new SdkCloudEvent(JSON.parse(body) as object, true)).not.toThrow();
  });

  it('is refused by the SDK when a required attribute is missing (the check can fail)', () => {
    const broken: Record<string, unknown> = { ...jobEvent('completed', jobData, '/blixard/scheduler') };
    delete broken.source;
    const parsed = HTTP.toEvent({ headers: { 'content-type': 'application/cloudevents+json' }, body: JSON.stringify(broken) }) as SdkCloudEvent<unknown>;
    expect(() => parsed.validate()).toThrow(ValidationError);
    expect(() => new SdkCloudEvent(broken, true)).toThrow(ValidationError);
  });
});
