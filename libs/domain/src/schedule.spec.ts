import { BlixardError, FieldError, ValidationError } from './errors';
import {
  CatchUpPolicy,
  dueFireTimes,
  nextFireTime,
  SCHEDULE_FIELDS,
  ScheduleDefinition,
  validateSchedule,
} from './schedule';
import { validateSubmission } from './submission';

const NOW = new Date('2030-01-15T10:07:30.000Z');
const at = (iso: string): Date => new Date(iso);
const isoOf = (dates: Date[]): string[] => dates.map((d) => d.toISOString());

const template = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  backend: 'shell',
  payload: { command: 'echo hello' },
  ...extra,
});

/** The smallest valid schedule. */
const minimal = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  cron: '0 9 * * *',
  template: template(),
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

const errorsFor = (input: unknown): FieldError[] => validationErrorOf(() => validateSchedule(input, NOW)).errors;
const fieldsOf = (errors: FieldError[]): string[] => errors.map((e) => e.field).sort();

describe('validateSchedule', () => {
  it('applies every default to a minimal schedule and validates its template as a job submission', () => {
    expect(validateSchedule(minimal(), NOW)).toEqual({
      name: null,
      cron: '0 9 * * *',
      timezone: 'UTC',
      template: validateSubmission(template(), [], NOW),
      overlap: 'allow',
      catchUp: 'none',
      catchUpLimit: 100,
      paused: false,
    });
  });

  it('keeps every field a full schedule gives', () => {
    const input = {
      name: 'nightly report',
      cron: '0 30 2 * * 1-5',
      timezone: 'Europe/Oslo',
      template: template({ queue: 'reports', priority: 5 }),
      overlap: 'cancel_previous',
      catchUp: 'all',
      catchUpLimit: 7,
      paused: true,
    };
    expect(validateSchedule(input, NOW)).toEqual({
      ...input,
      template: validateSubmission(template({ queue: 'reports', priority: 5 }), [], NOW),
    });
  });

  it('accepts every documented field and no other', () => {
    expect(SCHEDULE_FIELDS).toEqual(['name', 'cron', 'timezone', 'template', 'overlap', 'catchUp', 'catchUpLimit', 'paused']);
    expect(errorsFor(minimal({ timeZone: 'UTC' }))).toEqual([{ field: 'timeZone', message: 'is not a known field' }]);
  });

  describe('cron', () => {
    it.each([
      ['5 fields', '*/15 9-17 * * MON-FRI'],
      ['6 fields with seconds first', '*/30 * * * * *'],
      ['day and month names', '0 0 1 JAN,JUL *'],
      ['the last day of the month', '0 0 L * *'],
      ['the nth weekday of the month', '0 0 * * 1#2'],
    ])('accepts %s', (_, cron) => {
      expect(validateSchedule(minimal({ cron }), NOW).cron).toBe(cron);
    });

    it('normalises the whitespace between fields to single spaces', () => {
      expect(validateSchedule(minimal({ cron: '  */5   *\t* * *  ' }), NOW).cron).toBe('*/5 * * * *');
    });

    it.each([
      ['4 fields', '0 9 * *', 4],
      ['7 fields', '0 0 9 * * * 2030', 7],
      ['a macro', '@daily', 1],
      ['an empty string', '', 0],
    ])('rejects %s, saying how many fields it needs', (_, cron, count) => {
      expect(errorsFor(minimal({ cron }))).toEqual([
        {
          field: 'cron',
          message: `must have 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), got ${count}`,
        },
      ]);
    });

    it.each([
      ['an out-of-range minute', '61 * * * *', /61/],
      ['letters where numbers belong', 'a b c d e', /Invalid characters/],
      ['a backwards range', '5-1 * * * *', /Invalid range/],
      ['a step of zero', '*/0 * * * *', /every 0/],
      ['a day that no month has', '0 0 30 2 *', /day of month/],
    ])("rejects %s with the parser's reason", (_, cron, reason) => {
      const errors = errorsFor(minimal({ cron }));
      expect(errors).toHaveLength(1);
      expect(errors[0].field).toBe('cron');
      expect(errors[0].message).toMatch(/^is not a valid cron expression: /);
      expect(errors[0].message).toMatch(reason);
    });

    it.each(['0 0 31 2,4 *', '0 0 0 31 4,6 ?'])('rejects %s, which names days that none of its months has', (cron) => {
      expect(errorsFor(minimal({ cron }))).toEqual([{ field: 'cron', message: expect.stringMatching(/never fires|not a valid cron expression/) }]);
    });

    it.each(['0 0 29 2 *', '0 0 31 1,2 *', '0 0 31 2,4 MON', '0 0 L 2 *'])('accepts %s, which fires on some date', (cron) => {
      expect(validateSchedule(minimal({ cron }), NOW).cron).toBe(cron);
    });

    it('rejects hashed values, which would pick a different time on every parse', () => {
      expect(errorsFor(minimal({ cron: 'H * * * *' }))).toEqual([
        { field: 'cron', message: 'hashed values (H) are not supported' },
      ]);
    });

    it('accepts a THU day name, which is not a hashed value', () => {
      expect(validateSchedule(minimal({ cron: '0 9 * * THU' }), NOW).cron).toBe('0 9 * * THU');
    });

    it('is required and must be a string', () => {
      expect(errorsFor({ template: template() })).toEqual([{ field: 'cron', message: 'is required' }]);
      expect(errorsFor(minimal({ cron: 5 }))).toEqual([{ field: 'cron', message: 'must be a string' }]);
    });
  });

  describe('timezone', () => {
    it.each(['Europe/Oslo', 'America/New_York', 'Asia/Kolkata', 'UTC'])('accepts the IANA zone %s as given', (timezone) => {
      expect(validateSchedule(minimal({ timezone }), NOW).timezone).toBe(timezone);
    });

    it.each([['an unknown zone', 'Mars/Olympus'], ['a misspelt zone', 'Europe/Osl'], ['an empty string', ''], ['a number', 1]])(
      'rejects %s',
      (_, timezone) => {
        expect(errorsFor(minimal({ timezone }))).toEqual([
          { field: 'timezone', message: 'must be an IANA time zone, e.g. "UTC" or "Europe/Oslo"' },
        ]);
      },
    );
  });

  describe('template', () => {
    it('is required', () => {
      expect(errorsFor({ cron: '0 9 * * *' })).toEqual([{ field: 'template', message: 'is required' }]);
    });

    it.each([['a string', 'echo hello'], ['an array', [template()]], ['null', null]])('must be an object, not %s', (_, value) => {
      expect(errorsFor(minimal({ template: value }))).toEqual([{ field: 'template', message: 'must be an object' }]);
    });

    it("reports the job submission's errors under template.<field>", () => {
      const errors = errorsFor(minimal({ template: { backend: 'Not A Name', priority: 1.5, colour: 'red' } }));
      expect(fieldsOf(errors)).toEqual(['template.backend', 'template.colour', 'template.payload', 'template.priority']);
      expect(errors).toContainEqual({ field: 'template.priority', message: 'must be an integer' });
      expect(errors).toContainEqual({ field: 'template.colour', message: 'is not a known field' });
    });

    it.each([
      ['idempotencyKey', 'order-42'],
      ['runAt', '2030-02-01T00:00:00.000Z'],
      ['delayMs', 1_000],
    ])('may not give %s, which the scheduler sets for each fire time', (field, value) => {
      expect(errorsFor(minimal({ template: template({ [field]: value }) }))).toEqual([
        { field: `template.${field}`, message: 'is set by the scheduler for each fire time' },
      ]);
    });

    it('reports a scheduler-set field once, even when its value would be invalid too', () => {
      expect(errorsFor(minimal({ template: template({ runAt: 'tomorrow' }) }))).toEqual([
        { field: 'template.runAt', message: 'is set by the scheduler for each fire time' },
      ]);
    });

    it('reports scheduler-set fields and submission errors together', () => {
      const errors = errorsFor(minimal({ template: { backend: 'shell', idempotencyKey: 'k', delayMs: 5 } }));
      expect(fieldsOf(errors)).toEqual(['template.delayMs', 'template.idempotencyKey', 'template.payload']);
    });
  });

  describe('policies and the other fields', () => {
    it.each<[string, Record<string, unknown>, Partial<ScheduleDefinition>]>([
      ['overlap "skip"', { overlap: 'skip' }, { overlap: 'skip' }],
      ['catchUp "latest"', { catchUp: 'latest' }, { catchUp: 'latest' }],
      ['the smallest catchUpLimit', { catchUpLimit: 1 }, { catchUpLimit: 1 }],
      ['the largest catchUpLimit', { catchUpLimit: 1_000 }, { catchUpLimit: 1_000 }],
      ['a null name as no name', { name: null }, { name: null }],
      ['a 200-character name', { name: 'n'.repeat(200) }, { name: 'n'.repeat(200) }],
      ['paused false', { paused: false }, { paused: false }],
    ])('accepts %s', (_, extra, expected) => {
      expect(validateSchedule(minimal(extra), NOW)).toMatchObject(expected);
    });

    it.each([
      ['overlap', 'never', 'must be one of "allow", "skip", "cancel_previous"'],
      ['catchUp', 'some', 'must be one of "none", "latest", "all"'],
      ['catchUpLimit', 0, 'must be between 1 and 1000'],
      ['catchUpLimit', 1_001, 'must be between 1 and 1000'],
      ['catchUpLimit', 1.5, 'must be an integer'],
      ['catchUpLimit', '10', 'must be an integer'],
      ['paused', 'yes', 'must be a boolean'],
      ['name', '', 'must be a string of 1-200 characters'],
      ['name', 'n'.repeat(201), 'must be a string of 1-200 characters'],
      ['name', 42, 'must be a string of 1-200 characters'],
    ])('rejects %s %j', (field, value, message) => {
      expect(errorsFor(minimal({ [field]: value }))).toEqual([{ field, message }]);
    });
  });

  describe('collecting errors', () => {
    it('reports a bad cron, a bad time zone, a missing template and an unknown field in one ValidationError', () => {
      const error = validationErrorOf(() =>
        validateSchedule({ cron: '0 9 * *', timezone: 'Mars/Olympus', every: 'day' }, NOW),
      );
      expect(fieldsOf(error.errors)).toEqual(['cron', 'every', 'template', 'timezone']);
      expect(error.message).toContain('cron: must have 5 fields');
      expect(error.message).toContain('template: is required');
    });

    it("reports the template's errors together with the schedule's own", () => {
      const errors = errorsFor({ cron: '61 * * * *', catchUp: 'every', template: { payload: 1, runAt: 'soon' } });
      expect(fieldsOf(errors)).toEqual(['catchUp', 'cron', 'template.backend', 'template.runAt']);
    });

    it('raises a ValidationError that maps to a 400 with a stable code', () => {
      const error = validationErrorOf(() => validateSchedule({}, NOW));
      expect(error).toBeInstanceOf(BlixardError);
      expect(error.code).toBe('validation_failed');
      expect(error.status).toBe(400);
    });

    it.each([['null', null], ['an array', [minimal()]], ['a string', '0 9 * * *']])('rejects %s as the body', (_, body) => {
      expect(errorsFor(body)).toEqual([{ field: '', message: 'the request body must be a JSON object' }]);
    });
  });
});

