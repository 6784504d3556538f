import {
  FleetWorker,
  formatConstraint,
  matchesConstraint,
  parseConstraint,
  placeAttempt,
  PlacementRequirements,
  reserveOn,
  toRequirements,
  validateRequirements,
  LabelConstraint,
} from './placement';

const worker = (id: string, capacity: Record<string, number>, labels: Record<string, string> = {}, used: Record<string, number> = {}, since = 0): FleetWorker => ({
  id,
  backend: 'mock',
  labels,
  capacity: { slots: 4, ...capacity },
  used: { ...used },
  since,
});
const req = (r: Partial<PlacementRequirements>): PlacementRequirements => ({ resources: {}, constraints: [], affinity: [], worker: null, ...r });
const c = (s: string) => parseConstraint(s) as LabelConstraint;

describe('label constraints', () => {
  it.each([
    ['zone=a', { key: 'zone', op: 'eq', value: 'a' }],
    ['zone==a', { key: 'zone', op: 'eq', value: 'a' }],
    ['zone != a', { key: 'zone', op: 'neq', value: 'a' }],
    ['zone in (a, b)', { key: 'zone', op: 'in', values: ['a', 'b'] }],
    ['zone notin (a,b)', { key: 'zone', op: 'notin', values: ['a', 'b'] }],
    ['gpu', { key: 'gpu', op: 'exists' }],
    ['!gpu', { key: 'gpu', op: 'notexists' }],
  ])('parses %s', (expr, expected) => {
    expect(parseConstraint(expr)).toEqual(expected);
  });

  it.each(['', 'zone=', 'zone in ()', 'zone in a,b', '=a', 'a b', 'zone in (a,)'])('rejects %p with a message', (expr) => {
    const parsed = parseConstraint(expr);
    if (expr === 'zone=') {
      // An empty value is a value (Kubernetes allows it).
      expect(parsed).toEqual({ key: 'zone', op: 'eq', value: '' });
      return;
    }
    expect(typeof parsed).toBe('string');
  });

  it('matches labels: equality, sets, existence and their negations', () => {
    const labels = { zone: 'a', gpu: 'true' };
    expect(matchesConstraint(c('zone=a'), labels)).toBe(true);
    expect(matchesConstraint(c('zone=b'), labels)).toBe(false);
    expect(matchesConstraint(c('zone!=b'), labels)).toBe(true);
    expect(matchesConstraint(c('region!=x'), labels)).toBe(true);
    expect(matchesConstraint(c('zone in (b,a)'), labels)).toBe(true);
    expect(matchesConstraint(c('zone notin (a)'), labels)).toBe(false);
    expect(matchesConstraint(c('region notin (a)'), labels)).toBe(true);
    expect(matchesConstraint(c('gpu'), labels)).toBe(true);
    expect(matchesConstraint(c('!gpu'), labels)).toBe(false);
    expect(matchesConstraint(c('ssd'), labels)).toBe(false);
  });

  it('formats what it parses', () => {
    for (const s of ['zone=a', 'zone!=a', 'zone in (a,b)', 'zone notin (a,b)', 'gpu', '!gpu']) expect(formatConstraint(c(s))).toBe(s);
  });
});

describe('validateRequirements', () => {
  it('accepts a full request', () => {
    expect(
      validateRequirements({ resources: { cpuMillis: 500, memoryMb: 256, gpu: 1 }, constraints: ['zone=a', 'gpu'], affinity: [{ constraint: 'ssd', weight: 20 }], worker: 'w-1' }),
    ).toEqual([]);
  });

  it('names every bad field', () => {
    const errors = validateRequirements({ resources: { cpuMillis: -1, slots: 2, 'bad name': 1 }, constraints: ['zone in a'], affinity: [{ constraint: 'x', weight: 0, extra: 1 }], worker: '' });
    expect(errors.map((e) => e.field).sort()).toEqual(
      ['affinity[0].extra', 'affinity[0].weight', 'constraints[0]', 'resources.bad name', 'resources.cpuMillis', 'resources.slots', 'worker'].sort(),
    );
  });

  it('treats an empty request as none', () => {
    expect(toRequirements({})).toBeNull();
    expect(toRequirements({ resources: { gpu: 0 } })).toBeNull();
    expect(toRequirements({ constraints: ['zone=a'] })).toEqual({ resources: {}, constraints: [c('zone=a')], affinity: [], worker: null });
  });
});

