import type { Code, Coding, ObservationValue } from './generated.js';

/**
 * A coded value with one coding and nothing else: the shape most code tables
 * produce. The fields added later (version, alternates, text) are spelled out
 * here once instead of at every table entry.
 */
export function codeOf(system: string, code: string, display: string | null = null): Code {
  return { system, code, display, version: null, alternates: [], text: null };
}

/** Every coding of a coded value, primary first, as FHIR CodeableConcept.coding lists them. */
export function codingsOf(c: Code): Coding[] {
  return [{ system: c.system, code: c.code, display: c.display, version: c.version }, ...c.alternates];
}

/**
 * The ObservationValue fields a value made without OBX or Observation detail leaves empty (no
 * identity across versions, sub-id, coded unit, numeric range, flags, notes or components): an
 * attachment line, a reference pointer, a test fixture.
 */
export function noObservationDetail(): Pick<
  ObservationValue,
  | 'observationId'
  | 'subId'
  | 'unitCode'
  | 'referenceLow'
  | 'referenceHigh'
  | 'interpretations'
  | 'notes'
  | 'components'
  | 'method'
  | 'bodySite'
> {
  return {
    observationId: null,
    subId: null,
    unitCode: null,
    referenceLow: null,
    referenceHigh: null,
    interpretations: [],
    notes: [],
    components: [],
    method: null,
    bodySite: null,
  };
}
