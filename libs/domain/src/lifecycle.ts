import { BlixardError } from './errors';

/**
 * The job lifecycle as one transition table (ARCHITECTURE.md, "Job lifecycle").
 *
 * Every status change anywhere in Blixard — an executor's report, the reconciler's recovery, an
 * API action — is one of these transitions, and every transition emits exactly one event whose
 * type is the transition's name (`dev.blixard.job.<transition>`). The SQL that applies a
 * transition is guarded by `status = ANY(from)`, so the table is also the fencing rule.
 */
export const JOB_STATUSES = [
  'BLOCKED',
  'SCHEDULED',
  'PENDING',
  'CLAIMED',
  'RUNNING',
  'COMPLETED',
  'FAILED',
  'CANCELLED',
] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export const TERMINAL_STATUSES: readonly JobStatus[] = ['COMPLETED', 'FAILED', 'CANCELLED'];
/** Statuses in which an attempt exists and holds a lease. */
export const ACTIVE_STATUSES: readonly JobStatus[] = ['CLAIMED', 'RUNNING'];
/** Statuses in which a job waits for something before it may be dispatched. */
export const WAITING_STATUSES: readonly JobStatus[] = ['BLOCKED', 'SCHEDULED', 'PENDING'];

export function isTerminal(status: JobStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

export type JobTransitionName =
  | 'created'
  | 'released'
  | 'due'
  | 'claimed'
  | 'started'
  | 'completed'
  | 'retrying'
  | 'failed'
  | 'cancelled'
  | 'redriven'
  | 'unplaced';

export interface JobTransition {
  readonly name: JobTransitionName;
  /** Statuses the transition may start from; `null` for creation. */
  readonly from: readonly JobStatus[] | null;
  /** Statuses the transition may end in (creation picks one from the submission). */
  readonly to: readonly JobStatus[];
  readonly description: string;
}

export const JOB_TRANSITIONS: Readonly<Record<JobTransitionName, JobTransition>> = {
  created: {
    name: 'created',
    from: null,
    to: ['PENDING', 'SCHEDULED', 'BLOCKED'],
    description: 'submitted: ready now, waiting for its run-at, or waiting for dependencies',
  },
  released: {
    name: 'released',
    from: ['BLOCKED'],
    to: ['PENDING'],
    description: 'all dependencies completed',
  },
  due: {
    name: 'due',
    from: ['SCHEDULED'],
    to: ['PENDING'],
    description: 'its run-at (delay or retry backoff) has passed',
  },
  claimed: {
    name: 'claimed',
    from: ['PENDING'],
    to: ['CLAIMED'],
    description: 'a scheduler took the next attempt and dispatched it to an executor',
  },
  started: {
    name: 'started',
    from: ['CLAIMED'],
    to: ['RUNNING'],
    description: 'an executor began the attempt',
  },
  completed: {
    name: 'completed',
    // CLAIMED too: reports of one attempt may be applied out of order by concurrent schedulers.
    from: ['CLAIMED', 'RUNNING'],
    to: ['COMPLETED'],
    description: 'the attempt succeeded',
  },
  retrying: {
    name: 'retrying',
    from: ['CLAIMED', 'RUNNING'],
    to: ['SCHEDULED'],
    description: 'the attempt failed (or its lease expired) and attempts remain: back off, then retry',
  },
  failed: {
    name: 'failed',
    from: ['CLAIMED', 'RUNNING'],
    to: ['FAILED'],
    description: 'the attempt failed and no attempts remain, or the error is not retryable',
  },
  cancelled: {
    name: 'cancelled',
    from: ['BLOCKED', 'SCHEDULED', 'PENDING', 'CLAIMED', 'RUNNING'],
    to: ['CANCELLED'],
    description: 'cancelled on request; a running attempt is told to stop',
  },
  redriven: {
    name: 'redriven',
    from: ['FAILED', 'CANCELLED'],
    to: ['PENDING'],
    description: 'a FAILED or CANCELLED job was given a new attempt budget',
  },
  unplaced: {
    name: 'unplaced',
    from: ['PENDING'],
    to: ['FAILED'],
    description: 'no worker could take the job before its placement deadline',
  },
};

export class InvalidTransitionError extends BlixardError {
  readonly code = 'invalid_transition';
  readonly status = 409;
  constructor(
    readonly transition: JobTransitionName,
    readonly fromStatus: JobStatus | null,
  ) {
    super(
      fromStatus === null
        ? `a job that does not exist yet cannot be '${transition}'`
        : `a ${fromStatus} job cannot be '${transition}' (allowed from ${describeFrom(transition)})`,
    );
    this.name = 'InvalidTransitionError';
  }
}

function describeFrom(name: JobTransitionName): string {
  const from = JOB_TRANSITIONS[name].from;
  return from === null ? 'creation only' : from.join(', ');
}

/** Whether `name` may be applied to a job in `status` (`null`: a job that does not exist yet). */
export function canTransition(status: JobStatus | null, name: JobTransitionName): boolean {
  const t = JOB_TRANSITIONS[name];
  if (status === null) return t.from === null;
  return t.from !== null && t.from.includes(status);
}

/**
 * Applies `name` to a job in `status` and returns the status it ends in. `to` chooses among the
 * transition's targets (only `created` has several). Throws InvalidTransitionError otherwise.
 */
export function transition(
  status: JobStatus | null,
  name: JobTransitionName,
  to?: JobStatus,
): JobStatus {
  if (!canTransition(status, name)) throw new InvalidTransitionError(name, status);
  const targets = JOB_TRANSITIONS[name].to;
  const target = to ?? targets[0]!;
  if (!targets.includes(target)) {
    throw new InvalidTransitionError(name, status);
  }
  return target;
}

/** The statuses a transition may start from, for the SQL guard `status = ANY($from)`. */
export function guardFrom(name: JobTransitionName): JobStatus[] {
  const from = JOB_TRANSITIONS[name].from;
  if (from === null) throw new InvalidTransitionError(name, null);
  return [...from];
}
