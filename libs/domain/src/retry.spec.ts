import {
  AttemptFailure,
  backoffDelayMs,
  BackoffPolicy,
  decideAfterFailure,
  DEFAULT_BACKOFF,
  DEFAULT_MAX_ATTEMPTS,
  resolveBackoff,
} from './retry';

const NO_JITTER: BackoffPolicy = { type: 'exponential', baseMs: 1_000, maxMs: 300_000, jitter: 0 };
const never = (): number => {
  throw new Error('random must not be drawn here');
};
const always = (value: number) => (): number => value;

const retryableFailure: AttemptFailure = { code: 'exit_code', message: 'exited with 1', retryable: true };
const permanentFailure: AttemptFailure = { code: 'bad_payload', message: 'payload is not valid', retryable: false };

describe('retry policy defaults', () => {
  it('gives a job 3 attempts by default', () => {
    expect(DEFAULT_MAX_ATTEMPTS).toBe(3);
  });

  it('backs off exponentially from 1s, capped at 5 minutes, with 20% jitter by default', () => {
    expect(DEFAULT_BACKOFF).toEqual({ type: 'exponential', baseMs: 1_000, maxMs: 300_000, jitter: 0.2 });
  });

  it.each([null, undefined])('resolves %p to the default policy', (partial) => {
    expect(resolveBackoff(partial)).toEqual(DEFAULT_BACKOFF);
  });

  it('fills the fields a partial policy leaves out from the defaults', () => {
    expect(resolveBackoff({ type: 'fixed', baseMs: 250 })).toEqual({ type: 'fixed', baseMs: 250, maxMs: 300_000, jitter: 0.2 });
  });

  it('keeps a jitter of 0 rather than replacing it with the default', () => {
    expect(resolveBackoff({ jitter: 0 }).jitter).toBe(0);
  });

  it('returns a new object, so the defaults cannot be changed through it', () => {
    const policy = resolveBackoff(undefined);
    policy.baseMs = 1;
    expect(DEFAULT_BACKOFF.baseMs).toBe(1_000);
  });
});

