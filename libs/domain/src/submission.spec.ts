import { BlixardError, FieldError, ValidationError } from './errors';
import { DEFAULT_BACKOFF } from './retry';
import {
  initialStatus,
  JobSubmissionInput,
  LIMITS,
  SUBMISSION_FIELDS,
  SUBMISSION_VALIDATORS,
  validateSubmission,
} from './submission';
import { Validator } from './validation';

const NOW = new Date('2030-01-01T00:00:00.000Z');
const DAY_MS = 24 * 3_600_000;

/** The smallest valid submission. */
const minimal = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  backend: 'shell',
  payload: { command: 'echo hello' },
  ...extra,
});

/** Runs `fn`, which must throw a ValidationError, and returns it. */
function validationErrorOf(fn: () => unknown): ValidationError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ValidationError) return error;
    throw error;
  }
  throw new Error('expected a ValidationError, but the call returned');
}

/** The field errors validating `input` reports. */
const errorsFor = (input: unknown, extra: readonly Validator<JobSubmissionInput>[] = []): FieldError[] =>
  validationErrorOf(() => validateSubmission(input, extra, NOW)).errors;

const fieldsOf = (errors: FieldError[]): string[] => errors.map((e) => e.field);

describe('validateSubmission', () => {
  describe('a minimal submission', () => {
    it('applies every default', () => {
      expect(validateSubmission(minimal(), [], NOW)).toEqual({
        backend: 'shell',
        payload: { command: 'echo hello' },
        queue: 'default',
        priority: 0,
        maxAttempts: 3,
        timeoutMs: null,
        labels: {},
        backoff: { type: 'exponential', baseMs: 1_000, maxMs: 300_000, jitter: 0.2 },
        idempotencyKey: null,
        runAt: null,
        concurrencyKey: null,
        fairnessKey: 'default',
        dependsOn: [],
        onParentFailure: 'cancel',
        requirements: null,
        placementDeadlineMs: null,
      });
    });

    it('does not share the default backoff object, so changing one job cannot change the defaults', () => {
      const submission = validateSubmission(minimal(), [], NOW);
      expect(submission.backoff).not.toBe(DEFAULT_BACKOFF);
    });
  });

  it('keeps every field a full submission gives', () => {
    const runAt = new Date(Date.now() + 3_600_000).toISOString();
    const input = {
      backend: 'k8s.batch',
      payload: ['a', 1],
      queue: 'reports_nightly-2',
      priority: -5,
      maxAttempts: 7,
      timeoutMs: 60_000,
      labels: { zone: 'eu-west-1', 'team.example.com/owner': 'data' },
      backoff: { type: 'fixed', baseMs: 500, maxMs: 10_000, jitter: 0 },
      idempotencyKey: 'order-42',
      runAt,
      concurrencyKey: 'customer-7',
      fairnessKey: 'tenant-a',
      onParentFailure: 'run',
      resources: { cpuMillis: 250, memoryMb: 512, gpu: 1 },
      constraints: ['zone in (a,b)', '!spot'],
      affinity: [{ constraint: 'ssd=true', weight: 30 }],
      worker: 'mock-host-1',
      placementDeadlineMs: 60_000,
    };
    const { resources, constraints, affinity, worker, ...rest } = input;
    expect(validateSubmission(input, [], NOW)).toEqual({
      ...rest,
      runAt: new Date(runAt),
      dependsOn: [],
      requirements: {
        resources,
        constraints: [
          { key: 'zone', op: 'in', values: ['a', 'b'] },
          { key: 'spot', op: 'notexists' },
        ],
        affinity: [{ constraint: { key: 'ssd', op: 'eq', value: 'true' }, weight: 30 }],
        worker,
      },
    });
  });

  it('completes a partial backoff policy with the defaults', () => {
    expect(validateSubmission(minimal({ backoff: { type: 'fixed' } }), [], NOW).backoff).toEqual({
      type: 'fixed',
      baseMs: 1_000,
      maxMs: 300_000,
      jitter: 0.2,
    });
  });

  describe('payload', () => {
    it.each([
      ['an object', { command: 'echo' }],
      ['an empty object', {}],
      ['an array', [1, 'two', { three: 3 }]],
      ['an empty array', []],
      ['a string', 'hello'],
      ['an empty string', ''],
      ['a number', 42],
      ['zero', 0],
      ['a negative fraction', -1.5],
      ['true', true],
      ['false', false],
    ])('accepts %s as the payload and keeps it as given', (_, payload) => {
      expect(validateSubmission(minimal({ payload }), [], NOW).payload).toEqual(payload);
    });

    it('rejects a null payload', () => {
      expect(errorsFor(minimal({ payload: null }))).toEqual([
        { field: 'payload', message: 'is required: any JSON value except null' },
      ]);
    });

    it('rejects a submission without a payload', () => {
      expect(errorsFor({ backend: 'shell' })).toEqual([
        { field: 'payload', message: 'is required: any JSON value except null' },
      ]);
    });
  });

  describe('collecting errors', () => {
    it('reports a bad backend, a bad priority and an unknown field together in one ValidationError', () => {
      const error = validationErrorOf(() =>
        validateSubmission({ backend: 'Not A Name', payload: 1, priority: 1.5, colour: 'red' }, [], NOW),
      );
      expect(error.errors).toHaveLength(3);
      expect(fieldsOf(error.errors).sort()).toEqual(['backend', 'colour', 'priority']);
      expect(error.message).toContain('backend: ');
      expect(error.message).toContain('priority: must be an integer');
      expect(error.message).toContain('colour: is not a known field');
    });

    it('reports one error for every bad field of a submission that gets everything wrong', () => {
      const errors = errorsFor({
        backend: 7,
        queue: '',
        priority: 'high',
        maxAttempts: 0,
        timeoutMs: -1,
        labels: 'zone=eu',
        backoff: 'exponential',
        idempotencyKey: '',
        delayMs: 1.5,
        extra: true,
      });
      expect(fieldsOf(errors).sort()).toEqual(
        [
          'backend',
          'backoff',
          'delayMs',
          'extra',
          'idempotencyKey',
          'labels',
          'maxAttempts',
          'payload',
          'priority',
          'queue',
          'timeoutMs',
        ].sort(),
      );
    });

    it('raises a ValidationError that maps to a 400 with a stable code', () => {
      const error = validationErrorOf(() => validateSubmission({ payload: 1 }, [], NOW));
      expect(error).toBeInstanceOf(BlixardError);
      expect(error.code).toBe('validation_failed');
      expect(error.status).toBe(400);
    });
  });

  describe('the request body', () => {
    it.each([
      ['null', null],
      ['undefined', undefined],
      ['an array', [{ backend: 'shell', payload: 1 }]],
      ['a string', '{"backend":"shell","payload":1}'],
      ['a number', 42],
      ['a boolean', true],
    ])('rejects %s as the body', (_, body) => {
      expect(errorsFor(body)).toEqual([{ field: '', message: 'the request body must be a JSON object' }]);
    });

    it('does not run any validator on a body that is not an object', () => {
      const extra = jest.fn(() => []);
      errorsFor('not an object', [extra]);
      expect(extra).not.toHaveBeenCalled();
    });
  });

  describe('unknown fields', () => {
    it('accepts every documented field', () => {
      expect(SUBMISSION_FIELDS).toEqual([
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
      ]);
    });

    it('reports each unknown field by name, so a typo is not silently ignored', () => {
      expect(errorsFor(minimal({ maxAttempt: 5, prio: 1 }))).toEqual([
        { field: 'maxAttempt', message: 'is not a known field' },
        { field: 'prio', message: 'is not a known field' },
      ]);
    });
  });

  describe('backend and queue', () => {
    it('requires a backend', () => {
      expect(errorsFor({ payload: 1 })).toEqual([{ field: 'backend', message: 'is required' }]);
    });

    it('rejects a backend that is not a string', () => {
      expect(errorsFor(minimal({ backend: 42 }))).toEqual([{ field: 'backend', message: 'must be a string' }]);
    });

    it.each(['', 'Shell', 'my backend', '-shell', '.shell', 'shell!', 'a'.repeat(64)])(
      'rejects %j as a backend name',
      (backend) => {
        expect(fieldsOf(errorsFor(minimal({ backend })))).toEqual(['backend']);
      },
    );

    it.each(['a', '0', 'shell', 'k8s.batch', 'my_backend-2', 'a'.repeat(63)])('accepts %j as a backend name', (backend) => {
      expect(validateSubmission(minimal({ backend }), [], NOW).backend).toBe(backend);
    });

    it('rejects a queue name that breaks the naming rule', () => {
      expect(fieldsOf(errorsFor(minimal({ queue: 'Urgent Jobs' })))).toEqual(['queue']);
      expect(fieldsOf(errorsFor(minimal({ queue: 3 })))).toEqual(['queue']);
    });
  });

  describe('numeric limits', () => {
    it.each([
      ['priority', LIMITS.priority.min],
      ['priority', LIMITS.priority.max],
      ['maxAttempts', 1],
      ['maxAttempts', 1_000],
      ['timeoutMs', 1],
      ['timeoutMs', 7 * DAY_MS],
      ['delayMs', 0],
      ['delayMs', 366 * DAY_MS],
    ])('accepts %s = %d, at its limit', (field, value) => {
      expect(() => validateSubmission(minimal({ [field]: value }), [], NOW)).not.toThrow();
    });

    it.each([
      ['priority', -1_000_001],
      ['priority', 1_000_001],
      ['maxAttempts', 0],
      ['maxAttempts', 1_001],
      ['timeoutMs', 0],
      ['timeoutMs', 7 * DAY_MS + 1],
      ['delayMs', -1],
      ['delayMs', 366 * DAY_MS + 1],
    ])('rejects %s = %d, past its limit', (field, value) => {
      expect(errorsFor(minimal({ [field]: value }))).toEqual([{ field, message: expect.stringMatching(/^must be between/) }]);
    });

    it.each(['priority', 'maxAttempts', 'timeoutMs', 'delayMs'])('rejects a fractional or textual %s', (field) => {
      expect(errorsFor(minimal({ [field]: 2.5 }))).toEqual([{ field, message: 'must be an integer' }]);
      expect(errorsFor(minimal({ [field]: '2' }))).toEqual([{ field, message: 'must be an integer' }]);
    });
  });

  describe('labels', () => {
    it('reports a bad key and a non-string value under the label they belong to', () => {
      expect(errorsFor(minimal({ labels: { 'bad key': 'x', zone: 3 } }))).toEqual([
        { field: 'labels.bad key', message: 'is not a valid label key' },
        { field: 'labels.zone', message: 'must be a string' },
      ]);
    });

    it('rejects labels that are not an object', () => {
      expect(errorsFor(minimal({ labels: ['zone'] }))).toEqual([
        { field: 'labels', message: 'must be an object of string values' },
      ]);
    });
  });

  describe('backoff', () => {
    it('rejects a backoff that is not an object', () => {
      expect(errorsFor(minimal({ backoff: 'exponential' }))).toEqual([{ field: 'backoff', message: 'must be an object' }]);
    });

    it('reports every bad backoff field by its path', () => {
      expect(errorsFor(minimal({ backoff: { type: 'linear', baseMs: -1, maxMs: 1.5, jitter: 2, factor: 3 } }))).toEqual([
        { field: 'backoff.factor', message: 'is not a known field' },
        { field: 'backoff.type', message: 'must be "exponential" or "fixed"' },
        { field: 'backoff.baseMs', message: `must be between 0 and ${LIMITS.delayMs.max}` },
        { field: 'backoff.maxMs', message: 'must be an integer' },
        { field: 'backoff.jitter', message: 'must be between 0 and 1' },
      ]);
    });

    it.each([0, 0.35, 1])('accepts a jitter of %d', (jitter) => {
      expect(validateSubmission(minimal({ backoff: { jitter } }), [], NOW).backoff.jitter).toBe(jitter);
    });
  });

  describe('idempotencyKey', () => {
    it('accepts a key of up to 255 characters', () => {
      const key = 'k'.repeat(255);
      expect(validateSubmission(minimal({ idempotencyKey: key }), [], NOW).idempotencyKey).toBe(key);
    });

    it.each([
      ['an empty key', ''],
      ['a key of 256 characters', 'k'.repeat(256)],
      ['a numeric key', 42],
      ['a null key', null],
    ])('rejects %s', (_, idempotencyKey) => {
      expect(errorsFor(minimal({ idempotencyKey }))).toEqual([
        { field: 'idempotencyKey', message: 'must be a string of 1-255 characters' },
      ]);
    });
  });

  describe('scheduling', () => {
    it('is ready now when neither runAt nor delayMs is given', () => {
      expect(validateSubmission(minimal(), [], NOW).runAt).toBeNull();
    });

    it('runs at the given runAt', () => {
      const runAt = new Date(Date.now() + 60_000).toISOString();
      expect(validateSubmission(minimal({ runAt }), [], NOW).runAt).toEqual(new Date(runAt));
    });

    it('accepts a runAt in the past, which makes the job ready now', () => {
      const submission = validateSubmission(minimal({ runAt: '2000-01-01T00:00:00Z' }), [], NOW);
      expect(submission.runAt).toEqual(new Date('2000-01-01T00:00:00Z'));
      expect(initialStatus(submission, NOW)).toBe('PENDING');
    });

    it('runs delayMs after now', () => {
      expect(validateSubmission(minimal({ delayMs: 5_000 }), [], NOW).runAt).toEqual(new Date(NOW.getTime() + 5_000));
    });

    it('is ready now when delayMs is 0', () => {
      expect(validateSubmission(minimal({ delayMs: 0 }), [], NOW).runAt).toBeNull();
    });

    it('refuses runAt and delayMs together', () => {
      const runAt = new Date(Date.now() + 60_000).toISOString();
      expect(errorsFor(minimal({ runAt, delayMs: 1_000 }))).toEqual([
        { field: 'runAt', message: 'give either runAt or delayMs, not both' },
      ]);
    });

    it('refuses runAt and delayMs together even when delayMs is 0', () => {
      const runAt = new Date(Date.now() + 60_000).toISOString();
      expect(fieldsOf(errorsFor(minimal({ runAt, delayMs: 0 })))).toEqual(['runAt']);
    });

    it.each([
      ['a string that is not a timestamp', 'tomorrow'],
      ['a number', 1_893_456_000_000],
      ['null', null],
    ])('rejects %s as runAt', (_, runAt) => {
      expect(errorsFor(minimal({ runAt }))).toEqual([{ field: 'runAt', message: 'must be an ISO 8601 timestamp' }]);
    });

    it('rejects a runAt more than a year from now', () => {
      const runAt = new Date(Date.now() + 367 * DAY_MS).toISOString();
      expect(errorsFor(minimal({ runAt }))).toEqual([{ field: 'runAt', message: 'must be within a year from now' }]);
    });
  });

  describe('extra validators', () => {
    const requireTeamLabel: Validator<JobSubmissionInput> = ({ labels }) =>
      typeof labels === 'object' && labels !== null && 'team' in labels ? [] : [{ field: 'labels.team', message: 'is required' }];

    it('runs a third-party validator on the submitted body', () => {
      const extra = jest.fn(() => []);
      const body = minimal({ labels: { team: 'data' } });
      validateSubmission(body, [extra], NOW);
      expect(extra).toHaveBeenCalledTimes(1);
      expect(extra).toHaveBeenCalledWith(body);
    });

    it('accepts a submission every extra validator approves', () => {
      expect(validateSubmission(minimal({ labels: { team: 'data' } }), [requireTeamLabel], NOW).labels).toEqual({ team: 'data' });
    });

    it('rejects a submission an extra validator objects to', () => {
      expect(errorsFor(minimal(), [requireTeamLabel])).toEqual([{ field: 'labels.team', message: 'is required' }]);
    });

    it('reports the extra errors after the built-in ones, all in one ValidationError', () => {
      const alwaysObjects: Validator<JobSubmissionInput> = () => [{ field: 'payload.size', message: 'is too large' }];
      expect(errorsFor({ payload: 1 }, [requireTeamLabel, alwaysObjects])).toEqual([
        { field: 'backend', message: 'is required' },
        { field: 'labels.team', message: 'is required' },
        { field: 'payload.size', message: 'is too large' },
      ]);
    });

    it('leaves the built-in validators as they were', () => {
      const before = [...SUBMISSION_VALIDATORS];
      validateSubmission(minimal({ labels: { team: 'data' } }), [requireTeamLabel], NOW);
      expect(SUBMISSION_VALIDATORS).toEqual(before);
    });
  });
});

