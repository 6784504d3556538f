import {
  ACTIVE_STATUSES,
  canTransition,
  guardFrom,
  InvalidTransitionError,
  isTerminal,
  JOB_STATUSES,
  JOB_TRANSITIONS,
  JobStatus,
  JobTransitionName,
  TERMINAL_STATUSES,
  transition,
  WAITING_STATUSES,
} from './lifecycle';

// Written out by hand rather than derived from lifecycle.ts, so that any change to the lifecycle
// there has to be made here too, on purpose.
const STATUSES: readonly JobStatus[] = [
  'BLOCKED',
  'SCHEDULED',
  'PENDING',
  'CLAIMED',
  'RUNNING',
  'COMPLETED',
  'FAILED',
  'CANCELLED',
];

const TRANSITIONS: readonly JobTransitionName[] = [
  'created',
  'released',
  'due',
  'claimed',
  'started',
  'completed',
  'retrying',
  'failed',
  'cancelled',
  'redriven',
  'unplaced',
];

type Outcome = JobStatus | '-';

/**
 * The lifecycle: a row per status a job is in (null: it does not exist yet), a column per
 * transition, and in each cell the status the transition leads to ('-': forbidden). For `created`
 * the cell is the default target; the other targets are checked separately.
 */
// prettier-ignore
const EXPECTED: ReadonlyArray<readonly [JobStatus | null, Readonly<Record<JobTransitionName, Outcome>>]> = [
  //                   created     released   due        claimed    started    completed    retrying     failed    cancelled    redriven   unplaced
  [null,        row(['PENDING', '-',       '-',       '-',       '-',       '-',         '-',         '-',      '-',         '-',       '-'     ])],
  ['BLOCKED',   row(['-',       'PENDING', '-',       '-',       '-',       '-',         '-',         '-',      'CANCELLED', '-',       '-'     ])],
  ['SCHEDULED', row(['-',       '-',       'PENDING', '-',       '-',       '-',         '-',         '-',      'CANCELLED', '-',       '-'     ])],
  ['PENDING',   row(['-',       '-',       '-',       'CLAIMED', '-',       '-',         '-',         '-',      'CANCELLED', '-',       'FAILED'])],
  ['CLAIMED',   row(['-',       '-',       '-',       '-',       'RUNNING', 'COMPLETED', 'SCHEDULED', 'FAILED', 'CANCELLED', '-',       '-'     ])],
  ['RUNNING',   row(['-',       '-',       '-',       '-',       '-',       'COMPLETED', 'SCHEDULED', 'FAILED', 'CANCELLED', '-',       '-'     ])],
  ['COMPLETED', row(['-',       '-',       '-',       '-',       '-',       '-',         '-',         '-',      '-',         '-',       '-'     ])],
  ['FAILED',    row(['-',       '-',       '-',       '-',       '-',       '-',         '-',         '-',      '-',         'PENDING', '-'     ])],
  ['CANCELLED', row(['-',       '-',       '-',       '-',       '-',       '-',         '-',         '-',      '-',         'PENDING', '-'     ])],
];

function row(cells: readonly Outcome[]): Record<JobTransitionName, Outcome> {
  if (cells.length !== TRANSITIONS.length) throw new Error(`a row needs ${TRANSITIONS.length} cells`);
  return Object.fromEntries(TRANSITIONS.map((name, i) => [name, cells[i]!])) as Record<JobTransitionName, Outcome>;
}

const describeStatus = (status: JobStatus | null): string => (status === null ? 'a job not yet created' : `a ${status} job`);

const CELLS = EXPECTED.flatMap(([status, outcomes]) =>
  TRANSITIONS.map((name) => ({ status, name, outcome: outcomes[name], who: describeStatus(status) })),
);
const ALLOWED = CELLS.filter((c) => c.outcome !== '-');
const FORBIDDEN = CELLS.filter((c) => c.outcome === '-');

/** Runs `fn`, which must throw, and returns what it threw. */
function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to throw, but it returned');
}

