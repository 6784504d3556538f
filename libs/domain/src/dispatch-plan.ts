import { DEFAULT_PLACEMENT_POLICY, FleetWorker, hasRequirements, placeAttempt, PlacementPolicy, PlacementRequirements, reserveOn } from './placement';

/**
 * Which ready jobs to dispatch this round. Pure: the scheduler loads the candidates and the
 * counters from Postgres (under the dispatch lock) and this decides.
 *
 * - Capacity: no backend gets more attempts than its online workers have free slots, so the
 *   backlog stays in Postgres where priority, fairness and limits can still reorder it.
 * - Priority: within a fairness key, candidates arrive highest priority first, oldest first.
 * - Fairness: keys take turns (weighted round robin), starting where the previous round stopped,
 *   so one key's flood cannot delay another key's job by more than a few rounds.
 * - Limits: a queue may be paused, capped in concurrency and rate limited; each concurrency key
 *   of a queue may be capped in concurrency and rate limited too.
 */
export interface DispatchCandidate {
  id: string;
  backend: string;
  queue: string;
  fairnessKey: string;
  concurrencyKey: string | null;
  /** Set when the job must be placed on a worker that fits (else: the backend's shared consumer). */
  requirements?: PlacementRequirements | null;
}

export interface RateLimit {
  n: number;
  intervalMs: number;
}

export interface QueueControls {
  paused: boolean;
  maxConcurrency: number | null;
  rateLimit: RateLimit | null;
  keyConcurrency: number | null;
  keyRateLimit: RateLimit | null;
}

export interface DispatchState {
  /** Free slots per backend (online capacity minus attempts in flight). */
  freeSlots: Map<string, number>;
  queues: Map<string, QueueControls>;
  /** Attempts in flight (CLAIMED or RUNNING) per queue. */
  queueInFlight: Map<string, number>;
  /** Dispatches within the queue's rate-limit interval, per queue. */
  queueRecent: Map<string, number>;
  /** Per `queue\u0000concurrencyKey`. */
  keyInFlight: Map<string, number>;
  keyRecent: Map<string, number>;
  /** Fairness weights; a key without one weighs 1. */
  weights: Map<string, number>;
  /**
   * Minimum share: per backend, slots kept for fairness keys with nothing in flight there, so a
   * tenant that arrives while another floods the backend starts at the next round. Optional.
   */
  reserved?: Map<string, number>;
  /** Attempts in flight per `backend\u0000fairnessKey` (needed with `reserved`). */
  fairInFlight?: Map<string, number>;
  /** Online workers per backend with what they hold, for jobs with requirements. */
  fleet?: Map<string, FleetWorker[]>;
  /** Placement policy per queue (default binpack) and, for round-robin, the last worker used. */
  placement?: Map<string, { policy: PlacementPolicy; lastWorker: string | null }>;
}

/** Where the weighted round robin stands: the key whose turn it is and the turns it has used. */
export interface FairCursor {
  key: string | null;
  used: number;
}

export const START_CURSOR: FairCursor = { key: null, used: 0 };

export interface DispatchPlan {
  /** Job ids to claim, in dispatch order. */
  chosen: string[];
  /** For the chosen jobs with requirements: the worker each is placed on. */
  placements: Map<string, string>;
  /** Jobs with requirements that no worker can take now, and why. */
  waiting: Map<string, string>;
  /** Where the next round continues, so weights hold across rounds of any size. */
  cursor: FairCursor;
}

export const keyOf = (queue: string, concurrencyKey: string): string => `${queue}\u0000${concurrencyKey}`;

/** Why a job cannot be admitted now, or null when it can. */
export function blockedBy(job: DispatchCandidate, s: DispatchState): string | null {
  const free = s.freeSlots.get(job.backend) ?? 0;
  if (free <= 0) return 'no free capacity';
  const reserved = s.reserved?.get(job.backend) ?? 0;
  if (free <= reserved && (s.fairInFlight?.get(keyOf(job.backend, job.fairnessKey)) ?? 0) > 0) {
    return 'the last free slots are reserved for tenants with nothing running';
  }
  const q = s.queues.get(job.queue);
  if (!q) return null;
  if (q.paused) return 'queue paused';
  if (q.maxConcurrency !== null && (s.queueInFlight.get(job.queue) ?? 0) >= q.maxConcurrency) return 'queue at maxConcurrency';
  if (q.rateLimit && (s.queueRecent.get(job.queue) ?? 0) >= q.rateLimit.n) return 'queue rate limit';
  if (job.concurrencyKey !== null) {
    const k = keyOf(job.queue, job.concurrencyKey);
    if (q.keyConcurrency !== null && (s.keyInFlight.get(k) ?? 0) >= q.keyConcurrency) return 'concurrency key at its limit';
    if (q.keyRateLimit && (s.keyRecent.get(k) ?? 0) >= q.keyRateLimit.n) return 'concurrency key rate limit';
  }
  return null;
}

