import type { SkipFields } from '../../libs/events/codec.js';
import type { ClinicalEvent } from '../../libs/events/index.js';

/**
 * The event as a codec skipping `skip` decodes it: the listed top-level
 * fields absent. Typed as the whole event on purpose: a read model's tests
 * run its handlers on these, so that a handler reading a skipped field
 * through a path the compiler does not see (a spread, a JSON copy) shows.
 */
export function withoutSkipped(e: ClinicalEvent, skip: SkipFields): ClinicalEvent {
  const fields: readonly string[] | undefined = skip[e.type];
  if (!fields || fields.length === 0) return e;
  const data: Record<string, unknown> = { ...e.data };
  for (const f of fields) delete data[f];
  return { type: e.type, data } as unknown as ClinicalEvent;
}
