import { isMainThread } from 'node:worker_threads';
import { loadFhirDefinitions } from '../validate.js';
import { serveJobs } from '../worker-pool.js';
import type { ImportItem } from '../stream.js';
import { prepare, type Prepared } from './prepare.js';

// Worker side of prepare-pool.ts: parse and validate, send back without the raw text.
if (!isMainThread) {
  // Before the first job, not during it (~0.6 s).
  loadFhirDefinitions();
  serveJobs(({ items, label }: { items: ImportItem[]; label: string }): Prepared[] =>
    items.flatMap((i) => prepare(i, label).map((p) => ({ ...p, item: { ...p.item, text: '' } }))),
  );
}
