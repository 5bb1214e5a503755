import type { Result } from './result.js';

/**
 * Which messages need no second write: those durably accepted (the last
 * `capacity` resend keys, oldest evicted first) and those whose write is
 * still on its way. Per process and bounded; consumers de-duplicate by
 * event id for what this misses (README, "Idempotency").
 */
export class ResendMemory {
  /** Insertion-ordered: the oldest key is evicted first. */
  private readonly recent = new Set<string>();
  private readonly inFlight = new Map<string, Promise<Result>>();

  constructor(private readonly capacity: number) {}

  /** Already durably accepted: a resend is answered, not written again. */
  accepted(key: string): boolean {
    return this.recent.has(key);
  }

  /** The write of an earlier copy that has not settled yet, if any. */
  pending(key: string): Promise<Result> | undefined {
    return this.inFlight.get(key);
  }

  /** Keeps a write findable by its resend key until it settles, and remembers it if it landed. */
  track(key: string, write: Promise<Result>): void {
    this.inFlight.set(key, write);
    void write
      .then((r) => {
        if (r.disposition === 'accepted') this.remember(key);
      })
      .catch(() => undefined)
      .finally(() => {
        if (this.inFlight.get(key) === write) this.inFlight.delete(key);
      });
  }

  private remember(key: string): void {
    this.recent.delete(key);
    this.recent.add(key);
    if (this.recent.size > this.capacity) {
      const oldest = this.recent.values().next();
      if (!oldest.done) this.recent.delete(oldest.value);
    }
  }
}