describe('nextFireTime', () => {
  it('returns the next fire time of a 5-field expression', () => {
    expect(nextFireTime('*/15 * * * *', 'UTC', NOW)).toEqual(at('2030-01-15T10:15:00.000Z'));
  });

  it('returns a time strictly after `after`, even when `after` is itself a fire time', () => {
    expect(nextFireTime('*/15 * * * *', 'UTC', at('2030-01-15T10:15:00.000Z'))).toEqual(at('2030-01-15T10:30:00.000Z'));
  });

  it('reads the first of 6 fields as seconds', () => {
    expect(nextFireTime('*/10 * * * * *', 'UTC', NOW)).toEqual(at('2030-01-15T10:07:40.000Z'));
    expect(nextFireTime('*/10 * * * * *', 'UTC', at('2030-01-15T10:07:39.999Z'))).toEqual(at('2030-01-15T10:07:40.000Z'));
  });

  it('skips to the next matching weekday', () => {
    // 2030-01-18 is a Friday.
    expect(nextFireTime('0 9 * * MON-FRI', 'UTC', at('2030-01-18T10:00:00.000Z'))).toEqual(at('2030-01-21T09:00:00.000Z'));
  });

  it('reads the fields in the time zone: 09:00 in Oslo is 08:00Z in winter and 07:00Z in summer', () => {
    expect(nextFireTime('0 9 * * *', 'Europe/Oslo', at('2030-01-15T00:00:00.000Z'))).toEqual(at('2030-01-15T08:00:00.000Z'));
    expect(nextFireTime('0 9 * * *', 'Europe/Oslo', at('2030-07-15T00:00:00.000Z'))).toEqual(at('2030-07-15T07:00:00.000Z'));
    expect(nextFireTime('0 9 * * *', 'America/New_York', at('2030-01-15T00:00:00.000Z'))).toEqual(
      at('2030-01-15T14:00:00.000Z'),
    );
  });

  it('fires once on the night the clocks go back, although 02:30 happens twice', () => {
    // Oslo, 2030-10-27: 03:00 CEST becomes 02:00 CET.
    const first = nextFireTime('30 2 * * *', 'Europe/Oslo', at('2030-10-26T12:00:00.000Z'));
    expect(first).toEqual(at('2030-10-27T00:30:00.000Z'));
    expect(nextFireTime('30 2 * * *', 'Europe/Oslo', first)).toEqual(at('2030-10-28T01:30:00.000Z'));
  });

  it('runs a time that falls in the spring-forward gap right after the gap instead of skipping the day', () => {
    // Oslo, 2030-03-31: 02:00 CET becomes 03:00 CEST, so 02:30 does not exist; it runs at 03:30 CEST.
    expect(nextFireTime('30 2 * * *', 'Europe/Oslo', at('2030-03-30T12:00:00.000Z'))).toEqual(
      at('2030-03-31T01:30:00.000Z'),
    );
  });

  // cron-parser before 5.6 skipped the fire times after the gap on a spring-forward day
  // (harrisiirak/cron-parser#400); 5.10.6 is pinned for this.
  it('fires at 09:00 on the spring-forward day itself (cron-parser before 5.6 skipped it)', () => {
    expect(nextFireTime('0 9 * * *', 'Europe/Oslo', at('2030-03-30T12:00:00.000Z'))).toEqual(
      at('2030-03-31T07:00:00.000Z'),
    );
  });

  it('throws a ValidationError naming both a bad cron and a bad time zone', () => {
    const error = validationErrorOf(() => nextFireTime('0 9 * *', 'Mars/Olympus', NOW));
    expect(fieldsOf(error.errors)).toEqual(['cron', 'timezone']);
  });
});

