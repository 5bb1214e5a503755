import { expect } from 'vitest';
import { invalidPaths, type ClinicalEvent } from '../../libs/events/index.js';
import type { IdentityPolicy } from '../../libs/identity/index.js';
import { contentHash, mapResource, type MapContext, type MapInput } from '../../libs/fhir/mapping.js';

/** What the mapping unit tests share: a context, an input for a resource, and its checked events. */

export function testContext(policy: IdentityPolicy): MapContext {
  return {
    policy,
    recordedAt: Date.UTC(2026, 0, 20, 12),
    source: { system: 'fhir-test', facility: null, messageId: null },
    correlationId: null,
    requestKey: null,
  };
}

/** A first version of `resource` whose subject resolved to `subjectKey`. */
export function inputFor(
  resource: MapInput['resource'],
  subjectKey: string,
  extra: Partial<MapInput> = {},
): MapInput {
  return {
    resource,
    id: 'r1',
    version: 1,
    contentHash: contentHash(resource),
    previous: null,
    subjectKey,
    ...extra,
  };
}

/** The events of a mapping that must succeed, each valid for its schema. */
export function mappedEvents(i: MapInput, ctx: MapContext): ClinicalEvent[] {
  const r = mapResource(i, ctx);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  for (const e of r.events) expect(invalidPaths(e.type, e.data)).toEqual([]);
  return r.events;
}
