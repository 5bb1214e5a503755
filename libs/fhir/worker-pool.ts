import { parentPort, Worker } from 'node:worker_threads';
import { HubError } from '../errors/index.js';

/**
 * Worker threads that each answer jobs of one kind, in the order the caller
 * picks them: the plumbing shared by the import's prepare pool and the
 * Bundle validator (both spread FHIR validation, the CPU-heavy step, over
 * threads). A worker module serves its jobs with `serveJobs`.
 */
export interface WorkerPool<J, O> {
  readonly size: number;
  /** The job's answer from worker `index` (modulo the pool's size). */
  run(index: number, job: J): Promise<O>;
  /** Answers still pending are refused, later calls too. */
  close(): Promise<void>;
}

type Reply<O> = { id: number; out: O } | { id: number; error: string };

/**
 * `name` is the worker module's file name without extension, beside `base`
 * (the caller's import.meta.url): under tsx the sources are .ts, built they
 * are .js. `what` names the pool in its errors ("prepare", "validate").
 */
export function workerPool<J, O>(
  base: string,
  name: string,
  threads: number,
  what: string,
): WorkerPool<J, O> {
  const isTs = base.endsWith('.ts');
  const url = new URL(`./${name}.${isTs ? 'ts' : 'js'}`, base);
  const pending = new Map<number, { resolve: (o: O) => void; reject: (e: Error) => void }>();
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
    w.on('message', (m: Reply<O>) => {
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      if ('error' in m) p.reject(new HubError('HUB_INTERNAL', `${what} worker failed: ${m.error}`));
      else p.resolve(m.out);
    });
    // An uncaught error's message may quote the resource or line: only its name goes on.
    w.on('error', (err) =>
      fail(new HubError('HUB_INTERNAL', `${what} worker failed: ${err.name}`, { cause: err })),
    );
    w.on('exit', (code) => fail(new HubError('HUB_INTERNAL', `${what} worker exited (${code})`)));
    w.unref();
    return w;
  });
  let nextId = 0;
  return {
    size: workers.length,
    run: (index, job) =>
      new Promise<O>((resolve, reject) => {
        if (dead) return reject(dead);
        const id = nextId++;
        pending.set(id, { resolve, reject });
        (workers[index % workers.length] as Worker).postMessage({ id, job });
      }),
    async close() {
      fail(new HubError('HUB_INTERNAL', `${what} pool closed`));
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}

/**
 * The worker side: answers each job with `handle`'s result. A thrown error
 * goes back by its name only (its message may quote PHI). Does nothing when
 * the module is not loaded as a worker.
 */
export function serveJobs<J, O>(handle: (job: J) => O): void {
  const port = parentPort;
  if (!port) return;
  port.on('message', ({ id, job }: { id: number; job: J }) => {
    try {
      port.postMessage({ id, out: handle(job) });
    } catch (err) {
      port.postMessage({ id, error: err instanceof Error ? err.name : 'Error' });
    }
  });
}