describe('placeAttempt', () => {
  const fleet = () => [
    worker('a', { cpuMillis: 4000, memoryMb: 8192 }, { zone: 'a' }, { slots: 1, cpuMillis: 3000, memoryMb: 1024 }, 3),
    worker('b', { cpuMillis: 4000, memoryMb: 8192 }, { zone: 'b' }, {}, 1),
    worker('c', { cpuMillis: 2000, memoryMb: 4096, gpu: 1 }, { zone: 'b', gpu: 'true' }, {}, 2),
  ];
  const small = req({ resources: { cpuMillis: 500, memoryMb: 256 } });

  it('binpack puts the attempt where the least room is left', () => {
    expect(placeAttempt(small, fleet(), { policy: 'binpack' })).toEqual({ workerId: 'a' });
  });

  it('spread puts it where the most room is left', () => {
    expect(placeAttempt(small, fleet(), { policy: 'spread' })).toEqual({ workerId: 'b' });
  });

  it('first-fit takes the longest-registered worker that fits', () => {
    expect(placeAttempt(small, fleet(), { policy: 'first-fit' })).toEqual({ workerId: 'b' });
    expect(placeAttempt(req({ resources: { cpuMillis: 3500 } }), fleet(), { policy: 'first-fit' })).toEqual({ workerId: 'b' });
  });

  it('round-robin moves to the next worker after the last one used, wrapping around', () => {
    expect(placeAttempt(small, fleet(), { policy: 'round-robin', lastWorker: null })).toEqual({ workerId: 'a' });
    expect(placeAttempt(small, fleet(), { policy: 'round-robin', lastWorker: 'a' })).toEqual({ workerId: 'b' });
    expect(placeAttempt(small, fleet(), { policy: 'round-robin', lastWorker: 'b' })).toEqual({ workerId: 'c' });
    expect(placeAttempt(small, fleet(), { policy: 'round-robin', lastWorker: 'c' })).toEqual({ workerId: 'a' });
  });

  it('explicit needs a named worker, and any policy honours one', () => {
    expect(placeAttempt(small, fleet(), { policy: 'explicit' })).toEqual({ reason: expect.stringContaining('name a worker') });
    expect(placeAttempt({ ...small, worker: 'c' }, fleet(), { policy: 'explicit' })).toEqual({ workerId: 'c' });
    expect(placeAttempt({ ...small, worker: 'c' }, fleet(), { policy: 'spread' })).toEqual({ workerId: 'c' });
    expect(placeAttempt({ ...small, worker: 'zz' }, fleet(), { policy: 'explicit' })).toEqual({ reason: 'worker "zz" is not online' });
  });

  it('label constraints filter, free-form resources count', () => {
    expect(placeAttempt(req({ constraints: [c('gpu')] }), fleet(), { policy: 'spread' })).toEqual({ workerId: 'c' });
    expect(placeAttempt(req({ resources: { gpu: 1 } }), fleet(), { policy: 'spread' })).toEqual({ workerId: 'c' });
    expect(placeAttempt(req({ constraints: [c('zone notin (a)'), c('!gpu')] }), fleet(), { policy: 'binpack' })).toEqual({ workerId: 'b' });
  });

  it('affinity ranks before the policy; negative weights repel', () => {
    expect(placeAttempt({ ...small, affinity: [{ constraint: c('zone=b'), weight: 10 }] }, fleet(), { policy: 'binpack' })).toEqual({ workerId: 'c' });
    expect(placeAttempt({ ...small, affinity: [{ constraint: c('zone=a'), weight: -10 }] }, fleet(), { policy: 'binpack' })).toEqual({ workerId: 'c' });
  });

  it('explains a job that fits nowhere', () => {
    const p = placeAttempt(req({ constraints: [c('gpu=true')], resources: { memoryMb: 8192 } }), fleet(), { policy: 'binpack' });
    expect(p).toEqual({ reason: 'no worker with label gpu=true and 1 slot, 8192 MB free (3 online: 2 without the labels, 1 short of memoryMb (offers less in all))' });
    expect(placeAttempt(small, [], { policy: 'binpack' })).toEqual({ reason: 'no online worker for this backend' });
  });

  it('reservations make a worker fill up: never more than its capacity', () => {
    const ws = [worker('a', { memoryMb: 1000 }, {}, {}, 0), worker('b', { memoryMb: 1000 }, {}, {}, 1)];
    const r = req({ resources: { memoryMb: 300 } });
    const placed: string[] = [];
    for (let i = 0; i < 10; i++) {
      const p = placeAttempt(r, ws, { policy: 'binpack' });
      if (!('workerId' in p)) break;
      placed.push(p.workerId);
      reserveOn(ws.find((w) => w.id === p.workerId)!, r);
    }
    // 3 fit in each 1000 MB.
    expect(placed).toEqual(['a', 'a', 'a', 'b', 'b', 'b']);
    for (const w of ws) expect(w.used.memoryMb).toBeLessThanOrEqual(1000);
  });

  it('counts slots: a worker with every slot taken gets nothing', () => {
    const ws = [worker('a', {}, {}, { slots: 4 })];
    expect(placeAttempt(req({ constraints: [c('!gpu')] }), ws, { policy: 'binpack' })).toEqual({ reason: expect.stringContaining('1 short of slots') });
  });
});
