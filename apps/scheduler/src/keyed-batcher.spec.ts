import { KeyedBatcher } from './keyed-batcher';

interface Item {
  key: string;
  n: number;
}

/** A batcher whose batches finish only when the test says so. */
function harness(maxBatch: number, concurrency: number) {
  const batches: { items: Item[]; finish: () => void; fail: (err: Error) => void }[] = [];
  const batcher = new KeyedBatcher<Item, number>({
    key: (i) => i.key,
    maxBatch,
    concurrency,
    apply: (items) =>
      new Promise<number[]>((resolve, reject) => {
        batches.push({ items, finish: () => resolve(items.map((i) => i.n * 10)), fail: reject });
      }),
  });
  return { batcher, batches };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('KeyedBatcher', () => {
  it('applies the first item at once and batches what arrives while it runs', async () => {
    const { batcher, batches } = harness(10, 1);
    const first = batcher.submit({ key: 'a', n: 1 });
    const later = [2, 3, 4].map((n) => batcher.submit({ key: `k${n}`, n }));
    expect(batches.map((b) => b.items.map((i) => i.n))).toEqual([[1]]);
    batches[0].finish();
    expect(await first).toBe(10);
    await tick();
    expect(batches[1].items.map((i) => i.n)).toEqual([2, 3, 4]);
    batches[1].finish();
    expect(await Promise.all(later)).toEqual([20, 30, 40]);
  });

  it("keeps one key's items in order: one per batch, never beside an earlier one in flight", async () => {
    const { batcher, batches } = harness(10, 2);
    const results = [
      batcher.submit({ key: 'a', n: 1 }),
      batcher.submit({ key: 'a', n: 2 }),
      batcher.submit({ key: 'b', n: 3 }),
      batcher.submit({ key: 'a', n: 4 }),
      batcher.submit({ key: 'c', n: 5 }),
    ];
    // Two batches run: a1, then b3 (a2 waits behind a1); a4 and c5 queue behind them.
    expect(batches.map((b) => b.items.map((i) => i.n))).toEqual([[1], [3]]);
    batches[1].finish();
    await tick();
    // a2 and a4 still wait for a1, which is in flight; c5 goes.
    expect(batches[2].items.map((i) => i.n)).toEqual([5]);
    batches[0].finish();
    await tick();
    expect(batches[3].items.map((i) => i.n)).toEqual([2]);
    batches[2].finish();
    batches[3].finish();
    await tick();
    expect(batches[4].items.map((i) => i.n)).toEqual([4]);
    batches[4].finish();
    expect(await Promise.all(results)).toEqual([10, 20, 30, 40, 50]);
  });

  it('caps batch size and concurrency', async () => {
    const { batcher, batches } = harness(2, 1);
    const all = [1, 2, 3, 4, 5].map((n) => batcher.submit({ key: `k${n}`, n }));
    expect(batches).toHaveLength(1);
    expect(batcher.waiting).toBe(4);
    for (let i = 0; i < 3; i++) {
      batches[i].finish();
      await tick();
    }
    expect(batches.map((b) => b.items.map((i) => i.n))).toEqual([[1], [2, 3], [4, 5]]);
    expect(await Promise.all(all)).toEqual([10, 20, 30, 40, 50]);
  });

  it('rejects every item of a failed batch and goes on with the next', async () => {
    const { batcher, batches } = harness(10, 1);
    const first = batcher.submit({ key: 'a', n: 1 });
    const second = batcher.submit({ key: 'a', n: 2 });
    batches[0].fail(new Error('database down'));
    await expect(first).rejects.toThrow('database down');
    await tick();
    batches[1].finish();
    expect(await second).toBe(20);
  });
});
