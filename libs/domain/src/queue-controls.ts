import { ValidationError, FieldError } from './errors';
import type { QueueControls, RateLimit } from './dispatch-plan';
import { isPlainObject, onlyKnownFields, requireInteger } from './validation';
import { DEFAULT_PLACEMENT_POLICY, PLACEMENT_POLICIES, PlacementPolicy } from './placement';

/** `PUT /v1/queues/:name` body: every field optional; `null` removes a limit. */
export const QUEUE_CONTROL_FIELDS = ['paused', 'maxConcurrency', 'rateLimit', 'keyConcurrency', 'keyRateLimit', 'placementPolicy'] as const;

/** A queue's controls with how its jobs that state requirements pick a worker. */
export type QueueSettings = QueueControls & { placementPolicy: PlacementPolicy };

function rateLimit(field: string, value: unknown, errors: FieldError[]): RateLimit | null | undefined {
  if (value === undefined || value === null) return value;
  if (!isPlainObject(value)) {
    errors.push({ field, message: 'must be { "n": integer, "intervalMs": integer } or null' });
    return undefined;
  }
  errors.push(...onlyKnownFields(field, value, ['n', 'intervalMs']));
  const before = errors.length;
  errors.push(...requireInteger(`${field}.n`, value.n ?? 'missing', 1, 1_000_000));
  errors.push(...requireInteger(`${field}.intervalMs`, value.intervalMs ?? 'missing', 1, 86_400_000));
  return errors.length === before ? { n: value.n as number, intervalMs: value.intervalMs as number } : undefined;
}

/**
 * Validates a change of a queue's controls and applies it to `current` (all errors at once).
 * Pausing stops dispatch, never running work.
 */
export function applyQueueControls(current: QueueSettings, input: unknown): QueueSettings {
  if (!isPlainObject(input)) throw new ValidationError([{ field: '', message: 'the request body must be a JSON object' }]);
  const errors = onlyKnownFields('', input, QUEUE_CONTROL_FIELDS);
  const next = { ...current };
  if (input.paused !== undefined) {
    if (typeof input.paused !== 'boolean') errors.push({ field: 'paused', message: 'must be true or false' });
    else next.paused = input.paused;
  }
  for (const field of ['maxConcurrency', 'keyConcurrency'] as const) {
    const v = input[field];
    if (v === undefined) continue;
    if (v === null) next[field] = null;
    else {
      const e = requireInteger(field, v, 1, 1_000_000);
      if (e.length > 0) errors.push(...e);
      else next[field] = v as number;
    }
  }
  for (const field of ['rateLimit', 'keyRateLimit'] as const) {
    const r = rateLimit(field, input[field], errors);
    if (r !== undefined) next[field] = r;
  }
  if (input.placementPolicy !== undefined) {
    if (!PLACEMENT_POLICIES.includes(input.placementPolicy as PlacementPolicy)) {
      errors.push({ field: 'placementPolicy', message: `must be one of ${PLACEMENT_POLICIES.join(', ')}` });
    } else next.placementPolicy = input.placementPolicy as PlacementPolicy;
  }
  if (errors.length > 0) throw new ValidationError(errors);
  return next;
}

export const NO_QUEUE_CONTROLS: QueueSettings = { paused: false, maxConcurrency: null, rateLimit: null, keyConcurrency: null, keyRateLimit: null, placementPolicy: DEFAULT_PLACEMENT_POLICY };