describe('backoffDelayMs', () => {
  describe('exponential', () => {
    it.each([
      [1, 1_000],
      [2, 2_000],
      [3, 4_000],
      [4, 8_000],
      [5, 16_000],
      [6, 32_000],
      [9, 256_000],
    ])('after attempt %i waits %ims', (attempt, expected) => {
      expect(backoffDelayMs(NO_JITTER, attempt, always(0))).toBe(expected);
    });

    it('doubles the delay for each further attempt', () => {
      for (let attempt = 1; attempt < 8; attempt++) {
        expect(backoffDelayMs(NO_JITTER, attempt + 1, always(0))).toBe(2 * backoffDelayMs(NO_JITTER, attempt, always(0)));
      }
    });

    it('waits the base delay after the first attempt', () => {
      expect(backoffDelayMs({ ...NO_JITTER, baseMs: 750 }, 1, always(0))).toBe(750);
    });

    it.each([0, -1])('treats attempt %i like the first attempt', (attempt) => {
      expect(backoffDelayMs(NO_JITTER, attempt, always(0))).toBe(1_000);
    });

    it('caps the delay at maxMs', () => {
      const policy: BackoffPolicy = { ...NO_JITTER, baseMs: 1_000, maxMs: 5_000 };
      expect(backoffDelayMs(policy, 3, always(0))).toBe(4_000);
      expect(backoffDelayMs(policy, 4, always(0))).toBe(5_000);
      expect(backoffDelayMs(policy, 5, always(0))).toBe(5_000);
    });

    it('reaches the cap of the default policy after 10 attempts and stays there', () => {
      expect(backoffDelayMs(NO_JITTER, 9, always(0))).toBe(256_000);
      expect(backoffDelayMs(NO_JITTER, 10, always(0))).toBe(300_000);
      expect(backoffDelayMs(NO_JITTER, 11, always(0))).toBe(300_000);
    });

    it.each([41, 100, 1_000, 1_000_000])('stays a finite, capped number after attempt %i', (attempt) => {
      expect(backoffDelayMs(NO_JITTER, attempt, always(0))).toBe(300_000);
    });
  });

  describe('fixed', () => {
    const fixed: BackoffPolicy = { type: 'fixed', baseMs: 2_500, maxMs: 300_000, jitter: 0 };

    it.each([1, 2, 3, 10, 100])('waits the base delay after attempt %i', (attempt) => {
      expect(backoffDelayMs(fixed, attempt, always(0))).toBe(2_500);
    });

    it('caps a base delay larger than maxMs', () => {
      expect(backoffDelayMs({ ...fixed, baseMs: 10_000, maxMs: 4_000 }, 1, always(0))).toBe(4_000);
    });
  });

  describe('jitter', () => {
    const policy: BackoffPolicy = { type: 'exponential', baseMs: 1_000, maxMs: 300_000, jitter: 0.2 };

    it('keeps the full delay when random draws 0', () => {
      expect(backoffDelayMs(policy, 3, always(0))).toBe(4_000);
    });

    it('takes off the whole jitter fraction when random draws 1', () => {
      expect(backoffDelayMs(policy, 3, always(1))).toBe(3_200);
    });

    it('takes off half the jitter fraction when random draws 0.5', () => {
      expect(backoffDelayMs(policy, 3, always(0.5))).toBe(3_600);
    });

    it('only ever shortens the delay, by at most the jitter fraction', () => {
      for (let i = 0; i <= 100; i++) {
        const delay = backoffDelayMs(policy, 3, always(i / 100));
        expect(delay).toBeGreaterThanOrEqual(3_200);
        expect(delay).toBeLessThanOrEqual(4_000);
      }
    });

    it('applies jitter after the cap, so a delay never exceeds maxMs', () => {
      expect(backoffDelayMs(policy, 20, always(0))).toBe(300_000);
      expect(backoffDelayMs(policy, 20, always(1))).toBe(240_000);
    });

    it('applies jitter to fixed delays too', () => {
      expect(backoffDelayMs({ ...policy, type: 'fixed' }, 5, always(1))).toBe(800);
    });

    it('rounds the delay to whole milliseconds', () => {
      const delay = backoffDelayMs({ ...policy, jitter: 1 / 3 }, 1, always(1));
      expect(delay).toBe(667);
    });

    it('treats a jitter above 1 as 1, so a delay is never negative', () => {
      expect(backoffDelayMs({ ...policy, jitter: 1.5 }, 3, always(1))).toBe(0);
      expect(backoffDelayMs({ ...policy, jitter: 1.5 }, 3, always(0.5))).toBe(2_000);
    });

    it('treats a negative jitter as 0, so a delay is never lengthened', () => {
      expect(backoffDelayMs({ ...policy, jitter: -0.5 }, 3, always(1))).toBe(4_000);
    });

    it('ignores random entirely when jitter is 0', () => {
      expect(backoffDelayMs(NO_JITTER, 3, always(1))).toBe(4_000);
    });

    it('draws from Math.random when no random source is given', () => {
      const random = jest.spyOn(Math, 'random').mockReturnValue(1);
      try {
        expect(backoffDelayMs(policy, 3)).toBe(3_200);
        expect(random).toHaveBeenCalledTimes(1);
      } finally {
        random.mockRestore();
      }
    });
  });
});

describe('decideAfterFailure', () => {
  it('retries when attempts remain, after the backoff for the attempt that failed', () => {
    expect(decideAfterFailure(retryableFailure, 1, 3, NO_JITTER, always(0))).toEqual({ kind: 'retry', delayMs: 1_000 });
    expect(decideAfterFailure(retryableFailure, 2, 3, NO_JITTER, always(0))).toEqual({ kind: 'retry', delayMs: 2_000 });
  });

  it('passes the random source on to the backoff', () => {
    const policy: BackoffPolicy = { ...NO_JITTER, jitter: 0.5 };
    expect(decideAfterFailure(retryableFailure, 2, 5, policy, always(1))).toEqual({ kind: 'retry', delayMs: 1_000 });
  });

  it('fails the job when its last attempt fails', () => {
    expect(decideAfterFailure(retryableFailure, 3, 3, NO_JITTER, never)).toEqual({ kind: 'fail' });
  });

  it('fails a job allowed a single attempt on its first failure', () => {
    expect(decideAfterFailure(retryableFailure, 1, 1, NO_JITTER, never)).toEqual({ kind: 'fail' });
  });

  it('fails a job whose attempt count is already past its budget', () => {
    expect(decideAfterFailure(retryableFailure, 4, 3, NO_JITTER, never)).toEqual({ kind: 'fail' });
  });

  it('fails without retrying when the error is not retryable, even with attempts left', () => {
    expect(decideAfterFailure(permanentFailure, 1, 10, NO_JITTER, never)).toEqual({ kind: 'fail' });
  });

  it('does not draw a random number when it decides to fail', () => {
    const random = jest.fn(() => 0);
    decideAfterFailure(permanentFailure, 1, 3, DEFAULT_BACKOFF, random);
    decideAfterFailure(retryableFailure, 3, 3, DEFAULT_BACKOFF, random);
    expect(random).not.toHaveBeenCalled();
  });
});