describe('dueFireTimes', () => {
  /** Fires at :00, :15, :30 and :45; at NOW (10:07:30) the latest fire time is 10:00. */
  const quarterHourly = (catchUp: CatchUpPolicy, catchUpLimit = 100) => ({
    cron: '*/15 * * * *',
    timezone: 'UTC',
    catchUp,
    catchUpLimit,
  });
  const GRACE_MS = 60_000;

  it.each<CatchUpPolicy>(['none', 'latest', 'all'])(
    'with %s, returns nothing when no fire time passed since the last handled one',
    (catchUp) => {
      expect(dueFireTimes(quarterHourly(catchUp), at('2030-01-15T10:00:00.000Z'), NOW, GRACE_MS)).toEqual([]);
    },
  );

  it('returns nothing when `now` is before `since`', () => {
    expect(dueFireTimes(quarterHourly('all'), at('2030-01-15T11:00:00.000Z'), NOW, GRACE_MS)).toEqual([]);
  });

  it('does not repeat `since` when it is a fire time, and includes `now` when it is one', () => {
    const fires = dueFireTimes(quarterHourly('all'), at('2030-01-15T09:30:00.000Z'), at('2030-01-15T10:00:00.000Z'), GRACE_MS);
    expect(isoOf(fires)).toEqual(['2030-01-15T09:45:00.000Z', '2030-01-15T10:00:00.000Z']);
  });

  describe('catch-up "all"', () => {
    it('returns every fire time missed since the last handled one, oldest first', () => {
      const fires = dueFireTimes(quarterHourly('all'), at('2030-01-15T08:50:00.000Z'), NOW, GRACE_MS);
      expect(isoOf(fires)).toEqual([
        '2030-01-15T09:00:00.000Z',
        '2030-01-15T09:15:00.000Z',
        '2030-01-15T09:30:00.000Z',
        '2030-01-15T09:45:00.000Z',
        '2030-01-15T10:00:00.000Z',
      ]);
    });

    it('returns only the latest catchUpLimit of them, oldest first', () => {
      const fires = dueFireTimes(quarterHourly('all', 3), at('2030-01-14T00:00:00.000Z'), NOW, GRACE_MS);
      expect(isoOf(fires)).toEqual(['2030-01-15T09:30:00.000Z', '2030-01-15T09:45:00.000Z', '2030-01-15T10:00:00.000Z']);
    });

    it('reads the fields in the time zone', () => {
      const daily = { cron: '0 9 * * *', timezone: 'Europe/Oslo', catchUp: 'all' as const, catchUpLimit: 10 };
      const fires = dueFireTimes(daily, at('2030-01-13T08:00:00.000Z'), NOW, GRACE_MS);
      expect(isoOf(fires)).toEqual(['2030-01-14T08:00:00.000Z', '2030-01-15T08:00:00.000Z']);
    });

    it.each([
      [10, ['2030-10-26T00:30:00.000Z', '2030-10-27T00:30:00.000Z', '2030-10-28T01:30:00.000Z']],
      [2, ['2030-10-27T00:30:00.000Z', '2030-10-28T01:30:00.000Z']],
    ])('makes one fire time a day across the night the clocks go back (catchUpLimit %i)', (catchUpLimit, expected) => {
      const def = { cron: '30 2 * * *', timezone: 'Europe/Oslo', catchUp: 'all' as const, catchUpLimit };
      const fires = dueFireTimes(def, at('2030-10-25T12:00:00.000Z'), at('2030-10-28T12:00:00.000Z'), GRACE_MS);
      expect(isoOf(fires)).toEqual(expected);
    });
  });

  describe('catch-up "latest"', () => {
    it('returns only the most recent missed fire time', () => {
      const fires = dueFireTimes(quarterHourly('latest'), at('2030-01-15T08:50:00.000Z'), NOW, GRACE_MS);
      expect(isoOf(fires)).toEqual(['2030-01-15T10:00:00.000Z']);
    });

    it('returns the one 02:30 that fired on the night the clocks go back, not its repeat', () => {
      // Oslo, 2030-10-27: 02:30 CEST (00:30Z) fires; 02:30 CET (01:30Z) comes round again but does not.
      const def = { cron: '30 2 * * *', timezone: 'Europe/Oslo', catchUp: 'latest' as const, catchUpLimit: 100 };
      const fires = dueFireTimes(def, at('2030-10-26T12:00:00.000Z'), at('2030-10-27T02:00:00.000Z'), GRACE_MS);
      expect(isoOf(fires)).toEqual(['2030-10-27T00:30:00.000Z']);
    });
  });

  describe('catch-up "none"', () => {
    it('returns the fire time that is due now, within the grace period', () => {
      const fires = dueFireTimes(quarterHourly('none'), at('2030-01-15T09:00:00.000Z'), at('2030-01-15T10:00:20.000Z'), GRACE_MS);
      expect(isoOf(fires)).toEqual(['2030-01-15T10:00:00.000Z']);
    });

    it('drops fire times missed during downtime, older than the grace period', () => {
      expect(dueFireTimes(quarterHourly('none'), at('2030-01-15T09:00:00.000Z'), NOW, GRACE_MS)).toEqual([]);
    });

    it('with no grace, returns a fire time only at that very moment', () => {
      const onTime = dueFireTimes(quarterHourly('none'), at('2030-01-15T09:50:00.000Z'), at('2030-01-15T10:00:00.000Z'), 0);
      expect(isoOf(onTime)).toEqual(['2030-01-15T10:00:00.000Z']);
      const late = dueFireTimes(quarterHourly('none'), at('2030-01-15T09:50:00.000Z'), at('2030-01-15T10:00:00.001Z'), 0);
      expect(late).toEqual([]);
    });

    it('does not repeat a fire time within the grace period that was already handled', () => {
      const fires = dueFireTimes(quarterHourly('none'), at('2030-01-15T10:00:00.000Z'), at('2030-01-15T10:00:20.000Z'), GRACE_MS);
      expect(fires).toEqual([]);
    });

    it('returns every fire time within a grace period longer than the interval, at most catchUpLimit', () => {
      const since = at('2030-01-15T09:00:00.000Z');
      expect(isoOf(dueFireTimes(quarterHourly('none'), since, NOW, 30 * 60_000))).toEqual([
        '2030-01-15T09:45:00.000Z',
        '2030-01-15T10:00:00.000Z',
      ]);
      expect(isoOf(dueFireTimes(quarterHourly('none', 1), since, NOW, 30 * 60_000))).toEqual(['2030-01-15T10:00:00.000Z']);
    });
  });

  describe('a schedule that fires every second, last handled a year ago', () => {
    const everySecond = (catchUp: CatchUpPolicy, catchUpLimit = 100) => ({
      cron: '* * * * * *',
      timezone: 'Europe/Oslo',
      catchUp,
      catchUpLimit,
    });
    const yearAgo = at('2029-01-15T10:07:30.000Z');
    const now = at('2030-01-15T10:07:30.250Z');

    // A year of seconds is 31.5 million fire times: these only finish because the walk starts at `now`.
    it('with "latest", returns the one most recent second', () => {
      expect(isoOf(dueFireTimes(everySecond('latest'), yearAgo, now, GRACE_MS))).toEqual(['2030-01-15T10:07:30.000Z']);
    });

    it('with "all", returns the latest catchUpLimit seconds', () => {
      const fires = dueFireTimes(everySecond('all', 1_000), yearAgo, now, GRACE_MS);
      expect(fires).toHaveLength(1_000);
      expect(fires[0]).toEqual(at('2030-01-15T09:50:51.000Z'));
      expect(fires[999]).toEqual(at('2030-01-15T10:07:30.000Z'));
      expect(fires.every((t, i) => i === 0 || t.getTime() - fires[i - 1].getTime() === 1_000)).toBe(true);
    });

    it('with "none", returns the seconds within the grace period', () => {
      const fires = dueFireTimes(everySecond('none'), yearAgo, now, 2_000);
      expect(isoOf(fires)).toEqual(['2030-01-15T10:07:29.000Z', '2030-01-15T10:07:30.000Z']);
    });
  });

  it('rejects a negative grace period and invalid dates, which are bugs in the caller', () => {
    const since = at('2030-01-15T09:00:00.000Z');
    expect(() => dueFireTimes(quarterHourly('none'), since, NOW, -1)).toThrow(RangeError);
    expect(() => dueFireTimes(quarterHourly('all'), at('not a date'), NOW, GRACE_MS)).toThrow(RangeError);
    expect(() => dueFireTimes(quarterHourly('all'), since, at('not a date'), GRACE_MS)).toThrow(RangeError);
  });

  it('throws a ValidationError for a bad cron expression', () => {
    const def = { ...quarterHourly('all'), cron: '*/15 * * *' };
    expect(fieldsOf(validationErrorOf(() => dueFireTimes(def, at('2030-01-15T09:00:00.000Z'), NOW, GRACE_MS)).errors)).toEqual([
      'cron',
    ]);
  });
});
