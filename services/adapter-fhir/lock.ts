/**
 * In-process serialisation of writes to the same resources: two concurrent
 * updates of one resource would otherwise both plan "version n+1" from the
 * same stored version. Keys are taken in one synchronous step, so two calls
 * with overlapping key sets cannot deadlock. Across processes (several
 * adapter instances) this does not hold; see the README.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    const waits: Promise<void>[] = [];
    const releases: (() => void)[] = [];
    for (const k of new Set(keys)) {
      const prev = this.tails.get(k) ?? Promise.resolve();
      let release!: () => void;
      const mine = new Promise<void>((r) => (release = r));
      const tail = prev.then(() => mine);
      this.tails.set(k, tail);
      waits.push(prev);
      releases.push(() => {
        release();
        if (this.tails.get(k) === tail) this.tails.delete(k);
      });
    }
    await Promise.all(waits);
    try {
      return await fn();
    } finally {
      for (const r of releases) r();
    }
  }

  /** Keys currently held or waited for (for tests). */
  get size(): number {
    return this.tails.size;
  }
}
