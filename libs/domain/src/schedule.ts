import { CronExpressionParser } from 'cron-parser';
import type { CronExpression } from 'cron-parser';
import { FieldError, ValidationError } from './errors';
import { JobSubmission, validateSubmission } from './submission';
import { isPlainObject, onlyKnownFields, requireInteger, validateAll, Validator } from './validation';

/**
 * Cron schedules: each fire time of a cron expression, read in an IANA time zone, makes one job
 * from a template. Pure: the scheduler stores the last fire time it handled and asks
 * `dueFireTimes` what to make now and `nextFireTime` when to look again.
 */

/** What happens at a fire time while the job of an earlier fire time is still unfinished. */
export type OverlapPolicy = 'allow' | 'skip' | 'cancel_previous';
/** Which fire times missed while the scheduler was down (or the schedule paused) still run. */
export type CatchUpPolicy = 'none' | 'latest' | 'all';

export const OVERLAP_POLICIES: readonly OverlapPolicy[] = ['allow', 'skip', 'cancel_previous'];
export const CATCH_UP_POLICIES: readonly CatchUpPolicy[] = ['none', 'latest', 'all'];

/** What a client sends to create a schedule, before validation. */
export interface ScheduleInput {
  name?: unknown;
  cron?: unknown;
  timezone?: unknown;
  template?: unknown;
  overlap?: unknown;
  catchUp?: unknown;
  catchUpLimit?: unknown;
  paused?: unknown;
}

/** A validated schedule with every default applied. */
export interface ScheduleDefinition {
  name: string | null;
  /** 5 fields, or 6 with seconds first; whitespace normalised to single spaces. */
  cron: string;
  /** IANA time zone the cron fields are read in. */
  timezone: string;
  /** The job each fire time makes; the scheduler sets its idempotency key and run-at. */
  template: JobSubmission;
  overlap: OverlapPolicy;
  catchUp: CatchUpPolicy;
  /** At most this many fire times are made at once (catch-up `all`, and the grace window of `none`). */
  catchUpLimit: number;
  paused: boolean;
}

export const SCHEDULE_FIELDS = [
  'name',
  'cron',
  'timezone',
  'template',
  'overlap',
  'catchUp',
  'catchUpLimit',
  'paused',
] as const;

/** Template fields the scheduler fills in for each fire time, so a template may not give them. */
// Set by the scheduler for each fire; `dependsOn` would tie every fire to the same old parents.
export const SCHEDULER_SET_FIELDS = ['idempotencyKey', 'runAt', 'delayMs', 'dependsOn'] as const;

export const SCHEDULE_LIMITS = {
  nameLength: { min: 1, max: 200 },
  catchUpLimit: { min: 1, max: 1_000 },
} as const;

export const SCHEDULE_DEFAULTS = {
  timezone: 'UTC',
  overlap: 'allow',
  catchUp: 'none',
  catchUpLimit: 100,
  paused: false,
} as const;

/** The problem with a cron expression, or null when it is usable. Time-zone independent. */
function cronProblem(cron: unknown): string | null {
  if (typeof cron !== 'string') return 'must be a string';
  const fields = cron.trim().split(/\s+/).filter(Boolean);
  if (fields.length !== 5 && fields.length !== 6) {
    return `must have 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), got ${fields.length}`;
  }
  // cron-parser picks a random value for `H` unless given a seed, so the schedule would change on
  // every parse: fire times could be made twice or never.
  if (fields.some((field) => field.split(',').some((part) => part.startsWith('H')))) {
    return 'hashed values (H) are not supported';
  }
  let expression: CronExpression;
  try {
    expression = CronExpressionParser.parse(fields.join(' '), { tz: 'UTC', currentDate: new Date(0) });
  } catch (error) {
    return `is not a valid cron expression: ${(error as Error).message}`;
  }
  // The parser rejects a day no month has only when one month is given; with several (`0 0 31 2,4 *`)
  // it searches for ~100 ms before giving up with a date that does not match. Answer at once.
  if (!hasPossibleDay(expression)) return 'never fires: no date matches it';
  // A last check that the parser finds a matching date; UTC has no DST shifts to excuse a mismatch.
  try {
    const first = expression.next().toDate();
    if (expression.includesDate(first)) return null;
  } catch {
    // cron-parser gives up after a bounded search: no date matches.
  }
  return 'never fires: no date matches it';
}

