import {
  CATCH_UP_POLICIES,
  DEFAULT_BACKOFF,
  DEFAULT_MAX_ATTEMPTS,
  JOB_STATUSES,
  LABEL_KEY_PATTERN,
  LIMITS,
  NAME_PATTERN,
  OVERLAP_POLICIES,
  PLACEMENT_POLICIES,
  SCHEDULE_DEFAULTS,
  SCHEDULE_LIMITS,
  SCHEDULER_SET_FIELDS,
  EVENT_PATTERN,
  WEBHOOK_LIMITS,
  SCOPES,
  KEY_NAME_MAX,
  TENANT_PATTERN,
} from '@blixard/domain';
import type { JsonSchema, OpenApiDocument, OpenApiOperation, OpenApiResponse } from './types';

/**
 * What the OpenAPI document holds besides its operations: its header, tags and the reusable
 * components (schemas, path parameters, security schemes). Limits, defaults and enums come from the
 * domain constants the validators use, so the numbers cannot drift. The operations themselves are
 * described next to their handlers (`@ApiOperation`, operation.ts) and assembled by build.ts.
 */

export const ref = (name: string): JsonSchema => ({ $ref: `#/components/schemas/${name}` });
export const param = (name: string): { $ref: string } => ({ $ref: `#/components/parameters/${name}` });
export const nullable = (type: string, extra: JsonSchema = {}): JsonSchema => ({ type: [type, 'null'], ...extra });
export const timestamp: JsonSchema = { type: 'string', format: 'date-time' };
export const nullableTimestamp: JsonSchema = nullable('string', { format: 'date-time' });
export const uuid: JsonSchema = { type: 'string', format: 'uuid' };
const name: JsonSchema = { type: 'string', pattern: NAME_PATTERN.source, minLength: 1, maxLength: 63 };
const key: JsonSchema = { type: 'string', minLength: 1, maxLength: LIMITS.keyLength };
const countsByStatus: JsonSchema = {
  type: 'object',
  propertyNames: ref('JobStatus'),
  additionalProperties: { type: 'integer', minimum: 0 },
  description: 'Jobs per status; a status without jobs may be absent.',
};

export const json = (schema: JsonSchema, description: string): OpenApiResponse => ({ description, content: { 'application/json': { schema } } });
export const problem = (description: string): OpenApiResponse => ({ description, content: { 'application/problem+json': { schema: ref('Problem') } } });
export const body = (schema: JsonSchema, required = true, description?: string): OpenApiOperation['requestBody'] => ({
  required,
  ...(description ? { description } : {}),
  content: { 'application/json': { schema } },
});

/** Any route with a path parameter: Express refuses a parameter that is not valid percent-encoding. */
export const badEncoding = 'a path parameter is not valid percent-encoding';
export const tooLarge = problem('The body exceeds MAX_BODY_BYTES (`payload_too_large`).');
export const items = (schema: JsonSchema): JsonSchema => ({
  type: 'object',
  required: ['items'],
  additionalProperties: false,
  properties: { items: { type: 'array', items: schema } },
});

