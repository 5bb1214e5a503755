import { isMainThread } from 'node:worker_threads';
import { verdictOf, type ToValidate, type Verdict } from './validate-pool.js';
import { loadFhirDefinitions, validateFhirResource } from './validate.js';
import { serveJobs } from './worker-pool.js';

// Worker side of validate-pool.ts: validateFhirResource on each value, only the verdicts go back.
if (!isMainThread) {
  // Before the first job, not during it (~0.6 s).
  loadFhirDefinitions();
  serveJobs((items: ToValidate[]): Verdict[] =>
    items.map((i) => verdictOf(validateFhirResource(i.value, i.expectedType))),
  );
}