/** The most days each month can have, January first (February has 29 in leap years). */
const MAX_DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** False when only days of the month are given, and none of them exists in any given month. */
function hasPossibleDay(expression: CronExpression): boolean {
  const { dayOfMonth, dayOfWeek, month } = expression.fields;
  // A restricted day of the week matches some day of every month (either field may match).
  if (dayOfMonth.isWildcard || dayOfMonth.hasLastChar || !dayOfWeek.isWildcard) return true;
  const firstDay = Math.min(...(dayOfMonth.values.filter((day) => day !== 'L') as number[]));
  return month.values.some((m) => firstDay <= MAX_DAYS_IN_MONTH[m - 1]);
}

function isTimeZone(timezone: string): boolean {
  try {
    new Intl.DateTimeFormat(undefined, { timeZone: timezone });
    return true;
  } catch {
    return false;
  }
}

const requireCron = (field: string, cron: unknown): FieldError[] => {
  if (cron === undefined) return [{ field, message: 'is required' }];
  const problem = cronProblem(cron);
  return problem === null ? [] : [{ field, message: problem }];
};

const requireTimeZone = (field: string, timezone: unknown): FieldError[] => {
  if (timezone === undefined) return [];
  if (typeof timezone !== 'string' || !isTimeZone(timezone)) {
    return [{ field, message: 'must be an IANA time zone, e.g. "UTC" or "Europe/Oslo"' }];
  }
  return [];
};

const requireOneOf = (field: string, value: unknown, allowed: readonly string[]): FieldError[] =>
  value === undefined || (typeof value === 'string' && allowed.includes(value))
    ? []
    : [{ field, message: `must be one of ${allowed.map((a) => `"${a}"`).join(', ')}` }];

const { nameLength, catchUpLimit } = SCHEDULE_LIMITS;

/** The rules for every field but the template, which `templateOf` checks and normalises. */
export const SCHEDULE_VALIDATORS: readonly Validator<ScheduleInput>[] = [
  (input) => onlyKnownFields('', input as Record<string, unknown>, SCHEDULE_FIELDS),
  ({ name }) =>
    name === undefined ||
    name === null ||
    (typeof name === 'string' && name.length >= nameLength.min && name.length <= nameLength.max)
      ? []
      : [{ field: 'name', message: `must be a string of ${nameLength.min}-${nameLength.max} characters` }],
  ({ cron }) => requireCron('cron', cron),
  ({ timezone }) => requireTimeZone('timezone', timezone),
  ({ overlap }) => requireOneOf('overlap', overlap, OVERLAP_POLICIES),
  ({ catchUp }) => requireOneOf('catchUp', catchUp, CATCH_UP_POLICIES),
  ({ catchUpLimit: limit }) => requireInteger('catchUpLimit', limit, catchUpLimit.min, catchUpLimit.max),
  ({ paused }) =>
    paused === undefined || typeof paused === 'boolean' ? [] : [{ field: 'paused', message: 'must be a boolean' }],
];

/** Validates the template as a job submission, reporting its errors under `template.`. */
function templateOf(value: unknown, now: Date): { template: JobSubmission | null; errors: FieldError[] } {
  if (value === undefined) return { template: null, errors: [{ field: 'template', message: 'is required' }] };
  if (!isPlainObject(value)) return { template: null, errors: [{ field: 'template', message: 'must be an object' }] };

  const errors: FieldError[] = [];
  const rest: Record<string, unknown> = { ...value };
  for (const field of SCHEDULER_SET_FIELDS) {
    if (field in rest) {
      errors.push({ field: `template.${field}`, message: 'is set by the scheduler for each fire time' });
      // Reported once here, not again by the submission rules.
      delete rest[field];
    }
  }
  try {
    const template = validateSubmission(rest, [], now);
    return { template: errors.length === 0 ? template : null, errors };
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    const prefixed = error.errors.map((e) => ({ field: e.field ? `template.${e.field}` : 'template', message: e.message }));
    return { template: null, errors: [...errors, ...prefixed] };
  }
}

/**
 * Validates a schedule, collecting every error (template errors under `template.<field>`), and
 * returns it with defaults applied. Throws one ValidationError listing each bad field.
 */
export function validateSchedule(input: unknown, now: Date = new Date()): ScheduleDefinition {
  if (!isPlainObject(input)) {
    throw new ValidationError([{ field: '', message: 'the request body must be a JSON object' }]);
  }
  const body = input as ScheduleInput;
  const { template, errors: templateErrors } = templateOf(body.template, now);
  const errors = [...validateAll(body, SCHEDULE_VALIDATORS), ...templateErrors];
  if (errors.length > 0 || template === null) throw new ValidationError(errors);

  return {
    name: (body.name as string | null | undefined) ?? null,
    cron: (body.cron as string).trim().split(/\s+/).join(' '),
    timezone: (body.timezone as string | undefined) ?? SCHEDULE_DEFAULTS.timezone,
    template,
    overlap: (body.overlap as OverlapPolicy | undefined) ?? SCHEDULE_DEFAULTS.overlap,
    catchUp: (body.catchUp as CatchUpPolicy | undefined) ?? SCHEDULE_DEFAULTS.catchUp,
    catchUpLimit: (body.catchUpLimit as number | undefined) ?? SCHEDULE_DEFAULTS.catchUpLimit,
    paused: (body.paused as boolean | undefined) ?? SCHEDULE_DEFAULTS.paused,
  };
}

