import { DispatchCandidate, DispatchState, FairCursor, keyOf, planDispatch, QueueControls, START_CURSOR } from './dispatch-plan';

const job = (id: string, over: Partial<DispatchCandidate> = {}): DispatchCandidate => ({
  id,
  backend: 'mock',
  queue: 'default',
  fairnessKey: 'default',
  concurrencyKey: null,
  ...over,
});

const state = (over: Partial<DispatchState> = {}): DispatchState => ({
  freeSlots: new Map([['mock', 100]]),
  queues: new Map(),
  queueInFlight: new Map(),
  queueRecent: new Map(),
  keyInFlight: new Map(),
  keyRecent: new Map(),
  weights: new Map(),
  ...over,
});

const controls = (over: Partial<QueueControls> = {}): QueueControls => ({
  paused: false,
  maxConcurrency: null,
  rateLimit: null,
  keyConcurrency: null,
  keyRateLimit: null,
  ...over,
});

const flood = (key: string, n: number) => Array.from({ length: n }, (_, i) => job(`${key}${i}`, { fairnessKey: key }));

describe('planDispatch', () => {
  it('never dispatches more attempts to a backend than it has free slots', () => {
    const plan = planDispatch(new Map([['default', flood('a', 10)]]), state({ freeSlots: new Map([['mock', 3]]) }), 100, { fairness: true, cursor: START_CURSOR });
    expect(plan.chosen).toEqual(['a0', 'a1', 'a2']);
  });

  it('gives a key with one job a turn in the same round as a key with a flood', () => {
    const byKey = new Map([
      ['a', flood('a', 1000)],
      ['b', [job('b0', { fairnessKey: 'b' })]],
    ]);
    const plan = planDispatch(byKey, state({ freeSlots: new Map([['mock', 2]]) }), 100, { fairness: true, cursor: START_CURSOR });
    expect(plan.chosen).toEqual(['a0', 'b0']);
  });

  it('without fairness takes jobs in global order, so the flood comes first', () => {
    const byKey = new Map([
      ['a', flood('a', 5)],
      ['b', [job('b0', { fairnessKey: 'b' })]],
    ]);
    const order = (x: DispatchCandidate, y: DispatchCandidate) => (x.id < y.id ? -1 : 1);
    const plan = planDispatch(byKey, state({ freeSlots: new Map([['mock', 2]]) }), 100, { fairness: false, cursor: START_CURSOR, order });
    expect(plan.chosen).toEqual(['a0', 'a1']);
  });

  it('carries the turn from round to round, one key after another', () => {
    const byKey = () => new Map([['a', flood('a', 5)], ['b', flood('b', 5)], ['c', flood('c', 5)]]);
    let cursor: FairCursor = START_CURSOR;
    const picks: string[][] = [];
    for (let round = 0; round < 4; round++) {
      const plan = planDispatch(byKey(), state({ freeSlots: new Map([['mock', 1]]) }), 100, { fairness: true, cursor });
      picks.push(plan.chosen);
      cursor = plan.cursor;
    }
    expect(picks).toEqual([['a0'], ['b0'], ['c0'], ['a0']]);
  });

  it('keeps weights across rounds of one dispatch each', () => {
    let cursor: FairCursor = START_CURSOR;
    const picks: string[] = [];
    for (let round = 0; round < 8; round++) {
      const byKey = new Map([['a', flood('a', 10)], ['b', flood('b', 10)]]);
      const plan = planDispatch(byKey, state({ freeSlots: new Map([['mock', 1]]), weights: new Map([['a', 3]]) }), 100, { fairness: true, cursor });
      picks.push(plan.chosen[0]!.slice(0, 1));
      cursor = plan.cursor;
    }
    expect(picks.join('')).toBe('aaabaaab');
  });

  it('shares by weight: a key of weight 3 takes three turns to another key’s one', () => {
    const byKey = new Map([['a', flood('a', 10)], ['b', flood('b', 10)]]);
    const plan = planDispatch(byKey, state({ weights: new Map([['a', 3]]) }), 8, { fairness: true, cursor: START_CURSOR });
    expect(plan.chosen).toEqual(['a0', 'a1', 'a2', 'b0', 'a3', 'a4', 'a5', 'b1']);
  });

  it('keeps reserved slots for a key with nothing in flight, so a newcomer starts at once', () => {
    const s = state({
      freeSlots: new Map([['mock', 2]]),
      reserved: new Map([['mock', 1]]),
      fairInFlight: new Map([[keyOf('mock', 'a'), 62]]),
    });
    // The flooding key may take only the unreserved slot…
    const first = planDispatch(new Map([['a', flood('a', 10)]]), s, 100, { fairness: true, cursor: START_CURSOR });
    expect(first.chosen).toEqual(['a0']);
    // …and the newcomer gets the reserved one.
    const second = planDispatch(new Map([['a', flood('a', 10)], ['b', flood('b', 1)]]), s, 100, { fairness: true, cursor: first.cursor });
    expect(second.chosen).toEqual(['b0']);
  });

  it('dispatches nothing from a paused queue and skips to other queues', () => {
    const byKey = new Map([['default', [job('p0', { queue: 'paused' }), job('o0', { queue: 'open' })]]]);
    const plan = planDispatch(byKey, state({ queues: new Map([['paused', controls({ paused: true })]]) }), 10, { fairness: true, cursor: START_CURSOR });
    expect(plan.chosen).toEqual(['o0']);
  });

  it('holds a queue to its maxConcurrency, counting what is already in flight', () => {
    const plan = planDispatch(new Map([['default', flood('x', 10)]]), state({ queues: new Map([['default', controls({ maxConcurrency: 5 })]]), queueInFlight: new Map([['default', 3]]) }), 10, { fairness: true, cursor: START_CURSOR });
    expect(plan.chosen).toHaveLength(2);
  });

  it('holds a queue to its rate limit, counting recent dispatches', () => {
    const plan = planDispatch(new Map([['default', flood('x', 10)]]), state({ queues: new Map([['default', controls({ rateLimit: { n: 4, intervalMs: 1000 } })]]), queueRecent: new Map([['default', 1]]) }), 10, { fairness: true, cursor: START_CURSOR });
    expect(plan.chosen).toHaveLength(3);
  });

  it('holds each concurrency key to its limit while other keys go on', () => {
    const jobs = [job('c1', { concurrencyKey: 'cust-1' }), job('c2', { concurrencyKey: 'cust-1' }), job('c3', { concurrencyKey: 'cust-1' }), job('d1', { concurrencyKey: 'cust-2' })];
    const s = state({ queues: new Map([['default', controls({ keyConcurrency: 2 })]]), keyInFlight: new Map([[keyOf('default', 'cust-1'), 1]]) });
    expect(planDispatch(new Map([['default', jobs]]), s, 10, { fairness: true, cursor: START_CURSOR }).chosen).toEqual(['c1', 'd1']);
  });

  it('holds each concurrency key to its rate limit', () => {
    const jobs = [job('c1', { concurrencyKey: 'k' }), job('c2', { concurrencyKey: 'k' }), job('n1')];
    const s = state({ queues: new Map([['default', controls({ keyRateLimit: { n: 1, intervalMs: 60_000 } })]]) });
    expect(planDispatch(new Map([['default', jobs]]), s, 10, { fairness: true, cursor: START_CURSOR }).chosen).toEqual(['c1', 'n1']);
  });
});
