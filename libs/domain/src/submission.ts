import { FieldError, ValidationError } from './errors';
import { BackoffPolicy, DEFAULT_MAX_ATTEMPTS, resolveBackoff } from './retry';
import {
  isPlainObject,
  JsonValue,
  onlyKnownFields,
  requireInteger,
  requireLabels,
  requireName,
  requireNumber,
  validateAll,
  Validator,
} from './validation';
import type { JobStatus } from './lifecycle';
import { UUID_PATTERN } from './ids';
import { PlacementRequirements, toRequirements, validateRequirements } from './placement';
import { jsonDepth as jsonDepthOf } from './access';

/** What a client sends to submit a job (`POST /v1/jobs`), before validation. */
export interface JobSubmissionInput {
  backend?: unknown;
  payload?: unknown;
  queue?: unknown;
  priority?: unknown;
  maxAttempts?: unknown;
  timeoutMs?: unknown;
  labels?: unknown;
  backoff?: unknown;
  idempotencyKey?: unknown;
  runAt?: unknown;
  delayMs?: unknown;
  concurrencyKey?: unknown;
  fairnessKey?: unknown;
  dependsOn?: unknown;
  onParentFailure?: unknown;
  allowUnknownBackend?: unknown;
  resources?: unknown;
  constraints?: unknown;
  affinity?: unknown;
  worker?: unknown;
  placementDeadlineMs?: unknown;
}

/** A validated submission with every default applied. */
export interface JobSubmission {
  backend: string;
  payload: JsonValue;
  queue: string;
  priority: number;
  maxAttempts: number;
  timeoutMs: number | null;
  labels: Record<string, string>;
  backoff: BackoffPolicy;
  idempotencyKey: string | null;
  /** When the job becomes ready; null: now. */
  runAt: Date | null;
  /** Jobs of one key share the queue's per-key limits. */
  concurrencyKey: string | null;
  /** Dispatch shares capacity round-robin across these keys (default: the tenant, or "default"). */
  fairnessKey: string;
  /** Parents that must complete first; the job waits BLOCKED until then. */
  dependsOn: string[];
  /** When a parent ends FAILED or CANCELLED: cancel this job, or run it anyway. */
  onParentFailure: 'cancel' | 'run';
  /** Resources, label constraints, affinity or a named worker: the job is placed on a worker that fits. */
  requirements: PlacementRequirements | null;
  /** With requirements: fail the job when no worker took it within this long (null: wait forever). */
  placementDeadlineMs: number | null;
}

export const SUBMISSION_FIELDS = [
  'backend',
  'payload',
  'queue',
  'priority',
  'maxAttempts',
  'timeoutMs',
  'labels',
  'backoff',
  'idempotencyKey',
  'runAt',
  'delayMs',
  'concurrencyKey',
  'fairnessKey',
  'dependsOn',
  'onParentFailure',
  'allowUnknownBackend',
  'resources',
  'constraints',
  'affinity',
  'worker',
  'placementDeadlineMs',
] as const;

export const LIMITS = {
  priority: { min: -1_000_000, max: 1_000_000 },
  maxAttempts: { min: 1, max: 1_000 },
  timeoutMs: { min: 1, max: 7 * 24 * 3_600_000 },
  delayMs: { min: 0, max: 366 * 24 * 3_600_000 },
  idempotencyKeyLength: 255,
  keyLength: 200,
  maxParents: 100,
} as const;

const backoffRules: Validator<JobSubmissionInput> = ({ backoff }) => {
  if (backoff === undefined) return [];
  if (!isPlainObject(backoff)) return [{ field: 'backoff', message: 'must be an object' }];
  const errors = onlyKnownFields('backoff', backoff, ['type', 'baseMs', 'maxMs', 'jitter']);
  if (backoff.type !== undefined && backoff.type !== 'exponential' && backoff.type !== 'fixed') {
    errors.push({ field: 'backoff.type', message: 'must be "exponential" or "fixed"' });
  }
  errors.push(...requireInteger('backoff.baseMs', backoff.baseMs, 0, LIMITS.delayMs.max));
  errors.push(...requireInteger('backoff.maxMs', backoff.maxMs, 0, LIMITS.delayMs.max));
  errors.push(...requireNumber('backoff.jitter', backoff.jitter, 0, 1));
  return errors;
};