/**
 * For a job with requirements: the worker that takes it (reserving what it asks for there), or
 * why none can. Jobs without requirements return null: any executor of the backend takes them.
 */
function place(job: DispatchCandidate, s: DispatchState, plan: Pick<DispatchPlan, 'placements' | 'waiting'>): string | null {
  if (!hasRequirements(job.requirements)) return null;
  const workers = s.fleet?.get(job.backend) ?? [];
  const q = s.placement?.get(job.queue) ?? { policy: DEFAULT_PLACEMENT_POLICY, lastWorker: null };
  const p = placeAttempt(job.requirements, workers, { policy: q.policy, lastWorker: q.lastWorker });
  if ('reason' in p) {
    plan.waiting.set(job.id, p.reason);
    return p.reason;
  }
  reserveOn(workers.find((w) => w.id === p.workerId)!, job.requirements);
  s.placement?.set(job.queue, { ...q, lastWorker: p.workerId });
  plan.placements.set(job.id, p.workerId);
  return null;
}

function admit(job: DispatchCandidate, s: DispatchState): void {
  const inc = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
  s.freeSlots.set(job.backend, (s.freeSlots.get(job.backend) ?? 0) - 1);
  if (s.fairInFlight) inc(s.fairInFlight, keyOf(job.backend, job.fairnessKey));
  inc(s.queueInFlight, job.queue);
  inc(s.queueRecent, job.queue);
  if (job.concurrencyKey !== null) {
    inc(s.keyInFlight, keyOf(job.queue, job.concurrencyKey));
    inc(s.keyRecent, keyOf(job.queue, job.concurrencyKey));
  }
}

/**
 * Chooses up to `limit` jobs. `byKey` holds each fairness key's candidates in priority order;
 * with `fairness` false they are merged into one list ordered by `order` (global priority, then
 * age). With fairness, keys take turns in name order, each taking up to its weight before the
 * next; `cursor` carries the turn across rounds, so a key of weight 3 gets three dispatches to
 * another's one even when each round dispatches a single job. `state` is updated as jobs are
 * admitted.
 */
export function planDispatch(
  byKey: Map<string, DispatchCandidate[]>,
  state: DispatchState,
  limit: number,
  options: { fairness: boolean; cursor: FairCursor; order?: (a: DispatchCandidate, b: DispatchCandidate) => number },
): DispatchPlan {
  const chosen: string[] = [];
  const placed = { placements: new Map<string, string>(), waiting: new Map<string, string>() };
  const admissible = (job: DispatchCandidate) => blockedBy(job, state) === null && place(job, state, placed) === null;
  // Never more than the free slots of the candidates' backends: when they run out mid-turn, the
  // key keeps its turn for the next round instead of losing it.
  const backends = new Set([...byKey.values()].flat().map((c) => c.backend));
  limit = Math.min(limit, [...backends].reduce((sum, b) => sum + Math.max(0, state.freeSlots.get(b) ?? 0), 0));
  if (!options.fairness) {
    const all = [...byKey.values()].flat();
    if (options.order) all.sort(options.order);
    for (const job of all) {
      if (chosen.length >= limit) break;
      if (admissible(job)) {
        admit(job, state);
        chosen.push(job.id);
      }
    }
    return { chosen, cursor: options.cursor, ...placed };
  }

  const keys = [...byKey.keys()].sort();
  if (keys.length === 0) return { chosen, cursor: options.cursor, ...placed };
  const lists = new Map(keys.map((k) => [k, [...byKey.get(k)!]]));
  const cursorKey = options.cursor.key;
  let i = cursorKey === null ? 0 : keys.findIndex((k) => k >= cursorKey);
  if (i < 0) i = 0;
  let used = keys[i] === cursorKey ? options.cursor.used : 0;
  // Stop after a whole turn around the keys admits nothing.
  let idle = 0;
  while (chosen.length < limit && idle < keys.length) {
    const key = keys[i]!;
    const list = lists.get(key)!;
    const weight = Math.max(1, state.weights.get(key) ?? 1);
    let took = false;
    while (used < weight && list.length > 0 && chosen.length < limit) {
      const job = list.shift()!;
      if (!admissible(job)) continue;
      admit(job, state);
      chosen.push(job.id);
      used++;
      took = true;
    }
    // Out of room mid-turn: this key goes on next round with the turns it has left.
    if (chosen.length >= limit && used < weight && list.length > 0) break;
    i = (i + 1) % keys.length;
    used = 0;
    idle = took ? 0 : idle + 1;
  }
  return { chosen, cursor: { key: keys[i]!, used }, ...placed };
}
