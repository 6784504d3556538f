/**
 * Placement: which worker takes an attempt that states requirements (resources, label
 * constraints, affinity, or a named worker). Pure: the dispatcher loads the fleet and what each
 * worker has reserved from Postgres, under the dispatch lock, and this decides.
 *
 * Jobs without requirements do not come here: they go to their backend's shared consumer and any
 * executor of the backend takes them (and only take one slot there).
 */
import type { FieldError } from './errors';
import { isPlainObject } from './validation';

// ------------------------------------------------------------------ label constraints

export type LabelConstraint =
  | { key: string; op: 'eq' | 'neq'; value: string }
  | { key: string; op: 'in' | 'notin'; values: string[] }
  | { key: string; op: 'exists' | 'notexists' };

const KEY = '[A-Za-z0-9][A-Za-z0-9_./-]{0,62}';
const VALUE = '[A-Za-z0-9_./:-]{0,63}';
const EQ = new RegExp(`^(${KEY})\\s*(==|=|!=)\\s*(${VALUE})$`);
const SET = new RegExp(`^(${KEY})\\s+(in|notin)\\s*\\(([^)]*)\\)$`);
const EXISTS = new RegExp(`^(!?)(${KEY})$`);
const VALUE_ONLY = new RegExp(`^${VALUE}$`);

/**
 * Parses one constraint, in the label-selector syntax Kubernetes users know:
 * `zone=a` (or `zone==a`), `zone!=a`, `zone in (a,b)`, `zone notin (a,b)`, `gpu` (exists),
 * `!gpu` (does not exist). Returns an error message instead when it is not one.
 */
export function parseConstraint(expr: string): LabelConstraint | string {
  const s = expr.trim();
  let m = EQ.exec(s);
  if (m) return { key: m[1]!, op: m[2] === '!=' ? 'neq' : 'eq', value: m[3]! };
  m = SET.exec(s);
  if (m) {
    const values = m[3]!.split(',').map((v) => v.trim());
    if (values.length === 0 || values.some((v) => v === '' || !VALUE_ONLY.test(v))) return `"${expr}": list values as (a,b,c)`;
    return { key: m[1]!, op: m[2] as 'in' | 'notin', values };
  }
  m = EXISTS.exec(s);
  if (m) return { key: m[2]!, op: m[1] === '!' ? 'notexists' : 'exists' };
  return `"${expr}" is not a constraint: use key=value, key!=value, key in (a,b), key notin (a,b), key or !key`;
}

export function formatConstraint(c: LabelConstraint): string {
  switch (c.op) {
    case 'eq':
      return `${c.key}=${c.value}`;
    case 'neq':
      return `${c.key}!=${c.value}`;
    case 'in':
      return `${c.key} in (${c.values.join(',')})`;
    case 'notin':
      return `${c.key} notin (${c.values.join(',')})`;
    case 'exists':
      return c.key;
    case 'notexists':
      return `!${c.key}`;
  }
}

export function matchesConstraint(c: LabelConstraint, labels: Record<string, string>): boolean {
  const has = Object.prototype.hasOwnProperty.call(labels, c.key);
  const v = labels[c.key];
  switch (c.op) {
    case 'eq':
      return has && v === c.value;
    case 'neq':
      return !has || v !== c.value;
    case 'in':
      return has && c.values.includes(v!);
    case 'notin':
      return !has || !c.values.includes(v!);
    case 'exists':
      return has;
    case 'notexists':
      return !has;
  }
}

// ------------------------------------------------------------------ requirements

/** A preference: workers whose labels match get `weight` (-100..100) added to their score. */
export interface Affinity {
  constraint: LabelConstraint;
  weight: number;
}

export interface PlacementRequirements {
  /** Reserved on the worker for the attempt: cpuMillis, memoryMb, or any numeric resource. */
  resources: Record<string, number>;
  constraints: LabelConstraint[];
  affinity: Affinity[];
  /** A named worker (the `explicit` policy); any policy honours it when set. */
  worker: string | null;
}

export const NO_REQUIREMENTS: PlacementRequirements = { resources: {}, constraints: [], affinity: [], worker: null };

/** Whether a job goes through placement (else: the backend's shared consumer). */
export function hasRequirements(r: PlacementRequirements | null | undefined): r is PlacementRequirements {
  return !!r && (Object.keys(r.resources).length > 0 || r.constraints.length > 0 || r.affinity.length > 0 || r.worker !== null);
}

export const PLACEMENT_POLICIES = ['binpack', 'spread', 'first-fit', 'round-robin', 'explicit'] as const;
export type PlacementPolicy = (typeof PLACEMENT_POLICIES)[number];
export const DEFAULT_PLACEMENT_POLICY: PlacementPolicy = 'binpack';

const RESOURCE_NAME = /^[A-Za-z][A-Za-z0-9_]{0,62}$/;

