import { availableParallelism } from 'node:os';
import type { ImportItem } from '../stream.js';
import { workerPool } from '../worker-pool.js';
import { prepare, type Prepared } from './prepare.js';

export type { Prepared };

/** Runs the parse-and-validate stage of an import, here or in worker threads. */
export interface Preparer {
  prepare(items: readonly ImportItem[], label: string): Promise<Prepared[]>;
  close(): Promise<void>;
}

export function inlinePreparer(): Preparer {
  return {
    prepare: (items, label) => Promise.resolve(items.flatMap((i) => prepare(i, label))),
    close: () => Promise.resolve(),
  };
}

interface Job {
  items: readonly ImportItem[];
  label: string;
}

/**
 * FHIR validation dominates an import's CPU time (~0.1-0.5 ms per resource);
 * workers spread it over the cores while the main thread plans and publishes
 * the previous chunk. A chunk is split across the workers and reassembled in
 * line order.
 */
export function workerPreparer(threads = Math.max(1, Math.min(4, availableParallelism()))): Preparer {
  const pool = workerPool<Job, Prepared[]>(import.meta.url, 'prepare-worker', threads, 'prepare');
  return {
    async prepare(items, label) {
      const per = Math.ceil(items.length / pool.size);
      const parts = await Promise.all(
        Array.from({ length: pool.size }, (_, i) => {
          const slice = items.slice(i * per, (i + 1) * per);
          return slice.length === 0 ? Promise.resolve([]) : pool.run(i, { items: slice, label });
        }),
      );
      return parts.flat();
    },
    close: () => pool.close(),
  };
}