const schedulingRules: Validator<JobSubmissionInput> = ({ runAt, delayMs }) => {
  const errors: FieldError[] = [];
  if (runAt !== undefined && delayMs !== undefined) {
    errors.push({ field: 'runAt', message: 'give either runAt or delayMs, not both' });
  }
  if (runAt !== undefined) {
    if (typeof runAt !== 'string' || Number.isNaN(Date.parse(runAt))) {
      errors.push({ field: 'runAt', message: 'must be an ISO 8601 timestamp' });
    } else if (Date.parse(runAt) - Date.now() > LIMITS.delayMs.max) {
      errors.push({ field: 'runAt', message: 'must be within a year from now' });
    }
  }
  errors.push(...requireInteger('delayMs', delayMs, LIMITS.delayMs.min, LIMITS.delayMs.max));
  return errors;
};

const keyRule =
  (field: 'concurrencyKey' | 'fairnessKey'): Validator<JobSubmissionInput> =>
  (input) => {
    const v = input[field];
    return v === undefined || (typeof v === 'string' && v.length > 0 && v.length <= LIMITS.keyLength)
      ? []
      : [{ field, message: `must be a string of 1-${LIMITS.keyLength} characters` }];
  };

const dependencyRules: Validator<JobSubmissionInput> = ({ dependsOn, onParentFailure, runAt, delayMs }) => {
  const errors: FieldError[] = [];
  if (onParentFailure !== undefined && onParentFailure !== 'cancel' && onParentFailure !== 'run') {
    errors.push({ field: 'onParentFailure', message: 'must be "cancel" or "run"' });
  }
  if (dependsOn === undefined) return errors;
  if (!Array.isArray(dependsOn) || dependsOn.length === 0 || dependsOn.length > LIMITS.maxParents) {
    errors.push({ field: 'dependsOn', message: `must be a list of 1-${LIMITS.maxParents} job ids` });
    return errors;
  }
  dependsOn.forEach((id, i) => {
    if (typeof id !== 'string' || !UUID_PATTERN.test(id)) errors.push({ field: `dependsOn[${i}]`, message: 'is not a job id' });
  });
  if (new Set(dependsOn).size !== dependsOn.length) errors.push({ field: 'dependsOn', message: 'lists a job twice' });
  if (runAt !== undefined || delayMs !== undefined) {
    errors.push({ field: 'dependsOn', message: 'cannot be combined with runAt or delayMs: a dependent runs when its parents complete' });
  }
  return errors;
};

/** The built-in rules for a submission. Extend with your own validators via `validateSubmission`. */
export const SUBMISSION_VALIDATORS: readonly Validator<JobSubmissionInput>[] = [
  (input) => onlyKnownFields('', input as Record<string, unknown>, SUBMISSION_FIELDS),
  ({ backend }) => requireName('backend', backend, true),
  ({ payload }) =>
    payload === undefined || payload === null
      ? [{ field: 'payload', message: 'is required: any JSON value except null' }]
      : [],
  ({ queue }) => requireName('queue', queue, false),
  ({ priority }) => requireInteger('priority', priority, LIMITS.priority.min, LIMITS.priority.max),
  ({ maxAttempts }) => requireInteger('maxAttempts', maxAttempts, LIMITS.maxAttempts.min, LIMITS.maxAttempts.max),
  ({ timeoutMs }) => requireInteger('timeoutMs', timeoutMs, LIMITS.timeoutMs.min, LIMITS.timeoutMs.max),
  ({ labels }) => requireLabels('labels', labels),
  backoffRules,
  ({ idempotencyKey }) =>
    idempotencyKey === undefined ||
    (typeof idempotencyKey === 'string' && idempotencyKey.length > 0 && idempotencyKey.length <= LIMITS.idempotencyKeyLength)
      ? []
      : [{ field: 'idempotencyKey', message: `must be a string of 1-${LIMITS.idempotencyKeyLength} characters` }],
  schedulingRules,
  ({ allowUnknownBackend: v }) => (v === undefined || typeof v === 'boolean' ? [] : [{ field: 'allowUnknownBackend', message: 'must be true or false' }]),
  keyRule('concurrencyKey'),
  keyRule('fairnessKey'),
  dependencyRules,
  (input) => validateRequirements(input),
  ({ placementDeadlineMs }) => requireInteger('placementDeadlineMs', placementDeadlineMs, 1, LIMITS.delayMs.max),
];

