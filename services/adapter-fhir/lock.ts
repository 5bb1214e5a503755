import { toDbError, type Knex } from '../../libs/db/index.js';
import { HubError } from '../../libs/errors/index.js';

/** Runs fn while other processes are kept off the same keys. */
export type CrossInstanceLock = <T>(keys: readonly string[], fn: () => Promise<T>) => Promise<T>;

/**
 * Serialisation of writes to the same resources: two concurrent updates of
 * one resource would otherwise both plan "version n+1" from the same stored
 * version. In process, keys are taken in one synchronous step, so two calls
 * with overlapping key sets cannot deadlock; with `across` (several adapter
 * instances behind a load balancer) the holder then also takes that lock.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>();

  constructor(private readonly across?: CrossInstanceLock) {}

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
      return await (this.across ? this.across([...new Set(keys)], fn) : fn());
    } finally {
      for (const r of releases) r();
    }
  }

  /** Keys currently held or waited for (for tests). */
  get size(): number {
    return this.tails.size;
  }
}

/** Far above a write's own time (KAFKA_ACK_TIMEOUT_MS, 5 s, plus the store's save). */
const LOCK_WAIT = '30s';

/**
 * The lock across instances: transaction-scoped Postgres advisory locks on the
 * store's schema + key, taken in one order (by lock id) so that two instances
 * cannot deadlock, released by the commit that ends the write. On a pool of
 * its own (main.ts): each holder keeps its connection for the whole write, the
 * Kafka publish included, while the store needs connections of the other pool.
 */
export function advisoryLock(db: Knex, schema: string, lockWait = LOCK_WAIT): CrossInstanceLock {
  return async (keys, fn) => {
    let locked = false;
    try {
      return await db.transaction(async (trx) => {
        // A holder cut off from Postgres keeps its locks until its connection is found dead;
        // waiters answer 503 (the client retries) rather than hang with it.
        await trx.raw(`set local lock_timeout = '${lockWait}'`);
        await trx.raw(
          'select pg_advisory_xact_lock(h) from (select distinct hashtext(k) as h from unnest(?::text[]) as k order by h) as s',
          [keys.map((k) => `hub_fhir_write:${schema}:${k}`)],
        );
        locked = true;
        return fn();
      });
    } catch (err) {
      // The write's own failures pass as they are; the lock's are Postgres's (503, retried).
      if (locked) throw err;
      if (typeof err === 'object' && err !== null && 'code' in err && err.code === '55P03') {
        throw new HubError('HUB_DB_UNAVAILABLE', `resource write lock not granted within ${lockWait}`);
      }
      throw toDbError(err);
    }
  };
}