export const DOCUMENT_BASE: Omit<OpenApiDocument, 'paths'> = {
  openapi: '3.1.0',
  info: {
    title: 'Blixard',
    version: '0.1.0',
    description:
      'A distributed job orchestrator: submit jobs to executor backends, follow and retry them, run them on cron ' +
      'schedules, and control queues and fairness. Every error is RFC 9457 problem details (`application/problem+json`) ' +
      'with a stable machine `code` and, for validation failures, every bad field in `errors`.',
  },
  servers: [{ url: 'http://localhost:8080' }],
  tags: [
    { name: 'jobs', description: 'Submitting, reading, cancelling and retrying jobs.' },
    { name: 'workers', description: 'The executor fleet.' },
    { name: 'schedules', description: 'Cron schedules: each fire time makes exactly one job from a template.' },
    { name: 'queues', description: 'Per-queue dispatch controls and fairness weights.' },
    { name: 'service', description: 'This document, and the health, readiness and metrics every Blixard service serves.' },
    { name: 'events', description: 'CloudEvents of every job and worker transition, progress report and webhook change: Server-Sent Events streams, resumable with Last-Event-ID, and pages.' },
    { name: 'webhooks', description: 'Signed HTTP deliveries of events, retried with backoff; each attempt recorded.' },
    { name: 'audit', description: 'Who did what through the API, and when.' },
    { name: 'keys', description: 'API keys of the caller\'s tenant: made, listed and revoked with the `admin` scope (any tenant\'s with `blixard keys`).' },
  ],
  security: [{ bearerAuth: [] }, { apiKeyHeader: [] }],
  components: {
    securitySchemes: {
      bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'bk_<prefix>_<secret>', description: 'An API key: `Authorization: Bearer bk_...` (made with `blixard keys create` or `POST /v1/keys`).' },
      apiKeyHeader: { type: 'apiKey', name: 'X-API-Key', in: 'header', description: 'The same API key in `X-API-Key`, for older clients.' },
    },
    parameters: {
      JobId: { name: 'id', in: 'path', required: true, description: 'A job id.', schema: uuid },
      ScheduleId: { name: 'id', in: 'path', required: true, description: 'A schedule id.', schema: uuid },
      WorkerId: { name: 'id', in: 'path', required: true, description: 'A worker id.', schema: { type: 'string' } },
      QueueName: { name: 'name', in: 'path', required: true, description: 'A queue name.', schema: name },
      FairnessKey: { name: 'key', in: 'path', required: true, description: 'A fairness key.', schema: key },
      WebhookId: { name: 'id', in: 'path', required: true, description: 'A webhook id.', schema: uuid },
    },
    schemas: {
      JobStatus: {
        type: 'string',
        enum: [...JOB_STATUSES],
        description:
          'BLOCKED: waits for its parents. SCHEDULED: waits for its run-at (a delay or a retry backoff). PENDING: ready. ' +
          'CLAIMED, RUNNING: an attempt holds a lease. COMPLETED, FAILED, CANCELLED: finished.',
      },
      WorkerStatus: { type: 'string', enum: ['ONLINE', 'DRAINING', 'OFFLINE', 'LOST'] },
      Labels: {
        type: 'object',
        maxProperties: 64,
        propertyNames: { pattern: LABEL_KEY_PATTERN.source },
        additionalProperties: { type: 'string', maxLength: 253 },
      },
      SubmitJob: {
        type: 'object',
        required: ['backend', 'payload'],
        additionalProperties: false,
        description: 'Unknown fields are refused. `runAt` and `delayMs` exclude each other, and both exclude `dependsOn`.',
        properties: {
          backend: { ...name, description: 'The executor backend that runs the job.' },
          payload: { not: { type: 'null' }, description: 'Any JSON value except null, handed to the executor.' },
          queue: { ...name, default: 'default' },
          priority: { type: 'integer', ...range(LIMITS.priority), default: 0, description: 'Higher first, within a fairness key.' },
          maxAttempts: { type: 'integer', ...range(LIMITS.maxAttempts), default: DEFAULT_MAX_ATTEMPTS },
          timeoutMs: { type: 'integer', ...range(LIMITS.timeoutMs), description: 'Limit per attempt; none when omitted.' },
          labels: { ...ref('Labels'), default: {} },
          backoff: {
            type: 'object',
            additionalProperties: false,
            description: 'Delay between attempts; omitted fields take their defaults.',
            properties: {
              type: { enum: ['exponential', 'fixed'], default: DEFAULT_BACKOFF.type, description: 'exponential: `baseMs` doubled for each further attempt.' },
              baseMs: { type: 'integer', minimum: 0, maximum: LIMITS.delayMs.max, default: DEFAULT_BACKOFF.baseMs },
              maxMs: { type: 'integer', minimum: 0, maximum: LIMITS.delayMs.max, default: DEFAULT_BACKOFF.maxMs },
              jitter: { type: 'number', minimum: 0, maximum: 1, default: DEFAULT_BACKOFF.jitter, description: 'Each delay is cut by a random fraction of up to this much.' },
            },
          },
          idempotencyKey: { type: 'string', minLength: 1, maxLength: LIMITS.idempotencyKeyLength, description: 'Unique per queue; see the `Idempotency-Key` header.' },
          runAt: { ...timestamp, description: 'Not before this time (at most a year ahead).' },
          delayMs: { type: 'integer', ...range(LIMITS.delayMs), description: 'Not before this many milliseconds from now.' },
          concurrencyKey: { ...key, description: "Jobs of one key share the queue's per-key limits." },
          fairnessKey: { ...key, default: 'default', description: 'Dispatch takes turns across keys, by weight.' },
          dependsOn: {
            type: 'array',
            items: uuid,
            minItems: 1,
            maxItems: LIMITS.maxParents,
            uniqueItems: true,
            description: 'Existing jobs that must complete first; the job waits BLOCKED until then.',
          },
          onParentFailure: { enum: ['cancel', 'run'], default: 'cancel', description: 'When a parent ends FAILED or CANCELLED: cancel this job, or run it anyway.' },
          allowUnknownBackend: {
            type: 'boolean',
            default: false,
            description: 'Accept a backend no worker has registered yet; otherwise a 400 lists the known backends.',
          },
          resources: {
            type: 'object',
            additionalProperties: { type: 'number', minimum: 0, maximum: 1e12 },
            description: 'Reserved on the chosen worker from dispatch to the end of the attempt: cpuMillis, memoryMb, or any numeric resource workers declare in EXECUTOR_RESOURCES (gpu, ...). A job with requirements is placed on a worker that fits.',
            example: { cpuMillis: 500, memoryMb: 2048 },
          },
          constraints: {
            type: 'array',
            maxItems: 32,
            items: { type: 'string' },
            description: 'Label constraints the worker must meet: `key=value`, `key!=value`, `key in (a,b)`, `key notin (a,b)`, `key` (exists), `!key` (does not exist).',
            example: ['zone in (eu-1,eu-2)', 'gpu'],
          },
          affinity: {
            type: 'array',
            maxItems: 32,
            items: {
              type: 'object',
              required: ['constraint'],
              additionalProperties: false,
              properties: { constraint: { type: 'string' }, weight: { type: 'integer', minimum: -100, maximum: 100, default: 50, not: { const: 0 } } },
            },
            description: 'Preferences: among workers that fit, those matching more (summed weight) are chosen first; negative weights repel.',
          },
          worker: { type: 'string', maxLength: 200, description: 'Run on this worker only (what the `explicit` placement policy requires).' },
          placementDeadlineMs: {
            type: 'integer',
            minimum: 1,
            maximum: LIMITS.delayMs.max,
            description: 'With requirements: fail the job (`placement_timeout`) if no worker took it within this long. Without it the job waits in PENDING, its `waitReason` saying why.',
          },
        },
        not: {
          anyOf: [
            { required: ['runAt', 'delayMs'] },
            { required: ['dependsOn', 'runAt'] },
            { required: ['dependsOn', 'delayMs'] },
          ],
        },
      },
      RetryJob: {
        type: 'object',
        additionalProperties: false,
        properties: {
          maxAttempts: {
            type: 'integer',
            minimum: 1,
            maximum: 1000,
            description: "How many more attempts the job gets (default: its original maxAttempts).",
          },
        },
      },
      RetryJobs: {
        type: 'object',
        additionalProperties: false,
        properties: {
          status: { type: 'array', items: { enum: ['FAILED', 'CANCELLED'] }, minItems: 1, default: ['FAILED'] },
          backend: { type: 'string', description: 'Only jobs of this backend.' },
          queue: { type: 'string', description: 'Only jobs of this queue.' },
          limit: { type: 'integer', minimum: 1, maximum: 10_000, default: 1000, description: 'Retry at most this many.' },
        },
      },
      RetriedJobs: {
        type: 'object',
        required: ['redriven'],
        additionalProperties: false,
        properties: { redriven: { type: 'array', items: uuid } },
      },
      Job: {
        type: 'object',
        required: [
          'id', 'tenant', 'queue', 'backend', 'status', 'payload', 'priority', 'labels', 'attempt', 'maxAttempts', 'timeoutMs',
          'backoff', 'idempotencyKey', 'runAt', 'workerId', 'leaseExpiresAt', 'result', 'error', 'errorCode', 'exitCode',
          'stdoutTail', 'stderrTail', 'createdAt', 'updatedAt', 'dispatchedAt', 'startedAt', 'finishedAt',
          'concurrencyKey', 'fairnessKey', 'onParentFailure', 'scheduleId', 'requirements', 'placementDeadlineAt', 'waitReason',
          'progress',
        ],
        properties: {
          id: { ...uuid, description: 'A UUIDv7: ids sort by creation time.' },
          tenant: { type: 'string', description: 'The tenant that owns it (the creating API key\'s); no other tenant\'s key sees it.' },
          queue: { type: 'string' },
          backend: { type: 'string' },
          status: ref('JobStatus'),
          payload: { description: 'As submitted.' },
          priority: { type: 'integer' },
          labels: { type: 'object', additionalProperties: { type: 'string' } },
          attempt: { type: 'integer', minimum: 0, description: 'The current attempt number: 0 before the first dispatch.' },
          maxAttempts: { type: 'integer', description: 'Attempts allowed in all, counting those already made.' },
          timeoutMs: nullable('integer'),
          backoff: {
            type: 'object',
            required: ['type', 'baseMs', 'maxMs', 'jitter'],
            properties: { type: { type: 'string' }, baseMs: { type: 'integer' }, maxMs: { type: 'integer' }, jitter: { type: 'number' } },
          },
          idempotencyKey: nullable('string', { description: 'Null once the idempotency window has passed.' }),
          runAt: { ...timestamp, description: 'When the job becomes (or became) ready.' },
          workerId: nullable('string'),
          leaseExpiresAt: { ...nullableTimestamp, description: 'While CLAIMED or RUNNING: when the attempt counts as abandoned.' },
          result: { description: 'What the executor returned; null until then.' },
          error: nullable('string'),
          errorCode: nullable('string'),
          exitCode: nullable('integer'),
          stdoutTail: nullable('string', { description: 'The end of the output of the last attempt.' }),
          stderrTail: nullable('string'),
          createdAt: timestamp,
          updatedAt: timestamp,
          dispatchedAt: nullableTimestamp,
          startedAt: nullableTimestamp,
          finishedAt: nullableTimestamp,
          concurrencyKey: nullable('string'),
          fairnessKey: { type: 'string' },
          onParentFailure: { enum: ['cancel', 'run'] },
          scheduleId: nullable('string', { format: 'uuid', description: 'The schedule that made the job.' }),
          requirements: {
            anyOf: [
              {
                type: 'object',
                required: ['resources', 'constraints', 'affinity', 'worker'],
                properties: {
                  resources: { type: 'object', additionalProperties: { type: 'number' } },
                  constraints: { type: 'array', items: { type: 'string' } },
                  affinity: { type: 'array', items: { type: 'object', required: ['constraint', 'weight'], properties: { constraint: { type: 'string' }, weight: { type: 'integer' } } } },
                  worker: nullable('string'),
                },
              },
              { type: 'null' },
            ],
            description: 'Placement requirements; null: any worker of the backend (its shared consumer).',
          },
          placementDeadlineAt: { ...nullableTimestamp, description: 'With requirements: when the job fails if no worker took it.' },
          waitReason: nullable('string', { description: 'Why a PENDING job is not dispatched yet, e.g. `no worker with label gpu=true and 1 slot, 2048 MB free (3 online: 3 without the labels)`.' }),
          progress: { anyOf: [ref('JobProgress'), { type: 'null' }], description: 'The latest progress the current attempt reported (`ctx.progress`).' },
          dependsOn: { type: 'array', items: uuid, description: 'Parents (on GET /v1/jobs/{id}).' },
          attempts: { type: 'array', items: ref('JobAttempt'), description: 'Every attempt, first first (on GET /v1/jobs/{id}).' },
        },
      },
      JobAttempt: {
        type: 'object',
        required: ['attempt', 'workerId', 'outcome', 'error', 'errorCode', 'exitCode', 'durationMs', 'stdoutTail', 'stderrTail', 'claimedAt', 'startedAt', 'finishedAt'],
        properties: {
          attempt: { type: 'integer', minimum: 1 },
          workerId: nullable('string'),
          outcome: { enum: ['RUNNING', 'COMPLETED', 'FAILED', 'TIMED_OUT', 'CANCELLED', 'LEASE_EXPIRED', 'WORKER_LOST'] },
          error: nullable('string'),
          errorCode: nullable('string'),
          exitCode: nullable('integer'),
          durationMs: nullable('integer'),
          stdoutTail: nullable('string'),
          stderrTail: nullable('string'),
          claimedAt: timestamp,
          startedAt: nullableTimestamp,
          finishedAt: nullableTimestamp,
        },
      },
      JobPage: {
        type: 'object',
        required: ['items', 'nextCursor'],
        properties: {
          items: { type: 'array', items: ref('Job') },
          nextCursor: nullable('string', { description: 'Pass as `cursor` for the next page; null on the last page.' }),
        },
      },
      WorkerStats: {
        type: 'object',
        required: ['byBackend', 'totals'],
        properties: {
          byBackend: {
            type: 'object',
            additionalProperties: {
              type: 'object',
              required: ['workers', 'slots', 'busySlots'],
              properties: {
                workers: { type: 'object', additionalProperties: { type: 'integer' }, description: 'Workers by status.' },
                slots: { type: 'integer', description: 'Slots of ONLINE and DRAINING workers.' },
                busySlots: { type: 'integer', description: 'Of those, slots running attempts.' },
              },
            },
          },
          totals: {
            type: 'object',
            required: ['workers', 'online', 'slots', 'busySlots'],
            properties: { workers: { type: 'integer' }, online: { type: 'integer' }, slots: { type: 'integer' }, busySlots: { type: 'integer' } },
          },
        },
      },
      Stats: {
        type: 'object',
        required: ['byStatus', 'byBackend', 'total'],
        properties: {
          byStatus: {
            type: 'object',
            required: [...JOB_STATUSES],
            properties: Object.fromEntries(JOB_STATUSES.map((s) => [s, { type: 'integer', minimum: 0 }])),
          },
          byBackend: { type: 'object', additionalProperties: countsByStatus },
          total: { type: 'integer', minimum: 0 },
        },
      },
      Worker: {
        type: 'object',
        required: ['id', 'backend', 'host', 'version', 'status', 'labels', 'capacity', 'concurrency', 'runningJobs', 'used', 'startedAt', 'lastHeartbeatAt'],
        properties: {
          id: { type: 'string' },
          backend: { type: 'string' },
          host: { type: 'string' },
          version: { type: 'string' },
          status: ref('WorkerStatus'),
          labels: { type: 'object', additionalProperties: { type: 'string' } },
          capacity: { type: 'object', additionalProperties: { type: 'number' }, description: 'Slots and other numeric resources.' },
          concurrency: { type: 'integer' },
          runningJobs: {
            type: 'array',
            items: { type: 'object', required: ['jobId', 'attempt'], properties: { jobId: uuid, attempt: { type: 'integer' } } },
          },
          used: { type: 'object', additionalProperties: { type: 'number' }, description: 'What attempts in flight hold on the worker: slots, and the resources of placed attempts.' },
          startedAt: timestamp,
          lastHeartbeatAt: timestamp,
        },
      },
      CreateSchedule: {
        type: 'object',
        required: ['cron', 'template'],
        additionalProperties: false,
        description: 'Unknown fields are refused.',
        properties: {
          name: nullable('string', { minLength: SCHEDULE_LIMITS.nameLength.min, maxLength: SCHEDULE_LIMITS.nameLength.max }),
          cron: {
            type: 'string',
            description: '5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first; hashed values (H) are refused, and so is an expression no date matches.',
            examples: ['*/5 * * * *'],
          },
          timezone: { type: 'string', default: SCHEDULE_DEFAULTS.timezone, description: 'IANA time zone the cron fields are read in.' },
          template: {
            allOf: [ref('SubmitJob'), { not: { anyOf: SCHEDULER_SET_FIELDS.map((f) => ({ required: [f] })) } }],
            description: `The job each fire time makes: a submission without ${SCHEDULER_SET_FIELDS.join(', ')}, which the scheduler sets.`,
          },
          overlap: {
            enum: [...OVERLAP_POLICIES],
            default: SCHEDULE_DEFAULTS.overlap,
            description: "At a fire time while the previous fire's job is unfinished: make another, skip, or cancel the previous.",
          },
          catchUp: {
            enum: [...CATCH_UP_POLICIES],
            default: SCHEDULE_DEFAULTS.catchUp,
            description: 'Which fire times missed while the scheduler was down still make jobs.',
          },
          catchUpLimit: {
            type: 'integer',
            ...range(SCHEDULE_LIMITS.catchUpLimit),
            default: SCHEDULE_DEFAULTS.catchUpLimit,
            description: 'At most this many fire times are made at once.',
          },
          paused: { type: 'boolean', default: SCHEDULE_DEFAULTS.paused },
        },
      },
      Schedule: {
        type: 'object',
        required: ['id', 'tenant', 'name', 'cron', 'timezone', 'template', 'overlap', 'catchUp', 'catchUpLimit', 'paused', 'nextFireAt', 'lastFireAt', 'lastJobId', 'createdAt'],
        properties: {
          id: uuid,
          tenant: { type: 'string', description: 'The tenant that owns it (the creating API key\'s); no other tenant\'s key sees it.' },
          name: nullable('string'),
          cron: { type: 'string', description: 'Whitespace normalised to single spaces.' },
          timezone: { type: 'string' },
          template: { type: 'object', description: 'The validated template with every default applied.' },
          overlap: { enum: [...OVERLAP_POLICIES] },
          catchUp: { enum: [...CATCH_UP_POLICIES] },
          catchUpLimit: { type: 'integer' },
          paused: { type: 'boolean' },
          nextFireAt: { ...nullableTimestamp, description: 'Null while paused.' },
          lastFireAt: nullableTimestamp,
          lastJobId: nullable('string', { format: 'uuid' }),
          createdAt: timestamp,
        },
      },
      RateLimit: {
        type: 'object',
        required: ['n', 'intervalMs'],
        additionalProperties: false,
        description: 'At most `n` dispatches per `intervalMs`.',
        properties: {
          n: { type: 'integer', minimum: 1, maximum: 1_000_000 },
          intervalMs: { type: 'integer', minimum: 1, maximum: 86_400_000 },
        },
      },
      QueueControls: {
        type: 'object',
        additionalProperties: false,
        description: 'Every field optional: omitted keeps the current value, `null` removes the limit. Unknown fields are refused.',
        properties: {
          paused: { type: 'boolean', description: 'A paused queue dispatches nothing; running jobs go on.' },
          maxConcurrency: nullable('integer', { minimum: 1, maximum: 1_000_000, description: 'Attempts in flight in the queue.' }),
          rateLimit: { anyOf: [ref('RateLimit'), { type: 'null' }], description: 'Dispatches of the queue.' },
          keyConcurrency: nullable('integer', { minimum: 1, maximum: 1_000_000, description: 'Attempts in flight per concurrency key.' }),
          keyRateLimit: { anyOf: [ref('RateLimit'), { type: 'null' }], description: 'Dispatches per concurrency key.' },
          placementPolicy: { $ref: '#/components/schemas/PlacementPolicy' },
        },
      },
      Queue: {
        type: 'object',
        required: ['name', 'paused', 'maxConcurrency', 'rateLimit', 'keyConcurrency', 'keyRateLimit', 'placementPolicy', 'counts'],
        properties: {
          name: { type: 'string' },
          paused: { type: 'boolean' },
          maxConcurrency: nullable('integer'),
          rateLimit: { anyOf: [ref('RateLimit'), { type: 'null' }] },
          keyConcurrency: nullable('integer'),
          keyRateLimit: { anyOf: [ref('RateLimit'), { type: 'null' }] },
          placementPolicy: ref('PlacementPolicy'),
          counts: countsByStatus,
        },
      },
      PlacementPolicy: {
        enum: [...PLACEMENT_POLICIES],
        default: 'binpack',
        description:
          'How the queue\'s jobs with requirements pick among the workers that fit: `binpack` (least room left: fills workers), `spread` (most room left), `first-fit` (longest registered), `round-robin` (the next worker after the last one used), `explicit` (only the worker the job names in `worker`).',
      },
      FairnessWeight: {
        type: 'object',
        required: ['key', 'weight'],
        properties: { key: { type: 'string' }, weight: { type: 'integer', minimum: 1, maximum: 1000 } },
      },
      SetFairnessWeight: {
        type: 'object',
        required: ['weight'],
        additionalProperties: false,
        properties: { weight: { type: 'integer', minimum: 1, maximum: 1000 } },
      },
      CloudEvent: {
        type: 'object',
        description: 'A CloudEvents 1.0 event in its JSON format. `subject` is the job, worker or webhook id; `data` holds its state (jobs: status, previousStatus, attempt, workerId, timings, error, exitCode; `completed` adds `result`; `progress` adds `progress`).',
        required: ['specversion', 'id', 'source', 'type', 'subject', 'time', 'datacontenttype', 'data'],
        properties: {
          specversion: { const: '1.0' },
          id: { type: 'string' },
          source: { type: 'string', examples: ['/blixard/scheduler'] },
          type: { type: 'string', examples: ['dev.blixard.job.completed'] },
          subject: { type: 'string' },
          time: timestamp,
          datacontenttype: { const: 'application/json' },
          data: { type: 'object' },
        },
      },
      EventPage: {
        type: 'object',
        required: ['items', 'lastSeq', 'more'],
        properties: {
          items: { type: 'array', items: { type: 'object', required: ['seq', 'event'], properties: { seq: { type: 'integer', description: 'Sequence in the events stream.' }, event: ref('CloudEvent') } } },
          lastSeq: nullable('integer', { description: 'The last sequence read: pass as `after` to continue.' }),
          more: { type: 'boolean', description: 'The page is full and more events were retained.' },
        },
      },
      JobProgress: {
        type: 'object',
        required: ['fraction', 'note', 'attempt', 'seq', 'at'],
        properties: {
          fraction: { type: 'number', minimum: 0, maximum: 1 },
          note: nullable('string'),
          attempt: { type: 'integer', minimum: 1 },
          seq: { type: 'integer', minimum: 1, description: 'Per attempt: a later report has a higher one.' },
          at: timestamp,
        },
      },
      LogLine: {
        type: 'object',
        required: ['seq', 'stream', 'at', 'line'],
        properties: {
          seq: { type: 'integer', minimum: 1, description: 'Line number within the attempt.' },
          stream: { enum: ['stdout', 'stderr', 'system'], description: '`system`: a line of Blixard\'s own (truncation, loss).' },
          at: { ...timestamp, description: 'When the executor read it.' },
          line: { type: 'string' },
        },
      },
      JobLogs: {
        type: 'object',
        required: ['jobId', 'attempt', 'lines', 'bytes', 'truncated', 'complete'],
        properties: {
          jobId: uuid,
          attempt: { type: 'integer', minimum: 1 },
          lines: { type: 'array', items: ref('LogLine') },
          bytes: { type: 'integer', description: 'Output bytes stored for the attempt.' },
          truncated: { type: 'boolean' },
          complete: { type: 'boolean', description: 'The attempt ended and every line is stored.' },
        },
      },
      CreateWebhook: {
        type: 'object',
        required: ['url', 'events', 'secret'],
        additionalProperties: false,
        properties: {
          url: { type: 'string', format: 'uri', maxLength: WEBHOOK_LIMITS.urlLength, description: 'http or https; no credentials.' },
          events: { type: 'array', minItems: 1, maxItems: WEBHOOK_LIMITS.events, items: { type: 'string', pattern: EVENT_PATTERN.source }, examples: [['dev.blixard.job.completed', 'dev.blixard.job.failed']] },
          secret: { type: 'string', minLength: WEBHOOK_LIMITS.secretMin, maxLength: WEBHOOK_LIMITS.secretMax, description: 'Signs deliveries; stored, never returned.' },
        },
      },
      Webhook: {
        type: 'object',
        required: ['id', 'tenant', 'url', 'events', 'secretSet', 'enabled', 'disabledAt', 'disabledReason', 'failingSince', 'createdAt', 'updatedAt'],
        properties: {
          id: uuid,
          tenant: { type: 'string', description: 'The tenant that owns it (the creating API key\'s); no other tenant\'s key sees it.' },
          url: { type: 'string' },
          events: { type: 'array', items: { type: 'string' } },
          secretSet: { const: true },
          enabled: { type: 'boolean' },
          disabledAt: nullableTimestamp,
          disabledReason: nullable('string'),
          failingSince: { ...nullableTimestamp, description: 'Since when every attempt failed; null after a success.' },
          createdAt: timestamp,
          updatedAt: timestamp,
        },
      },
      WebhookDelivery: {
        type: 'object',
        required: ['id', 'webhookId', 'eventId', 'eventType', 'eventSeq', 'status', 'attempts', 'nextAttemptAt', 'createdAt', 'finishedAt'],
        properties: {
          id: uuid,
          webhookId: uuid,
          eventId: { type: 'string' },
          eventType: { type: 'string' },
          eventSeq: { type: 'integer' },
          status: { enum: ['pending', 'succeeded', 'failed'] },
          attempts: {
            type: 'array',
            items: {
              type: 'object',
              required: ['attempt', 'at', 'statusCode', 'error', 'durationMs'],
              properties: { attempt: { type: 'integer' }, at: timestamp, statusCode: nullable('integer'), error: nullable('string'), durationMs: { type: 'integer' } },
            },
          },
          nextAttemptAt: nullableTimestamp,
          createdAt: timestamp,
          finishedAt: nullableTimestamp,
        },
      },
      AuditEntry: {
        type: 'object',
        required: ['id', 'at', 'actor', 'actorName', 'tenant', 'remoteAddress', 'action', 'targetType', 'targetId', 'details'],
        properties: {
          id: { type: 'string' },
          at: timestamp,
          actor: { type: 'string', description: 'The API key\'s id; `anonymous` when AUTH_DISABLED.' },
          actorName: nullable('string', { description: 'The API key\'s name.' }),
          tenant: { type: 'string', description: 'The tenant the action was taken in.' },
          remoteAddress: nullable('string'),
          action: { type: 'string', examples: ['job.submit', 'job.cancel', 'job.retry', 'jobs.retry', 'worker.drain', 'webhook.create', 'webhook.delete', 'queue.update', 'fairness.update'] },
          targetType: { type: 'string' },
          targetId: nullable('string'),
          details: { type: 'object' },
        },
      },
      AuditPage: {
        type: 'object',
        required: ['items', 'nextCursor'],
        properties: { items: { type: 'array', items: ref('AuditEntry') }, nextCursor: nullable('string') },
      },
      Readiness: {
        type: 'object',
        required: ['status', 'checks'],
        properties: {
          status: { enum: ['ready', 'unready'] },
          checks: { type: 'object', additionalProperties: { enum: ['ok', 'unreachable'] }, description: 'Per dependency.' },
        },
      },
      ApiKey: {
        type: 'object',
        required: ['id', 'tenant', 'name', 'scopes', 'prefix', 'createdAt', 'lastUsedAt', 'expiresAt', 'revokedAt'],
        properties: {
          id: uuid,
          tenant: { type: 'string', pattern: TENANT_PATTERN.source },
          name: { type: 'string' },
          scopes: { type: 'array', items: ref('Scope') },
          prefix: { type: 'string', description: 'The token\'s public start, `bk_<prefix>_`: enough to tell keys apart, useless to authenticate.' },
          createdAt: timestamp,
          lastUsedAt: { ...nullableTimestamp, description: 'Updated at most once a minute per gateway.' },
          expiresAt: nullableTimestamp,
          revokedAt: nullableTimestamp,
        },
      },
      CreatedApiKey: {
        type: 'object',
        required: ['key', 'token'],
        properties: {
          key: ref('ApiKey'),
          token: { type: 'string', pattern: '^bk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$', description: 'The secret: send it as `Authorization: Bearer <token>`. Shown this once.' },
        },
      },
      CreateApiKey: {
        type: 'object',
        required: ['name', 'scopes'],
        additionalProperties: false,
        properties: {
          name: { type: 'string', minLength: 1, maxLength: KEY_NAME_MAX },
          scopes: { type: 'array', minItems: 1, maxItems: SCOPES.length, uniqueItems: true, items: ref('Scope') },
          expiresAt: { ...timestamp, description: 'When the key stops working (in the future); never when omitted.' },
          tenant: { type: 'string', description: 'Must be the caller\'s own tenant (the default).' },
        },
      },
      Scope: {
        type: 'string',
        enum: [...SCOPES],
        description:
          'jobs:read: read jobs, their events and logs, schedules, stats, queues. jobs:write: submit jobs, make schedules, cancel or retry ' +
          'the jobs this key submitted. jobs:admin: also cancel or retry any job of the tenant, redrive in bulk. workers:read: the fleet ' +
          'and its events. workers:admin: also drain workers. webhooks:admin: webhooks. admin: everything, including API keys, queue ' +
          'controls, fairness weights and the audit log.',
      },
      Problem: {
        type: 'object',
        description: 'RFC 9457 problem details: the body of every error response.',
        required: ['type', 'title', 'status', 'detail', 'code'],
        properties: {
          type: { type: 'string', format: 'uri', examples: ['https://blixard.dev/problems/validation_failed'] },
          title: { type: 'string', description: 'The HTTP reason phrase.' },
          status: { type: 'integer' },
          detail: { type: 'string', description: 'What went wrong, for a human.' },
          instance: { type: 'string', description: 'The request path.' },
          code: {
            type: 'string',
            description:
              'Stable machine code, e.g. `validation_failed`, `malformed_json`, `not_found`, `invalid_transition`, `idempotency_key_reused`, `payload_too_large`, ' +
              '`missing_api_key`, `invalid_api_key`, `revoked_api_key`, `expired_api_key`, `insufficient_scope`, `rate_limited`, `quota_exceeded`.',
          },
          errors: {
            type: 'array',
            description: 'Each invalid field, for `validation_failed`.',
            items: {
              type: 'object',
              required: ['field', 'message'],
              properties: {
                field: { type: 'string', description: 'JSON path of the field, e.g. `labels.zone`; empty for the body itself.' },
                message: { type: 'string' },
              },
            },
          },
        },
      },
    },
  },
};

function range(limits: { readonly min: number; readonly max: number }): JsonSchema {
  return { minimum: limits.min, maximum: limits.max };
}

