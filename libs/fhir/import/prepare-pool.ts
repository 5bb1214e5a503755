import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { HubError } from '../../errors/index.js';
import type { ImportItem } from '../stream.js';
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
  id: number;
  items: readonly ImportItem[];
  label: string;
}
type Reply = { id: number; out: Prepared[] } | { id: number; error: string };

/**
 * FHIR validation dominates an import's CPU time (~0.1-0.5 ms per resource);
 * workers spread it over the cores while the main thread plans and publishes
 * the previous chunk. A chunk is split across the workers and reassembled in
 * line order.
 */
export function workerPreparer(threads = Math.max(1, Math.min(4, availableParallelism()))): Preparer {
  // Under tsx the sources are .ts; built, they are .js next to this file.
  const isTs = import.meta.url.endsWith('.ts');
  const url = new URL(`./prepare-worker.${isTs ? 'ts' : 'js'}`, import.meta.url);
  const pending = new Map<number, { resolve: (p: Prepared[]) => void; reject: (e: Error) => void }>();
  let dead: Error | null = null;
  const fail = (err: Error) => {
    dead ??= err;
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  const workers = Array.from({ length: threads }, () => {
    // Under tsx a worker does not inherit the TypeScript loader: a tiny bootstrap registers it first.
    const w = isTs
      ? new Worker(
          `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((m) => { m.register(); return import(${JSON.stringify(url.href)}); });`,
          { eval: true },
        )
      : new Worker(url);
    w.on('message', (m: Reply) => {
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      if ('error' in m) p.reject(new HubError('HUB_INTERNAL', `prepare worker failed: ${m.error}`));
      else p.resolve(m.out);
    });
    // An uncaught error's message may quote the line being validated: only its name goes on.
    w.on('error', (err) =>
      fail(new HubError('HUB_INTERNAL', `prepare worker failed: ${err.name}`, { cause: err })),
    );
    w.on('exit', (code) => fail(new HubError('HUB_INTERNAL', `prepare worker exited (${code})`)));
    w.unref();
    return w;
  });
  let next = 0;
  const run = (w: Worker, job: Job) =>
    new Promise<Prepared[]>((resolve, reject) => {
      if (dead) return reject(dead);
      pending.set(job.id, { resolve, reject });
      w.postMessage(job);
    });
  return {
    async prepare(items, label) {
      const per = Math.ceil(items.length / workers.length);
      const parts = await Promise.all(
        workers.map((w, i) => {
          const slice = items.slice(i * per, (i + 1) * per);
          return slice.length === 0 ? Promise.resolve([]) : run(w, { id: next++, items: slice, label });
        }),
      );
      return parts.flat();
    },
    async close() {
      dead ??= new HubError('HUB_INTERNAL', 'prepare pool closed');
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}
