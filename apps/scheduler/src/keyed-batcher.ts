/**
 * Groups items into batches for one `apply` call while keeping each key's items in arrival order:
 * a batch holds at most one item per key, and an item waits while an earlier item of its key is
 * queued ahead of it or in flight. Up to `concurrency` batches run at once; items that arrive
 * while they run form the next batches (group commit: no timer, no added latency when idle).
 */
export interface KeyedBatcherOptions<T, R> {
  key: (item: T) => string;
  /** Applies a batch; returns one result per item, in the items' order. */
  apply: (items: T[]) => Promise<R[]>;
  maxBatch: number;
  concurrency: number;
}

interface Entry<T, R> {
  item: T;
  key: string;
  resolve: (result: R) => void;
  reject: (err: unknown) => void;
}

export class KeyedBatcher<T, R> {
  private queue: Entry<T, R>[] = [];
  private readonly inFlight = new Set<string>();
  private running = 0;

  constructor(private readonly o: KeyedBatcherOptions<T, R>) {}

  /** Resolves with the item's result once its batch is applied (rejects if the batch threw). */
  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, key: this.o.key(item), resolve, reject });
      this.pump();
    });
  }

  /** Items waiting for a batch. */
  get waiting(): number {
    return this.queue.length;
  }

  private pump(): void {
    while (this.running < this.o.concurrency && this.queue.length > 0) {
      const batch = this.take();
      if (batch.length === 0) return;
      this.running++;
      for (const e of batch) this.inFlight.add(e.key);
      void this.run(batch);
    }
  }

  private take(): Entry<T, R>[] {
    const batch: Entry<T, R>[] = [];
    const rest: Entry<T, R>[] = [];
    // Keys met so far, taken or not: a later item of such a key must wait for the earlier one.
    const seen = new Set<string>();
    for (const e of this.queue) {
      if (batch.length < this.o.maxBatch && !seen.has(e.key) && !this.inFlight.has(e.key)) batch.push(e);
      else rest.push(e);
      seen.add(e.key);
    }
    this.queue = rest;
    return batch;
  }

  private async run(batch: Entry<T, R>[]): Promise<void> {
    try {
      const results = await this.o.apply(batch.map((e) => e.item));
      batch.forEach((e, i) => e.resolve(results[i]));
    } catch (err) {
      for (const e of batch) e.reject(err);
    } finally {
      for (const e of batch) this.inFlight.delete(e.key);
      this.running--;
      this.pump();
    }
  }
}