/** Validates the submission fields `resources`, `constraints`, `affinity`, `worker` (all optional). */
export function validateRequirements(input: { resources?: unknown; constraints?: unknown; affinity?: unknown; worker?: unknown }): FieldError[] {
  const errors: FieldError[] = [];
  if (input.resources !== undefined) {
    if (!isPlainObject(input.resources)) errors.push({ field: 'resources', message: 'must be an object of numbers, e.g. {"cpuMillis": 500, "memoryMb": 256}' });
    else {
      for (const [k, v] of Object.entries(input.resources)) {
        if (!RESOURCE_NAME.test(k)) errors.push({ field: `resources.${k}`, message: 'is not a resource name (letters, digits, _)' });
        else if (k === 'slots') errors.push({ field: 'resources.slots', message: 'is implied: every attempt takes one slot' });
        else if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1e12) errors.push({ field: `resources.${k}`, message: 'must be a number from 0 to 1e12' });
      }
    }
  }
  if (input.constraints !== undefined) {
    if (!Array.isArray(input.constraints) || input.constraints.length > 32) errors.push({ field: 'constraints', message: 'must be a list of up to 32 label constraints such as "zone=a"' });
    else
      input.constraints.forEach((c, i) => {
        const parsed = typeof c === 'string' ? parseConstraint(c) : 'must be a string such as "zone=a", "gpu" or "zone in (a,b)"';
        if (typeof parsed === 'string') errors.push({ field: `constraints[${i}]`, message: parsed });
      });
  }
  if (input.affinity !== undefined) {
    if (!Array.isArray(input.affinity) || input.affinity.length > 32) errors.push({ field: 'affinity', message: 'must be a list of up to 32 {"constraint": "zone=a", "weight": 50}' });
    else
      input.affinity.forEach((a, i) => {
        if (!isPlainObject(a)) return errors.push({ field: `affinity[${i}]`, message: 'must be {"constraint": "zone=a", "weight": 50}' });
        const parsed = typeof a.constraint === 'string' ? parseConstraint(a.constraint) : 'must be a string such as "zone=a"';
        if (typeof parsed === 'string') errors.push({ field: `affinity[${i}].constraint`, message: parsed });
        if (a.weight !== undefined && (typeof a.weight !== 'number' || !Number.isInteger(a.weight) || a.weight < -100 || a.weight > 100 || a.weight === 0)) {
          errors.push({ field: `affinity[${i}].weight`, message: 'must be a non-zero integer from -100 to 100' });
        }
        for (const k of Object.keys(a)) if (k !== 'constraint' && k !== 'weight') errors.push({ field: `affinity[${i}].${k}`, message: 'is not a known field' });
      });
  }
  if (input.worker !== undefined && (typeof input.worker !== 'string' || input.worker.length === 0 || input.worker.length > 200)) {
    errors.push({ field: 'worker', message: 'must be a worker id (1-200 characters)' });
  }
  return errors;
}

/** The requirements of a validated submission (null when it states none). */
export function toRequirements(input: { resources?: unknown; constraints?: unknown; affinity?: unknown; worker?: unknown }): PlacementRequirements | null {
  const r: PlacementRequirements = {
    resources: { ...((input.resources as Record<string, number> | undefined) ?? {}) },
    constraints: ((input.constraints as string[] | undefined) ?? []).map((c) => parseConstraint(c) as LabelConstraint),
    affinity: ((input.affinity as { constraint: string; weight?: number }[] | undefined) ?? []).map((a) => ({
      constraint: parseConstraint(a.constraint) as LabelConstraint,
      weight: a.weight ?? 50,
    })),
    worker: (input.worker as string | undefined) ?? null,
  };
  for (const [k, v] of Object.entries(r.resources)) if (v === 0) delete r.resources[k];
  return hasRequirements(r) ? r : null;
}

// ------------------------------------------------------------------ the fleet

export interface FleetWorker {
  id: string;
  backend: string;
  labels: Record<string, string>;
  /** What the worker offers: `slots` plus cpuMillis, memoryMb, gpu, ... */
  capacity: Record<string, number>;
  /** What attempts in flight on it hold (slots included). Updated as the plan places jobs. */
  used: Record<string, number>;
  /** Registration order, for first-fit. */
  since: number;
}

export const free = (w: FleetWorker, resource: string): number => (w.capacity[resource] ?? 0) - (w.used[resource] ?? 0);

/** The request with its implied slot. */
function demand(r: PlacementRequirements): Record<string, number> {
  return { slots: 1, ...r.resources };
}

function fits(w: FleetWorker, need: Record<string, number>): boolean {
  return Object.entries(need).every(([k, n]) => free(w, k) >= n);
}