describe('the job lifecycle', () => {
  it('knows exactly the statuses the expected table lists, in lifecycle order', () => {
    expect([...JOB_STATUSES]).toEqual(STATUSES);
  });

  it('knows exactly the transitions the expected table lists', () => {
    expect(Object.keys(JOB_TRANSITIONS)).toEqual(TRANSITIONS);
  });

  it('names every transition after its own key, since events are typed by that name', () => {
    for (const name of TRANSITIONS) expect(JOB_TRANSITIONS[name].name).toBe(name);
  });

  it('covers every status plus creation in the expected table, each once', () => {
    expect(EXPECTED.map(([status]) => status)).toEqual([null, ...STATUSES]);
    expect(CELLS).toHaveLength((STATUSES.length + 1) * TRANSITIONS.length);
  });

  describe('allowed transitions', () => {
    it.each(ALLOWED)("lets $who be '$name', ending in $outcome", ({ status, name, outcome }) => {
      expect(canTransition(status, name)).toBe(true);
      expect(transition(status, name)).toBe(outcome);
    });
  });

  describe('forbidden transitions', () => {
    it.each(FORBIDDEN)("refuses to let $who be '$name'", ({ status, name }) => {
      expect(canTransition(status, name)).toBe(false);
      const error = thrownBy(() => transition(status, name));
      expect(error).toBeInstanceOf(InvalidTransitionError);
      expect(error).toMatchObject({ code: 'invalid_transition', name: 'InvalidTransitionError', transition: name, fromStatus: status, status: 409 });
    });
  });

  it('refuses to complete a PENDING job', () => {
    expect(() => transition('PENDING', 'completed')).toThrow(InvalidTransitionError);
  });

  it('refuses to start a RUNNING job a second time', () => {
    expect(() => transition('RUNNING', 'started')).toThrow(InvalidTransitionError);
  });

  it('accepts a completion report applied before the start report of the same attempt', () => {
    expect(transition('CLAIMED', 'completed')).toBe('COMPLETED');
  });

  it('says in the error which status refused the transition and where it is allowed from', () => {
    const error = thrownBy(() => transition('PENDING', 'completed')) as InvalidTransitionError;
    expect(error.message).toBe("a PENDING job cannot be 'completed' (allowed from CLAIMED, RUNNING)");
  });

  it('says in the error that a transition other than created cannot create a job', () => {
    const error = thrownBy(() => transition(null, 'claimed')) as InvalidTransitionError;
    expect(error.message).toBe("a job that does not exist yet cannot be 'claimed'");
  });

  describe('terminal statuses', () => {
    it('treats exactly COMPLETED, FAILED and CANCELLED as terminal', () => {
      expect([...TERMINAL_STATUSES].sort()).toEqual(['CANCELLED', 'COMPLETED', 'FAILED']);
      for (const status of STATUSES) {
        expect(isTerminal(status)).toBe(['COMPLETED', 'FAILED', 'CANCELLED'].includes(status));
      }
    });

    it.each([
      ['COMPLETED', []],
      ['FAILED', ['redriven']],
      ['CANCELLED', ['redriven']],
    ] as const)('lets a %s job leave only through %j', (status, expected) => {
      expect(TRANSITIONS.filter((name) => canTransition(status, name))).toEqual(expected);
    });

    it('redrives a FAILED or CANCELLED job back to PENDING', () => {
      expect(transition('FAILED', 'redriven')).toBe('PENDING');
      expect(transition('CANCELLED', 'redriven')).toBe('PENDING');
    });

    it('never redrives a COMPLETED job', () => {
      expect(() => transition('COMPLETED', 'redriven')).toThrow(InvalidTransitionError);
    });
  });

  describe('status groups', () => {
    it('holds a lease only while CLAIMED or RUNNING', () => {
      expect(ACTIVE_STATUSES).toEqual(['CLAIMED', 'RUNNING']);
    });

    it('waits before dispatch while BLOCKED, SCHEDULED or PENDING', () => {
      expect(WAITING_STATUSES).toEqual(['BLOCKED', 'SCHEDULED', 'PENDING']);
    });

    it('puts every status in exactly one of waiting, active and terminal', () => {
      const grouped = [...WAITING_STATUSES, ...ACTIVE_STATUSES, ...TERMINAL_STATUSES];
      expect([...grouped].sort()).toEqual([...STATUSES].sort());
      expect(new Set(grouped).size).toBe(grouped.length);
    });
  });

  describe('creation', () => {
    it('creates a job PENDING when no target is given', () => {
      expect(transition(null, 'created')).toBe('PENDING');
    });

    it.each(['PENDING', 'SCHEDULED', 'BLOCKED'] as const)('creates a job %s when asked to', (target) => {
      expect(transition(null, 'created', target)).toBe(target);
    });

    it.each(['CLAIMED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED'] as const)(
      'refuses to create a job %s',
      (target) => {
        const error = thrownBy(() => transition(null, 'created', target));
        expect(error).toBeInstanceOf(InvalidTransitionError);
        expect(error).toMatchObject({ code: 'invalid_transition', transition: 'created', fromStatus: null });
      },
    );

    it.each(STATUSES)('refuses to create a job that already exists as %s', (status) => {
      expect(() => transition(status, 'created', 'PENDING')).toThrow(InvalidTransitionError);
    });
  });

  describe('explicit targets for single-target transitions', () => {
    it('accepts the one target a transition leads to', () => {
      expect(transition('PENDING', 'claimed', 'CLAIMED')).toBe('CLAIMED');
      expect(transition('RUNNING', 'retrying', 'SCHEDULED')).toBe('SCHEDULED');
    });

    it('refuses a target the transition does not lead to', () => {
      const error = thrownBy(() => transition('PENDING', 'claimed', 'RUNNING'));
      expect(error).toBeInstanceOf(InvalidTransitionError);
      expect(error).toMatchObject({ code: 'invalid_transition', transition: 'claimed', fromStatus: 'PENDING' });
      expect(() => transition('RUNNING', 'failed', 'COMPLETED')).toThrow(InvalidTransitionError);
    });
  });

  describe('guardFrom', () => {
    it.each([
      ['released', ['BLOCKED']],
      ['due', ['SCHEDULED']],
      ['claimed', ['PENDING']],
      ['started', ['CLAIMED']],
      ['completed', ['CLAIMED', 'RUNNING']],
      ['retrying', ['CLAIMED', 'RUNNING']],
      ['failed', ['CLAIMED', 'RUNNING']],
      ['cancelled', ['BLOCKED', 'SCHEDULED', 'PENDING', 'CLAIMED', 'RUNNING']],
      ['redriven', ['FAILED', 'CANCELLED']],
      ['unplaced', ['PENDING']],
    ] as const)("guards '%s' with status = ANY(%j)", (name, from) => {
      expect(guardFrom(name)).toEqual(from);
    });

    it('agrees with canTransition for every transition that has a guard', () => {
      for (const name of TRANSITIONS.filter((n) => n !== 'created')) {
        expect(guardFrom(name)).toEqual(STATUSES.filter((status) => canTransition(status, name)));
      }
    });

    it('has no guard for created, which applies to no existing job', () => {
      const error = thrownBy(() => guardFrom('created'));
      expect(error).toBeInstanceOf(InvalidTransitionError);
      expect(error).toMatchObject({ code: 'invalid_transition', transition: 'created', fromStatus: null });
    });

    it('returns a copy, so a caller cannot change the lifecycle by mutating it', () => {
      const from = guardFrom('cancelled');
      from.length = 0;
      from.push('COMPLETED');
      expect(guardFrom('cancelled')).toEqual(['BLOCKED', 'SCHEDULED', 'PENDING', 'CLAIMED', 'RUNNING']);
      expect(canTransition('COMPLETED', 'cancelled')).toBe(false);
    });
  });
});
