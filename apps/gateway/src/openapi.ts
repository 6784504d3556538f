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
  type Scope,
} from '@blixard/domain';
import { MAX_PAGE } from './validation';

/**
 * The public HTTP API as an OpenAPI 3.1 document, served at `GET /v1/openapi.json`.
 * Limits, defaults and enums come from the domain constants the validators use, so the numbers
 * cannot drift; `libs/testing/test/openapi.int.test.ts` fails when a route is added, removed or
 * renamed without this document following.
 */

/** JSON Schema 2020-12, as OpenAPI 3.1 uses it. Loosely typed: the document is data. */
export type JsonSchema = { [keyword: string]: unknown };

export interface OpenApiDocument {
  openapi: '3.1.0';
  info: { title: string; version: string; description: string };
  servers: { url: string; description?: string }[];
  tags: { name: string; description: string }[];
  /** Every operation needs an API key unless its own `security` is empty. */
  security: Record<string, string[]>[];
  paths: Record<string, Partial<Record<'get' | 'post' | 'put' | 'delete', OpenApiOperation>>>;
  components: {
    schemas: Record<string, JsonSchema>;
    parameters: Record<string, OpenApiParameter>;
    securitySchemes: Record<string, { type: 'http' | 'apiKey'; scheme?: string; bearerFormat?: string; name?: string; in?: 'header'; description: string }>;
  };
}

export interface OpenApiOperation {
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  parameters?: (OpenApiParameter | { $ref: string })[];
  requestBody?: { required: boolean; description?: string; content: Record<string, { schema: JsonSchema }> };
  responses: Record<string, OpenApiResponse>;
  /** `[]`: no key needed (health, metrics, the docs page). Absent: the document's (a key). */
  security?: Record<string, string[]>[];
  /** The scope the operation needs (`any`: any valid key); checked against the code by a test. */
  'x-blixard-scope'?: Scope | 'any';
}

export interface OpenApiParameter {
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
  description?: string;
  schema: JsonSchema;
  style?: 'simple' | 'form';
  explode?: boolean;
}

export interface OpenApiResponse {
  description: string;
  headers?: Record<string, { description: string; schema: JsonSchema }>;
  content?: Record<string, { schema: JsonSchema }>;
}

const ref = (name: string): JsonSchema => ({ $ref: `#/components/schemas/${name}` });
const param = (name: string) => ({ $ref: `#/components/parameters/${name}` });
const nullable = (type: string, extra: JsonSchema = {}): JsonSchema => ({ type: [type, 'null'], ...extra });
const timestamp: JsonSchema = { type: 'string', format: 'date-time' };
const nullableTimestamp: JsonSchema = nullable('string', { format: 'date-time' });
const uuid: JsonSchema = { type: 'string', format: 'uuid' };
const name: JsonSchema = { type: 'string', pattern: NAME_PATTERN.source, minLength: 1, maxLength: 63 };
const key: JsonSchema = { type: 'string', minLength: 1, maxLength: LIMITS.keyLength };
const countsByStatus: JsonSchema = {
  type: 'object',
  propertyNames: ref('JobStatus'),
  additionalProperties: { type: 'integer', minimum: 0 },
  description: 'Jobs per status; a status without jobs may be absent.',
};

const json = (schema: JsonSchema, description: string): OpenApiResponse => ({ description, content: { 'application/json': { schema } } });
const problem = (description: string): OpenApiResponse => ({ description, content: { 'application/problem+json': { schema: ref('Problem') } } });
const body = (schema: JsonSchema, required = true, description?: string): OpenApiOperation['requestBody'] => ({
  required,
  ...(description ? { description } : {}),
  content: { 'application/json': { schema } },
});

/** Any route with a path parameter: Express refuses a parameter that is not valid percent-encoding. */
const badEncoding = 'a path parameter is not valid percent-encoding';
const tooLarge = problem('The body exceeds MAX_BODY_BYTES (`payload_too_large`).');
const items = (schema: JsonSchema): JsonSchema => ({
  type: 'object',
  required: ['items'],
  additionalProperties: false,
  properties: { items: { type: 'array', items: schema } },
});