/**
 * Share of the worker left free after taking `need`, averaged over the dimensions it offers
 * (or that the job asks for). Binpack picks the lowest, spread the highest.
 */
function headroomAfter(w: FleetWorker, need: Record<string, number>): number {
  const dims = new Set([...Object.keys(w.capacity), ...Object.keys(need)]);
  let sum = 0;
  let n = 0;
  for (const d of dims) {
    const cap = w.capacity[d] ?? 0;
    if (cap <= 0) continue;
    sum += (free(w, d) - (need[d] ?? 0)) / cap;
    n++;
  }
  return n === 0 ? 0 : sum / n;
}

export type Placement = { workerId: string } | { reason: string };

export interface PlaceOptions {
  policy: PlacementPolicy;
  /** For round-robin: the worker that took the previous placement of this queue. */
  lastWorker?: string | null;
}

/**
 * Chooses a worker of `workers` (one backend's online fleet) for an attempt with requirements,
 * or explains why none fits. Affinity ranks first (the highest summed weight of matching
 * preferences), then the policy: binpack (least headroom left), spread (most headroom left),
 * first-fit (longest registered), round-robin (the next worker after the last one used).
 * `explicit` requires a named worker. Ties go to the smaller worker id, so choices are stable.
 */
export function placeAttempt(req: PlacementRequirements, workers: readonly FleetWorker[], options: PlaceOptions): Placement {
  const need = demand(req);
  if (options.policy === 'explicit' && req.worker === null) return { reason: 'the queue places jobs explicitly: name a worker in "worker"' };
  let pool = workers;
  if (req.worker !== null) {
    pool = workers.filter((w) => w.id === req.worker);
    if (pool.length === 0) return { reason: `worker "${req.worker}" is not online` };
  }
  if (pool.length === 0) return { reason: 'no online worker for this backend' };
  const labelled = pool.filter((w) => req.constraints.every((c) => matchesConstraint(c, w.labels)));
  const fitting = labelled.filter((w) => fits(w, need));
  if (fitting.length === 0) return { reason: whyNot(req, need, pool, labelled) };

  // One score per worker (affinity first, then the policy's), then the best: no sort needed.
  const last = options.lastWorker ?? null;
  const policyScore = (w: FleetWorker): number => {
    switch (options.policy) {
      case 'spread':
        return headroomAfter(w, need);
      case 'first-fit':
        return -w.since;
      case 'round-robin':
        // Workers after the last one first (in id order, by the tie-break), then from the start.
        return last !== null && w.id > last ? 1 : 0;
      default:
        return -headroomAfter(w, need);
    }
  };
  let best: FleetWorker | undefined;
  let bestAffinity = -Infinity;
  let bestScore = -Infinity;
  for (const w of fitting) {
    const a = req.affinity.reduce((sum, x) => sum + (matchesConstraint(x.constraint, w.labels) ? x.weight : 0), 0);
    const p = policyScore(w);
    if (a > bestAffinity || (a === bestAffinity && (p > bestScore || (p === bestScore && w.id < best!.id)))) {
      best = w;
      bestAffinity = a;
      bestScore = p;
    }
  }
  return { workerId: best!.id };
}

/** Reserves what a placed attempt holds on its worker (the plan's view of the fleet). */
export function reserveOn(w: FleetWorker, req: PlacementRequirements): void {
  for (const [k, n] of Object.entries(demand(req))) w.used[k] = (w.used[k] ?? 0) + n;
}

export function formatResources(need: Record<string, number>): string {
  return Object.entries(need)
    .map(([k, n]) => (k === 'memoryMb' ? `${n} MB` : k === 'cpuMillis' ? `${n} mCPU` : k === 'slots' ? `${n} slot${n === 1 ? '' : 's'}` : `${n} ${k}`))
    .join(', ');
}

function whyNot(req: PlacementRequirements, need: Record<string, number>, pool: readonly FleetWorker[], labelled: readonly FleetWorker[]): string {
  const wanted = req.constraints.length > 0 ? `label ${req.constraints.map(formatConstraint).join(' and ')} and ` : '';
  const head = `no worker with ${wanted}${formatResources(need)} free`;
  const parts: string[] = [];
  const unlabelled = pool.length - labelled.length;
  if (unlabelled > 0) parts.push(`${unlabelled} without the labels`);
  // Of those with the labels: what they lack, by resource.
  const short = new Map<string, number>();
  for (const w of labelled) {
    for (const [k, n] of Object.entries(need)) {
      if (free(w, k) < n) {
        const total = w.capacity[k] ?? 0;
        const key = total < n ? `${k} (offers less in all)` : k;
        short.set(key, (short.get(key) ?? 0) + 1);
      }
    }
  }
  for (const [k, count] of short) parts.push(`${count} short of ${k}`);
  return `${head} (${pool.length} online: ${parts.join(', ')})`;
}
