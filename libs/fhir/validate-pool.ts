import type { Resource } from '@medplum/fhirtypes';
import { validateFhirResource, type Invalid, type Parsed } from './validate.js';
import { workerPool } from './worker-pool.js';

/** One value to check, with the resource type its URL names (if any). */
export interface ToValidate {
  value: unknown;
  expectedType?: string | undefined;
}

/** What validateFhirResource decided, without the value (the caller holds it). */
export type Verdict = { ok: true } | Invalid;

/** validateFhirResource over many values, here or in worker threads. */
export interface ResourceValidator {
  validate(items: readonly ToValidate[]): Promise<Verdict[]>;
  close(): Promise<void>;
}

export function verdictOf(p: Parsed<Resource>): Verdict {
  return p.ok ? { ok: true } : p;
}

/** The checks in line, on the calling thread. */
export function inlineValidator(): ResourceValidator {
  return {
    validate: (items) =>
      Promise.resolve(items.map((i) => verdictOf(validateFhirResource(i.value, i.expectedType)))),
    close: () => Promise.resolve(),
  };
}

/**
 * FHIR validation is most of a Bundle's CPU on the request thread (~50-70 µs a resource):
 * `threads` workers check a request's entries while the main thread plans and commits other
 * requests. Only the verdicts come back (the caller keeps its own parsed values: a structured
 * clone of a JSON tree is that tree). Each worker holds its own copy of the StructureDefinitions.
 */
export function workerValidator(threads: number): ResourceValidator {
  const pool = workerPool<readonly ToValidate[], Verdict[]>(
    import.meta.url,
    'validate-worker',
    threads,
    'validate',
  );
  // Round robin: requests are of similar size (a Bundle's entries), and there is no queue to balance.
  let next = 0;
  let closed = false;
  return {
    validate: (items) => (items.length === 0 && !closed ? Promise.resolve([]) : pool.run(next++, items)),
    close() {
      closed = true;
      return pool.close();
    },
  };
}

/** Inline for 0 threads, else a pool of that many workers. */
export function resourceValidator(threads: number): ResourceValidator {
  return threads > 0 ? workerValidator(threads) : inlineValidator();
}