const DOCUMENT: OpenApiDocument = {
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
  paths: {
    '/v1/jobs': {
      post: {
        operationId: 'submitJob',
        summary: 'Submit a job',
        description:
          'Stores the job with its `created` event in one transaction and answers before any dispatch. ' +
          'With an idempotency key (header or body), repeating the same request returns the original job with 200; ' +
          'a different request under the same key in the same queue is a 409. A key is remembered for IDEMPOTENCY_WINDOW_MS.',
        tags: ['jobs'],
        parameters: [
          {
            name: 'Idempotency-Key',
            in: 'header',
            required: false,
            description: 'Same as the body field `idempotencyKey`; when both are given they must be equal.',
            schema: { type: 'string', minLength: 1, maxLength: LIMITS.idempotencyKeyLength },
          },
        ],
        requestBody: body(ref('SubmitJob')),
        responses: {
          '201': json(ref('Job'), 'Created: the new job (PENDING, SCHEDULED for a later run-at, or BLOCKED on its parents).'),
          '200': json(ref('Job'), 'An idempotent replay: the job the same request made earlier.'),
          '400': problem('The body is not valid JSON or breaks a rule (`validation_failed`, every bad field in `errors`), a parent in `dependsOn` does not exist, or the header and body idempotency keys differ.'),
          '409': problem('The idempotency key was used for a different request (`idempotency_key_reused`).'),
          '413': tooLarge,
        },
      },
      get: {
        operationId: 'listJobs',
        summary: 'List jobs, newest first',
        tags: ['jobs'],
        parameters: [
          {
            name: 'status',
            in: 'query',
            description: 'Only jobs in these statuses; repeat the parameter or separate with commas.',
            schema: { type: 'array', items: ref('JobStatus') },
            style: 'form',
            explode: true,
          },
          {
            name: 'label',
            in: 'query',
            description: 'Only jobs carrying every one of these labels, each as `key=value`; repeat for several.',
            schema: { type: 'array', items: { type: 'string', pattern: '^[^=]+=' } },
            style: 'form',
            explode: true,
          },
          { name: 'backend', in: 'query', description: 'Only jobs of this backend.', schema: { type: 'string' } },
          { name: 'queue', in: 'query', description: 'Only jobs of this queue.', schema: { type: 'string' } },
          { name: 'limit', in: 'query', description: 'Page size.', schema: { type: 'integer', minimum: 1, maximum: MAX_PAGE, default: 50 } },
          { name: 'cursor', in: 'query', description: 'The `nextCursor` of the previous page.', schema: { type: 'string' } },
        ],
        responses: {
          '200': json(ref('JobPage'), 'A page of jobs.'),
          '400': problem('A parameter is invalid, given twice where once is allowed, or unknown; or the cursor was not made by this API.'),
        },
      },
    },
    '/v1/jobs/{id}': {
      get: {
        operationId: 'getJob',
        summary: 'Get a job with its attempts and parents',
        tags: ['jobs'],
        parameters: [param('JobId')],
        responses: {
          '200': json(ref('Job'), 'The job, with `attempts` and `dependsOn`.'),
          '400': problem(`The id is not a UUID, or ${badEncoding}.`),
          '404': problem('No such job.'),
        },
      },
    },
    '/v1/jobs/{id}/cancel': {
      post: {
        operationId: 'cancelJob',
        summary: 'Cancel a job',
        description: 'The job ends CANCELLED at once; the worker running its attempt, if any, is told to stop, and any later report of that attempt is ignored.',
        tags: ['jobs'],
        parameters: [param('JobId')],
        responses: {
          '200': json(ref('Job'), 'The cancelled job.'),
          '400': problem(`The id is not a UUID, or ${badEncoding}.`),
          '404': problem('No such job.'),
          '409': problem('The job already finished (`invalid_transition`).'),
        },
      },
    },
    '/v1/jobs/{id}/retry': {
      post: {
        operationId: 'retryJob',
        summary: 'Retry a FAILED or CANCELLED job',
        description: 'Back to PENDING with a fresh budget of attempts; attempt numbers keep counting up.',
        tags: ['jobs'],
        parameters: [param('JobId')],
        requestBody: body(ref('RetryJob'), false),
        responses: {
          '200': json(ref('Job'), 'The job, PENDING again.'),
          '400': problem(`The id is not a UUID, the body is invalid, or ${badEncoding}.`),
          '404': problem('No such job.'),
          '409': problem('The job is neither FAILED nor CANCELLED (`invalid_transition`).'),
          '413': tooLarge,
        },
      },
    },
    '/v1/jobs/retry': {
      post: {
        operationId: 'retryJobs',
        summary: 'Retry many FAILED or CANCELLED jobs',
        description: 'Retries matching jobs, oldest first, each with its original attempt budget; a job changed meanwhile is passed over.',
        tags: ['jobs'],
        requestBody: body(ref('RetryJobs'), false),
        responses: {
          '200': json(ref('RetriedJobs'), 'The ids of the jobs retried.'),
          '400': problem('The body is invalid.'),
          '413': tooLarge,
        },
      },
    },
    '/v1/stats': {
      get: {
        operationId: 'getStats',
        summary: 'Count jobs by status and backend',
        tags: ['jobs'],
        responses: { '200': json(ref('Stats'), 'Job counts.') },
      },
    },
    '/v1/workers': {
      get: {
        operationId: 'listWorkers',
        summary: 'List workers',
        description: 'The fleet, by backend then start time: status, capacity, running attempts, last heartbeat.',
        tags: ['workers'],
        parameters: [
          { name: 'backend', in: 'query', description: 'Only workers of this backend.', schema: { type: 'string' } },
          {
            name: 'status',
            in: 'query',
            description: 'Only workers in these statuses, separated by commas.',
            schema: { type: 'array', items: ref('WorkerStatus') },
            style: 'form',
            explode: false,
          },
        ],
        responses: {
          '200': json({ type: 'array', items: ref('Worker') }, 'The workers.'),
          '400': problem('`status` names an unknown status, or `backend` is given twice.'),
        },
      },
    },
    '/v1/workers/stats': {
      get: {
        operationId: 'workerStats',
        summary: 'Workers by status, slots online and in use, per backend',
        tags: ['workers'],
        responses: { '200': json(ref('WorkerStats'), 'The fleet in numbers.') },
      },
    },
    '/v1/workers/{id}/drain': {
      post: {
        operationId: 'drainWorker',
        summary: 'Drain a worker: it stops taking work, finishes (or past DRAIN_TIMEOUT_MS hands back) what it runs, goes OFFLINE and exits',
        tags: ['workers'],
        parameters: [param('WorkerId')],
        responses: {
          '202': json(ref('Worker'), 'The drain was asked for; the worker as it was.'),
          '400': problem('The id is not valid percent-encoding.'),
          '404': problem('No such worker.'),
          '409': problem('The worker is OFFLINE or LOST.'),
        },
      },
    },
    '/v1/workers/{id}': {
      get: {
        operationId: 'getWorker',
        summary: 'Get a worker',
        tags: ['workers'],
        parameters: [param('WorkerId')],
        responses: {
          '200': json(ref('Worker'), 'The worker.'),
          '400': problem('The id is not valid percent-encoding.'),
          '404': problem('No such worker.'),
        },
      },
    },
    '/v1/schedules': {
      post: {
        operationId: 'createSchedule',
        summary: 'Create a cron schedule',
        tags: ['schedules'],
        requestBody: body(ref('CreateSchedule')),
        responses: {
          '201': json(ref('Schedule'), 'The schedule, with its next fire time.'),
          '400': problem('The body is not valid JSON or breaks a rule (template errors are reported under `template.<field>`).'),
          '413': tooLarge,
        },
      },
      get: {
        operationId: 'listSchedules',
        summary: 'List schedules, oldest first',
        tags: ['schedules'],
        responses: { '200': json(items(ref('Schedule')), 'The schedules.') },
      },
    },
    '/v1/schedules/{id}': {
      get: {
        operationId: 'getSchedule',
        summary: 'Get a schedule',
        tags: ['schedules'],
        parameters: [param('ScheduleId')],
        responses: {
          '200': json(ref('Schedule'), 'The schedule.'),
          '400': problem(`The id is not a UUID, or ${badEncoding}.`),
          '404': problem('No such schedule.'),
        },
      },
      delete: {
        operationId: 'deleteSchedule',
        summary: 'Delete a schedule',
        description: 'No further jobs are made; jobs it made already are left alone.',
        tags: ['schedules'],
        parameters: [param('ScheduleId')],
        responses: {
          '204': { description: 'Deleted.' },
          '400': problem(`The id is not a UUID, or ${badEncoding}.`),
          '404': problem('No such schedule.'),
        },
      },
    },
    '/v1/schedules/{id}/pause': {
      post: {
        operationId: 'pauseSchedule',
        summary: 'Pause a schedule',
        description: 'Stops making jobs; pausing a paused schedule changes nothing.',
        tags: ['schedules'],
        parameters: [param('ScheduleId')],
        responses: {
          '200': json(ref('Schedule'), 'The paused schedule.'),
          '400': problem(`The id is not a UUID, or ${badEncoding}.`),
          '404': problem('No such schedule.'),
        },
      },
    },
    '/v1/schedules/{id}/resume': {
      post: {
        operationId: 'resumeSchedule',
        summary: 'Resume a schedule',
        description: 'Fires again from now: fire times missed while paused are not caught up.',
        tags: ['schedules'],
        parameters: [param('ScheduleId')],
        responses: {
          '200': json(ref('Schedule'), 'The resumed schedule.'),
          '400': problem(`The id is not a UUID, or ${badEncoding}.`),
          '404': problem('No such schedule.'),
        },
      },
    },
    '/v1/queues': {
      get: {
        operationId: 'listQueues',
        summary: 'List queues',
        description: 'Every queue that has controls or jobs, by name.',
        tags: ['queues'],
        responses: { '200': json(items(ref('Queue')), 'The queues.') },
      },
    },
    '/v1/queues/{name}': {
      get: {
        operationId: 'getQueue',
        summary: 'Get a queue',
        description: 'Any well-formed name answers: a queue without controls has none (no 404).',
        tags: ['queues'],
        parameters: [param('QueueName')],
        responses: {
          '200': json(ref('Queue'), 'The queue, its controls and its job counts.'),
          '400': problem(`The name is not a queue name, or ${badEncoding}.`),
        },
      },
      put: {
        operationId: 'updateQueue',
        summary: "Change a queue's controls",
        description: 'Fields given are changed, others kept; `null` removes a limit. Pausing stops dispatch, never running work.',
        tags: ['queues'],
        parameters: [param('QueueName')],
        requestBody: body(ref('QueueControls')),
        responses: {
          '200': json(ref('Queue'), 'The queue with its new controls.'),
          '400': problem(`The name is not a queue name, the body is invalid, or ${badEncoding}.`),
          '413': tooLarge,
        },
      },
    },
    '/v1/fairness': {
      get: {
        operationId: 'listFairnessWeights',
        summary: 'List fairness weights',
        description: 'Keys given a weight, by key; any other key weighs 1.',
        tags: ['queues'],
        responses: { '200': json(items(ref('FairnessWeight')), 'The weights.') },
      },
    },
    '/v1/fairness/{key}': {
      put: {
        operationId: 'setFairnessWeight',
        summary: "Set a fairness key's weight",
        description: 'A key of weight 3 gets three dispatches to the one of a key of weight 1.',
        tags: ['queues'],
        parameters: [param('FairnessKey')],
        requestBody: body(ref('SetFairnessWeight')),
        responses: {
          '200': json(ref('FairnessWeight'), 'The key and its weight.'),
          '400': problem(`The key is longer than ${LIMITS.keyLength} characters, the body is invalid, or ${badEncoding}.`),
          '413': tooLarge,
        },
      },
    },
    '/v1/events': {
      get: {
        operationId: 'getEvents',
        summary: 'Stream or page through events',
        description:
          'With `Accept: text/event-stream`: Server-Sent Events, one per CloudEvent (`id:` its sequence in the events stream, `data:` the event), ' +
          'starting with new events, or right after `Last-Event-ID` (or `after`) to resume; a comment line every SSE_HEARTBEAT_MS keeps idle streams open. ' +
          'Otherwise a JSON page of the retained events (7 days), oldest first, from `after`.',
        tags: ['events'],
        parameters: [
          { name: 'type', in: 'query', description: 'Only these event types: exact (`dev.blixard.job.completed`), a prefix (`dev.blixard.job.*`) or `*`; `dev.blixard.` may be left out. Repeat or separate with commas.', schema: { type: 'array', items: { type: 'string' } }, style: 'form', explode: true },
          { name: 'queue', in: 'query', description: 'Only events of jobs in this queue.', schema: { type: 'string' } },
          { name: 'after', in: 'query', description: 'Start after this event sequence (same as the `Last-Event-ID` header).', schema: { type: 'integer', minimum: 0 } },
          { name: 'limit', in: 'query', description: 'Page size (JSON only).', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
          { name: 'Last-Event-ID', in: 'header', required: false, description: 'Resume after this event (SSE clients send it when they reconnect).', schema: { type: 'string', pattern: '^\\d+$' } },
        ],
        responses: {
          '200': {
            description: 'A stream of events (`text/event-stream`), or a page of them (JSON).',
            content: { 'text/event-stream': { schema: { type: 'string', description: 'Frames `id: <seq>` / `data: <CloudEvent JSON>`.' } }, 'application/json': { schema: ref('EventPage') } },
          },
          '400': problem('An unknown event type, a bad `after`/`Last-Event-ID` or `limit`, or an unknown parameter.'),
        },
      },
    },
    '/v1/jobs/{id}/events': {
      get: {
        operationId: 'getJobEvents',
        summary: "A job's events, live",
        description:
          'With `Accept: text/event-stream`: the job\'s events from its creation (or after `Last-Event-ID`), then live, ending after the event that finishes the job ' +
          '(`completed`, `failed`, `cancelled`, `unplaced`). Otherwise a JSON page of its events so far.',
        tags: ['events', 'jobs'],
        parameters: [
          param('JobId'),
          { name: 'after', in: 'query', description: 'Start after this event sequence (same as `Last-Event-ID`).', schema: { type: 'integer', minimum: 0 } },
          { name: 'limit', in: 'query', description: 'Page size (JSON only).', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
          { name: 'Last-Event-ID', in: 'header', required: false, description: 'Resume after this event.', schema: { type: 'string', pattern: '^\\d+$' } },
        ],
        responses: {
          '200': {
            description: 'The job\'s events as a stream, or a page.',
            content: { 'text/event-stream': { schema: { type: 'string' } }, 'application/json': { schema: ref('EventPage') } },
          },
          '400': problem(`The id is not a UUID, a parameter is invalid, or ${badEncoding}.`),
          '404': problem('No such job.'),
        },
      },
    },
    '/v1/jobs/{id}/logs': {
      get: {
        operationId: 'getJobLogs',
        summary: "An attempt's output lines",
        description:
          'The stdout and stderr lines of one attempt (default: the current one), as stored (bounded by LOG_MAX_BYTES_PER_ATTEMPT; `system` lines mark truncation). ' +
          'JSON, or the bare lines with `Accept: text/plain`. With `follow=true`: Server-Sent Events, the stored lines then the live ones, each once and in order ' +
          '(`event: log`, `id:` the line number, `data:` a LogLine), until the attempt ends (`event: end`, data `{attempt, lastSeq, truncated, complete}`).',
        tags: ['jobs'],
        parameters: [
          param('JobId'),
          { name: 'attempt', in: 'query', description: 'The attempt (default: the current one).', schema: { type: 'integer', minimum: 1 } },
          { name: 'follow', in: 'query', description: 'Stream until the attempt ends.', schema: { type: 'boolean', default: false } },
          { name: 'after', in: 'query', description: 'Only lines after this line number (same as `Last-Event-ID`).', schema: { type: 'integer', minimum: 0 } },
          { name: 'Last-Event-ID', in: 'header', required: false, description: 'Resume a followed log after this line.', schema: { type: 'string', pattern: '^\\d+$' } },
        ],
        responses: {
          '200': {
            description: 'The lines. Headers `Blixard-Log-Complete` and `Blixard-Log-Truncated` say whether the attempt ended with every line stored, and whether output was dropped.',
            headers: {
              'Blixard-Log-Complete': { description: '`true` once the attempt ended and all its lines are stored.', schema: { type: 'string', enum: ['true', 'false'] } },
              'Blixard-Log-Truncated': { description: '`true` when output past the cap was dropped.', schema: { type: 'string', enum: ['true', 'false'] } },
            },
            content: { 'application/json': { schema: ref('JobLogs') }, 'text/plain': { schema: { type: 'string' } }, 'text/event-stream': { schema: { type: 'string' } } },
          },
          '400': problem(`The id is not a UUID, the job has no such attempt yet, a parameter is invalid, or ${badEncoding}.`),
          '404': problem('No such job.'),
        },
      },
    },
    '/v1/webhooks': {
      post: {
        operationId: 'createWebhook',
        summary: 'Subscribe a URL to events',
        description:
          'Every event whose type matches one of `events` is POSTed to `url` as a CloudEvent (`application/cloudevents+json`), signed: ' +
          '`Blixard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`. Receivers should refuse a `t` more than 300 s from their clock. ' +
          'A delivery that does not get a 2xx is retried with exponential backoff for WEBHOOK_RETRY_FOR_MS; a webhook failing for WEBHOOK_DISABLE_AFTER_MS is disabled ' +
          '(event `dev.blixard.webhook.disabled`). A URL resolving to a loopback, private or link-local address is refused unless WEBHOOK_ALLOW_PRIVATE. The secret is never returned.',
        tags: ['webhooks'],
        requestBody: body(ref('CreateWebhook')),
        responses: {
          '201': json(ref('Webhook'), 'The subscription (without its secret).'),
          '400': problem('A field is invalid (`validation_failed`), or the URL does not resolve to a public address.'),
          '413': tooLarge,
        },
      },
      get: {
        operationId: 'listWebhooks',
        summary: 'List webhooks',
        tags: ['webhooks'],
        responses: { '200': json(items(ref('Webhook')), 'Every subscription, oldest first.') },
      },
    },
    '/v1/webhooks/{id}': {
      get: {
        operationId: 'getWebhook',
        summary: 'Get a webhook',
        tags: ['webhooks'],
        parameters: [param('WebhookId')],
        responses: {
          '200': json(ref('Webhook'), 'The subscription (without its secret).'),
          '400': problem(`The id is not a UUID, or ${badEncoding}.`),
          '404': problem('No such webhook.'),
        },
      },
      delete: {
        operationId: 'deleteWebhook',
        summary: 'Delete a webhook',
        description: 'Nothing more is delivered to it; its delivery history goes with it.',
        tags: ['webhooks'],
        parameters: [param('WebhookId')],
        responses: {
          '204': { description: 'Deleted.' },
          '400': problem(`The id is not a UUID, or ${badEncoding}.`),
          '404': problem('No such webhook.'),
        },
      },
    },
    '/v1/webhooks/{id}/deliveries': {
      get: {
        operationId: 'listWebhookDeliveries',
        summary: "A webhook's deliveries and their attempts",
        tags: ['webhooks'],
        parameters: [
          param('WebhookId'),
          { name: 'status', in: 'query', description: 'Only deliveries in this state.', schema: { enum: ['pending', 'succeeded', 'failed'] } },
          { name: 'limit', in: 'query', description: 'At most this many, newest first.', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
        ],
        responses: {
          '200': json(items(ref('WebhookDelivery')), 'Deliveries, newest first, each with every attempt.'),
          '400': problem(`The id is not a UUID, a parameter is invalid, or ${badEncoding}.`),
          '404': problem('No such webhook.'),
        },
      },
    },
    '/v1/audit': {
      get: {
        operationId: 'listAuditEntries',
        summary: 'The audit log',
        description: 'Submits, cancels, retries, drains, webhook and queue changes: who (the API key; `anonymous` until keys exist, with the remote address), what and when. Newest first.',
        tags: ['audit'],
        parameters: [
          { name: 'action', in: 'query', description: 'An action (`job.cancel`) or a prefix (`job.*`).', schema: { type: 'string' } },
          { name: 'since', in: 'query', description: 'Only entries at or after this time.', schema: timestamp },
          { name: 'actor', in: 'query', description: 'Only entries of this actor.', schema: { type: 'string' } },
          { name: 'targetId', in: 'query', description: 'Only entries about this job, worker, queue or webhook.', schema: { type: 'string' } },
          { name: 'limit', in: 'query', description: 'Page size.', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
          { name: 'cursor', in: 'query', description: 'The `nextCursor` of the previous page.', schema: { type: 'string' } },
        ],
        responses: {
          '200': json(ref('AuditPage'), 'A page of entries.'),
          '400': problem('A parameter is invalid or unknown.'),
        },
      },
    },
    '/v1/openapi.json': {
      get: {
        operationId: 'getOpenApiDocument',
        summary: 'This document',
        tags: ['service'],
        responses: { '200': json({ type: 'object' }, 'The OpenAPI 3.1 document of this API.') },
      },
    },
    '/openapi.json': {
      get: {
        operationId: 'getOpenApiDocumentAtRoot',
        summary: 'This document (also at /v1/openapi.json)',
        tags: ['service'],
        responses: { '200': json({ type: 'object' }, 'The OpenAPI 3.1 document of this API.') },
      },
    },
    '/docs': {
      get: {
        operationId: 'getDocsPage',
        summary: 'The API documentation page',
        description: 'A self-contained HTML page (nothing loaded from elsewhere) that fetches /openapi.json with the API key typed into it. The page holds no data and needs no key.',
        tags: ['service'],
        security: [],
        responses: { '200': { description: 'The page.', content: { 'text/html': { schema: { type: 'string' } } } } },
      },
    },
    '/v1/keys': {
      post: {
        operationId: 'createApiKey',
        summary: 'Create an API key for this tenant',
        description: 'The answer holds the token, shown this once: only its SHA-256 is stored.',
        tags: ['keys'],
        requestBody: body(ref('CreateApiKey')),
        responses: {
          '201': json(ref('CreatedApiKey'), 'The key and its token.'),
          '400': problem('A field is invalid (each is listed in `errors`), or the body is not JSON.'),
          '413': tooLarge,
        },
      },
      get: {
        operationId: 'listApiKeys',
        summary: 'List this tenant\'s API keys',
        tags: ['keys'],
        responses: { '200': json(items(ref('ApiKey')), 'Newest first, revoked ones too; never a secret.') },
      },
    },
    '/v1/keys/{id}': {
      delete: {
        operationId: 'revokeApiKey',
        summary: 'Revoke an API key',
        description: 'Every later request with it is a 401 `revoked_api_key`.',
        tags: ['keys'],
        parameters: [{ name: 'id', in: 'path', required: true, description: 'An API key id.', schema: uuid }],
        responses: {
          '204': { description: 'Revoked (or already revoked).' },
          '400': problem('The id is not a UUID, or ' + badEncoding + '.'),
          '404': problem('No such key in this tenant.'),
        },
      },
    },
    '/healthz': {
      get: {
        security: [],
        operationId: 'getLiveness',
        summary: 'Liveness',
        description: 'The process serves requests; never depends on Postgres or NATS.',
        tags: ['service'],
        responses: {
          '200': json({ type: 'object', required: ['status'], properties: { status: { const: 'ok' } } }, 'Alive.'),
        },
      },
    },
    '/readyz': {
      get: {
        security: [],
        operationId: 'getReadiness',
        summary: 'Readiness',
        description: 'Every dependency (Postgres, NATS) answers.',
        tags: ['service'],
        responses: {
          '200': json(ref('Readiness'), 'Ready: `status` is `ready`.'),
          '503': json(ref('Readiness'), 'Not ready: `status` is `unready` and `checks` names what is unreachable.'),
        },
      },
    },
    '/metrics': {
      get: {
        security: [],
        operationId: 'getMetrics',
        summary: 'Prometheus metrics',
        tags: ['service'],
        responses: {
          '200': { description: 'Metrics in the Prometheus text format 0.0.4.', content: { 'text/plain': { schema: { type: 'string' } } } },
        },
      },
    },
  },
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

/**
 * The scope each operation needs: what the controllers' `@RequireScope` say (a test holds the two
 * together). Operations without an entry need no key (`security: []`).
 */
export const OPERATION_SCOPES: Record<string, Scope | 'any'> = {
  'POST /v1/jobs': 'jobs:write',
  'GET /v1/jobs': 'jobs:read',
  'GET /v1/jobs/{id}': 'jobs:read',
  'POST /v1/jobs/{id}/cancel': 'jobs:write',
  'POST /v1/jobs/{id}/retry': 'jobs:write',
  'POST /v1/jobs/retry': 'jobs:admin',
  'GET /v1/stats': 'jobs:read',
  'GET /v1/jobs/{id}/events': 'jobs:read',
  'GET /v1/jobs/{id}/logs': 'jobs:read',
  'GET /v1/events': 'jobs:read',
  'GET /v1/workers': 'workers:read',
  'GET /v1/workers/stats': 'workers:read',
  'GET /v1/workers/{id}': 'workers:read',
  'POST /v1/workers/{id}/drain': 'workers:admin',
  'POST /v1/schedules': 'jobs:write',
  'GET /v1/schedules': 'jobs:read',
  'GET /v1/schedules/{id}': 'jobs:read',
  'DELETE /v1/schedules/{id}': 'jobs:write',
  'POST /v1/schedules/{id}/pause': 'jobs:write',
  'POST /v1/schedules/{id}/resume': 'jobs:write',
  'GET /v1/queues': 'jobs:read',
  'GET /v1/queues/{name}': 'jobs:read',
  'PUT /v1/queues/{name}': 'admin',
  'GET /v1/fairness': 'jobs:read',
  'PUT /v1/fairness/{key}': 'admin',
  'POST /v1/webhooks': 'webhooks:admin',
  'GET /v1/webhooks': 'webhooks:admin',
  'GET /v1/webhooks/{id}': 'webhooks:admin',
  'DELETE /v1/webhooks/{id}': 'webhooks:admin',
  'GET /v1/webhooks/{id}/deliveries': 'webhooks:admin',
  'GET /v1/audit': 'admin',
  'POST /v1/keys': 'admin',
  'GET /v1/keys': 'admin',
  'DELETE /v1/keys/{id}': 'admin',
  'GET /v1/openapi.json': 'any',
  'GET /openapi.json': 'any',
};

const authProblems = (scope: Scope | 'any'): Record<string, OpenApiResponse> => ({
  '401': {
    ...problem('No API key, or one that is unknown, revoked or expired (`missing_api_key`, `invalid_api_key`, `revoked_api_key`, `expired_api_key`). The answer carries `WWW-Authenticate: Bearer`.'),
    headers: { 'WWW-Authenticate': { description: '`Bearer realm="blixard"`', schema: { type: 'string' } } },
  },
  ...(scope === 'any' ? {} : { '403': problem(`The API key lacks the scope \`${scope}\` (\`insufficient_scope\`).`) }),
  '429': {
    ...problem('The API key made more requests than RATE_LIMIT_PER_SECOND allows (`rate_limited`), or, on submit, the tenant has TENANT_MAX_WAITING_JOBS waiting (`quota_exceeded`).'),
    headers: { 'Retry-After': { description: 'Seconds to wait.', schema: { type: 'integer', minimum: 1 } } },
  },
});

/** The document with each operation's scope and its 401/403/429 answers added from OPERATION_SCOPES. */
function withAccessControl(doc: OpenApiDocument): OpenApiDocument {
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item) as [string, OpenApiOperation][]) {
      const scope = OPERATION_SCOPES[`${method.toUpperCase()} ${path}`];
      if (scope === undefined) {
        op.security = [];
        continue;
      }
      op['x-blixard-scope'] = scope;
      op.description = `${op.description ? `${op.description} ` : ''}Needs ${scope === 'any' ? 'any valid API key' : `the scope \`${scope}\``}.`;
      op.responses = { ...op.responses, ...authProblems(scope) };
    }
  }
  return doc;
}

export const OPENAPI_DOCUMENT: OpenApiDocument = withAccessControl(DOCUMENT);