/**
 * Validates a submission with the built-in rules plus `extra`, collecting every error, and
 * returns it with defaults applied. Throws ValidationError listing each bad field.
 */
export function validateSubmission(
  input: unknown,
  extra: readonly Validator<JobSubmissionInput>[] = [],
  now: Date = new Date(),
): JobSubmission {
  if (!isPlainObject(input)) {
    throw new ValidationError([{ field: '', message: 'the request body must be a JSON object' }]);
  }
  const body = input as JobSubmissionInput;
  const errors = validateAll(body, [...SUBMISSION_VALIDATORS, ...extra]);
  if (errors.length > 0) throw new ValidationError(errors);

  let runAt: Date | null = null;
  if (typeof body.runAt === 'string') runAt = new Date(body.runAt);
  else if (typeof body.delayMs === 'number' && body.delayMs > 0) runAt = new Date(now.getTime() + body.delayMs);

  return {
    backend: body.backend as string,
    payload: body.payload as JsonValue,
    queue: (body.queue as string | undefined) ?? 'default',
    priority: (body.priority as number | undefined) ?? 0,
    maxAttempts: (body.maxAttempts as number | undefined) ?? DEFAULT_MAX_ATTEMPTS,
    timeoutMs: (body.timeoutMs as number | undefined) ?? null,
    labels: (body.labels as Record<string, string> | undefined) ?? {},
    backoff: resolveBackoff(body.backoff as Partial<BackoffPolicy> | undefined),
    idempotencyKey: (body.idempotencyKey as string | undefined) ?? null,
    runAt,
    concurrencyKey: (body.concurrencyKey as string | undefined) ?? null,
    fairnessKey: (body.fairnessKey as string | undefined) ?? 'default',
    dependsOn: ((body.dependsOn as string[] | undefined) ?? []).map((id) => id.toLowerCase()),
    onParentFailure: (body.onParentFailure as 'cancel' | 'run' | undefined) ?? 'cancel',
    requirements: toRequirements(body),
    placementDeadlineMs: (body.placementDeadlineMs as number | undefined) ?? null,
  };
}

/** The status a new job starts in. */
export function initialStatus(submission: Pick<JobSubmission, 'runAt'> & Partial<Pick<JobSubmission, 'dependsOn'>>, now: Date = new Date()): JobStatus {
  if (submission.dependsOn && submission.dependsOn.length > 0) return 'BLOCKED';
  return submission.runAt !== null && submission.runAt.getTime() > now.getTime() ? 'SCHEDULED' : 'PENDING';
}

/**
 * The payload's size (its JSON, in UTF-8 bytes) and nesting depth, bounded: MAX_PAYLOAD_BYTES is
 * configurable, so the gateway adds this validator to the built-in ones.
 */
export function payloadLimits(maxBytes: number, maxDepth = 64): Validator<JobSubmissionInput> {
  return ({ payload }) => {
    if (payload === undefined || payload === null) return [];
    if (jsonDepthOf(payload) > maxDepth) return [{ field: 'payload', message: `nests deeper than ${maxDepth} levels` }];
    const bytes = Buffer.byteLength(JSON.stringify(payload), 'utf8');
    return bytes > maxBytes ? [{ field: 'payload', message: `is ${bytes} bytes of JSON; at most ${maxBytes} (MAX_PAYLOAD_BYTES)` }] : [];
  };
}