describe('initialStatus', () => {
  it('starts a job with no runAt PENDING', () => {
    expect(initialStatus({ runAt: null }, NOW)).toBe('PENDING');
  });

  it('starts a job whose runAt is in the future SCHEDULED', () => {
    expect(initialStatus({ runAt: new Date(NOW.getTime() + 1) }, NOW)).toBe('SCHEDULED');
  });

  it('starts a job whose runAt is exactly now PENDING', () => {
    expect(initialStatus({ runAt: new Date(NOW.getTime()) }, NOW)).toBe('PENDING');
  });

  it('starts a job whose runAt has passed PENDING', () => {
    expect(initialStatus({ runAt: new Date(NOW.getTime() - 1) }, NOW)).toBe('PENDING');
  });

  it('schedules a submission with a delay', () => {
    expect(initialStatus(validateSubmission(minimal({ delayMs: 1 }), [], NOW), NOW)).toBe('SCHEDULED');
  });

  it('judges against the current time when no now is given', () => {
    expect(initialStatus({ runAt: new Date(Date.now() + 60_000) })).toBe('SCHEDULED');
    expect(initialStatus({ runAt: new Date(Date.now() - 60_000) })).toBe('PENDING');
  });
});

describe('dependencies and keys', () => {
  const parent = '0190d5a8-0000-7000-8000-000000000001';

  it('starts a job with parents BLOCKED and keeps its parents', () => {
    const sub = validateSubmission({ backend: 'mock', payload: 1, dependsOn: [parent.toUpperCase()], onParentFailure: 'run' });
    expect(sub).toMatchObject({ dependsOn: [parent], onParentFailure: 'run' });
    expect(initialStatus(sub)).toBe('BLOCKED');
  });

  it('refuses malformed, repeated or too many parents, and parents with a run-at', () => {
    const errors = (input: object) => {
      try {
        validateSubmission({ backend: 'mock', payload: 1, ...input });
        return [];
      } catch (err) {
        return (err as ValidationError).errors.map((e) => e.field);
      }
    };
    expect(errors({ dependsOn: ['nope', parent] })).toEqual(['dependsOn[0]']);
    expect(errors({ dependsOn: [parent, parent] })).toEqual(['dependsOn']);
    expect(errors({ dependsOn: [] })).toEqual(['dependsOn']);
    expect(errors({ dependsOn: Array.from({ length: 101 }, () => parent) })).toEqual(['dependsOn']);
    expect(errors({ dependsOn: [parent], delayMs: 10 })).toEqual(['dependsOn']);
    expect(errors({ onParentFailure: 'ignore' })).toEqual(['onParentFailure']);
    expect(errors({ concurrencyKey: '', fairnessKey: 7 })).toEqual(['concurrencyKey', 'fairnessKey']);
  });
});