/** Throws a ValidationError when the cron expression or the time zone is not usable. */
function assertUsable(cron: string, timezone: string): void {
  const errors = [...requireCron('cron', cron), ...requireTimeZone('timezone', timezone)];
  if (errors.length > 0) throw new ValidationError(errors);
}

function assertValidDate(name: string, date: Date): void {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) throw new RangeError(`${name} must be a valid Date`);
}

/** Iterates the fire times of a usable cron expression from `from`, either way. */
const fireTimesFrom = (cron: string, timezone: string, from: Date): CronExpression =>
  CronExpressionParser.parse(cron.trim(), { currentDate: from, tz: timezone });

/** The first fire time strictly after `after`. Throws ValidationError for a bad cron or time zone. */
export function nextFireTime(cron: string, timezone: string, after: Date): Date {
  assertUsable(cron, timezone);
  assertValidDate('after', after);
  return fireTimesFrom(cron, timezone, after).next().toDate();
}

/**
 * The fire times to make jobs for now, ascending. Every fire time up to and including `since` was
 * handled already (`since` is the last handled fire time, or when the schedule was created), so
 * the candidates are the fire times t with since < t <= now:
 * - `all`: the latest `catchUpLimit` of them;
 * - `latest`: the most recent one;
 * - `none`: those due now rather than missed, i.e. now - t <= graceMs (at most `catchUpLimit`).
 * Costs O(catchUpLimit) steps of cron-parser, however long ago `since` is. Throws ValidationError
 * for a bad cron or time zone.
 */
export function dueFireTimes(
  def: Pick<ScheduleDefinition, 'cron' | 'timezone' | 'catchUp' | 'catchUpLimit'>,
  since: Date,
  now: Date,
  graceMs: number,
): Date[] {
  assertUsable(def.cron, def.timezone);
  assertValidDate('since', since);
  assertValidDate('now', now);
  if (!Number.isFinite(graceMs) || graceMs < 0) throw new RangeError('graceMs must be a finite number >= 0');
  const limit = def.catchUp === 'latest' ? 1 : def.catchUpLimit;
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError('catchUpLimit must be a positive integer');
  // Fire times are whole seconds, so `t >= now - graceMs` is `t > now - graceMs - 1` in ms.
  const afterMs =
    def.catchUp === 'none' ? Math.max(since.getTime(), now.getTime() - Math.floor(graceMs) - 1) : since.getTime();
  return latestFireTimes(def.cron, def.timezone, afterMs, now, limit);
}

/** The latest `limit` fire times t with afterMs < t <= until, ascending. */
function latestFireTimes(cron: string, timezone: string, afterMs: number, until: Date, limit: number): Date[] {
  const untilMs = until.getTime();
  if (!(untilMs > afterMs)) return [];

  // Walk back from `until` to where the latest `limit` fire times begin, so a `since` far in the
  // past costs nothing; then list them forward, because forward iteration is what nextFireTime
  // returns. prev() is strictly before its start, hence +1 ms to include `until`. Around a DST
  // change prev() may return a time next() does not (02:30 twice on the night the clocks go back),
  // so when the forward walk finds fewer than `limit`, walk back further and try again.
  const backward = fireTimesFrom(cron, timezone, new Date(untilMs + 1));
  let startMs = untilMs;
  for (let steps = limit + 1; ; steps *= 2) {
    let reachedSince = false;
    for (let i = 0; i < steps; i++) {
      const t = backward.prev().getTime();
      if (t <= afterMs) {
        reachedSince = true;
        break;
      }
      startMs = t;
    }
    const fires = fireTimesBetween(cron, timezone, reachedSince ? afterMs : startMs, untilMs, limit);
    if (reachedSince || fires.length >= limit) return fires;
  }
}

/** The latest `limit` fire times t with fromMs < t <= untilMs, ascending. */
function fireTimesBetween(cron: string, timezone: string, fromMs: number, untilMs: number, limit: number): Date[] {
  const forward = fireTimesFrom(cron, timezone, new Date(fromMs));
  const fires: Date[] = [];
  for (let t = forward.next().toDate(); t.getTime() <= untilMs; t = forward.next().toDate()) {
    fires.push(t);
    if (fires.length > limit) fires.shift();
  }
  return fires;
}
