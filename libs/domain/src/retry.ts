/**
 * Retry policy: how many attempts a job gets and how long it waits between them.
 * Defaults follow what users of BullMQ and Temporal expect: a few attempts, exponential backoff
 * with jitter, capped.
 */
export type BackoffType = 'exponential' | 'fixed';

export interface BackoffPolicy {
  type: BackoffType;
  /** Delay before the second attempt (exponential: doubled for each further attempt). */
  baseMs: number;
  /** Upper bound for any delay. */
  maxMs: number;
  /** 0..1: the delay is reduced by a random fraction of up to `jitter` of itself. */
  jitter: number;
}

export const DEFAULT_MAX_ATTEMPTS = 3;
export const DEFAULT_BACKOFF: BackoffPolicy = { type: 'exponential', baseMs: 1_000, maxMs: 300_000, jitter: 0.2 };

export function resolveBackoff(partial: Partial<BackoffPolicy> | null | undefined): BackoffPolicy {
  return { ...DEFAULT_BACKOFF, ...(partial ?? {}) };
}

/**
 * The delay after failed attempt number `attempt` (1-based) before the next one.
 * `random` is injectable so tests are deterministic.
 */
export function backoffDelayMs(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const exponent = Math.max(0, attempt - 1);
  const raw = policy.type === 'fixed' ? policy.baseMs : policy.baseMs * 2 ** Math.min(exponent, 40);
  const capped = Math.min(raw, policy.maxMs);
  const jitter = Math.min(Math.max(policy.jitter, 0), 1);
  return Math.round(capped * (1 - jitter * random()));
}

export interface AttemptFailure {
  /** Stable machine code, e.g. `exit_code`, `timed_out`, `lease_expired`, `worker_lost`. */
  code: string;
  message: string;
  /** False when the error says retrying cannot help (a bad payload, say). */
  retryable: boolean;
}

export type FailureDecision = { kind: 'retry'; delayMs: number } | { kind: 'fail' };

/** What happens after attempt `attempt` of a job allowed `maxAttempts` failed with `failure`. */
export function decideAfterFailure(
  failure: AttemptFailure,
  attempt: number,
  maxAttempts: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): FailureDecision {
  if (!failure.retryable || attempt >= maxAttempts) return { kind: 'fail' };
  return { kind: 'retry', delayMs: backoffDelayMs(policy, attempt, random) };
}
