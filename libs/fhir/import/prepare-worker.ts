import { parentPort } from 'node:worker_threads';
import { loadFhirDefinitions } from '../validate.js';
import { prepare, type Prepared } from './prepare.js';

// Worker side of prepare-pool.ts: parse and validate, send back without the raw text.
const port = parentPort;
if (port) {
  loadFhirDefinitions();
  port.on(
    'message',
    (job: { id: number; items: { line: number; text: string; isEntry: boolean }[]; label: string }) => {
      try {
        const out: Prepared[] = job.items.flatMap((i) =>
          prepare(i, job.label).map((p) => ({ ...p, item: { ...p.item, text: '' } })),
        );
        port.postMessage({ id: job.id, out });
      } catch (err) {
        port.postMessage({ id: job.id, error: err instanceof Error ? err.name : 'Error' });
      }
    },
  );
}
