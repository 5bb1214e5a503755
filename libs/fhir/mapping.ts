import { mapAllergy } from './map-allergy.js';
import type { Specimen } from '@medplum/fhirtypes';
import {
  hubIdOfResource,
  needSubject,
  type MapContext,
  type MapInput,
  type MapResult,
} from './map-common.js';
import { mapCondition } from './map-condition.js';
import { mapCoverage } from './map-coverage.js';
import { mapEncounter } from './map-encounter.js';
import { mapServiceRequest } from './map-order.js';
import { mapPatient } from './map-patient.js';
import { mapResult } from './map-result.js';

/**
 * Pure mapping of FHIR R4 resources to the hub's events, one module per resource (map-*.ts; shared
 * datatypes and ids in map-common.ts). The adapter resolves references (I/O) beforehand and passes
 * what it found; the mapping decides which events a resource means given what the hub knew before
 * (`previous`). Documented per resource in mapping.md.
 */

export {
  contentHash,
  fhirTime,
  hubIdFor,
  hubIdOfReference,
  hubIdOfResource,
  linksOf,
  logicalIdSystem,
  parseLiteralReference,
  patientKeyFromIdentifierReference,
  resultIdFor,
  subjectOf,
  toHubIdentifier,
  type FhirTime,
  type MapContext,
  type MapInput,
  type MappableResource,
  type MapResult,
  type PriorVersion,
  type ResourceLinks,
  type ResourceState,
} from './map-common.js';
export { demographicsOf } from './map-patient.js';
export { observationValue } from './map-observation.js';

export function mapResource(input: MapInput, ctx: MapContext): MapResult {
  const r = input.resource;
  switch (r.resourceType) {
    case 'Patient':
      return mapPatient(r, input, ctx);
    case 'Encounter':
      return mapEncounter(r, input, ctx);
    case 'ServiceRequest':
      return mapServiceRequest(r, input, ctx);
    case 'Observation':
    case 'DiagnosticReport':
      return mapResult(r, input, ctx);
    case 'AllergyIntolerance':
      return mapAllergy(r, input, ctx);
    case 'Condition':
      return mapCondition(r, input, ctx);
    case 'Coverage':
      return mapCoverage(r, input, ctx);
    case 'Specimen':
      return mapSpecimen(r, input, ctx);
  }
}

/**
 * A Specimen is stored so that reports and orders can reference it (in the same bundle or later);
 * it makes no event of its own: its content travels in the result or order naming it.
 */
function mapSpecimen(s: Specimen, input: MapInput, ctx: MapContext): MapResult {
  const subject = needSubject(input, 'Specimen');
  if (typeof subject !== 'string') return subject;
  const hubId = input.previous?.hubId ?? hubIdOfResource(s, input.id, ctx.policy);
  return {
    ok: true,
    events: [],
    state: { hubId, patientKey: subject, status: s.status ?? null, location: null },
  };
}
