/**
 * The FHIR resource a clinical event is about (a rest-hook notification's
 * `focus`), by the ids the hub's own FHIR API serves it under, and, for
 * `full-resource` payloads, the resource itself rendered from the event by
 * the portal read model's own renderers (libs/read-models/portal), so that
 * a subscriber gets what `GET /fhir/<type>/<id>` would show for that fact.
 * Pure.
 *
 * Ids (services/api/readers/portal.ts reads them from these columns):
 *   Patient             the enterprise patient id (PatientsMerged: the survivor)
 *   Encounter           encounterId        ServiceRequest     orderId
 *   DiagnosticReport    resultId           Condition          diagnosisId
 *   AllergyIntolerance  allergyId          Coverage           coverageId
 *   Binary              sha256 (DiagnosticReport.presentedForm's `Binary/<sha256>`)
 *
 * Rendered from one event alone (`full-resource`): PatientRegistered and
 * PatientUpdated when their demographics are a full snapshot, EncounterStarted,
 * OrderPlaced, ResultReported, ResultCorrected, AllergyRecorded,
 * DiagnosisRecorded, CoverageRecorded. The rest (a merge, a transfer, a
 * discharge, a cancellation, a status change, an HL7 update that sends only
 * some fields, an attachment) change a resource whose state is the fold of
 * earlier events, which one event does not carry: they are sent as `id-only`
 * (the focus reference and fullUrl, no resource) and the subscriber reads the
 * resource from the hub's FHIR API.
 */
import type { Resource } from '@medplum/fhirtypes';
import type { ClinicalEvent, EventType, EventTypeMap } from '../events/index.js';
import { isReleasedStatus } from '../projections/clinical.js';
import { allergyResource, conditionResource, coverageResource } from '../read-models/portal/clinical.js';
import { observationIds } from '../read-models/portal/domain.js';
import {
  dateTimeOf,
  diagnosticReportResource,
  encounterResource,
  patientResource,
  requestStatus,
  serviceRequestResource,
} from '../read-models/portal/resources.js';
import { RESOURCE_TYPE_OF } from './model.js';

export interface Focus {
  resourceType: string;
  id: string;
  /** The event first makes the resource known (a create: POST/201 in the bundle entry), else an update. */
  created: boolean;
}

const CREATING = new Set<ClinicalEvent['type']>([
  'PatientRegistered',
  'EncounterStarted',
  'OrderPlaced',
  'ResultReported',
  'AttachmentStored',
]);

/** The id each event's resource has in the hub's FHIR API. */
const ID_OF: { readonly [K in EventType]: (d: EventTypeMap[K]) => string } = {
  PatientRegistered: (d) => d.patientId,
  PatientUpdated: (d) => d.patientId,
  // The survivor: the retired id's resource only says it was replaced.
  PatientsMerged: (d) => d.patientId,
  AllergyRecorded: (d) => d.allergyId,
  CoverageRecorded: (d) => d.coverageId,
  DiagnosisRecorded: (d) => d.diagnosisId,
  EncounterStarted: (d) => d.encounterId,
  EncounterTransferred: (d) => d.encounterId,
  EncounterEnded: (d) => d.encounterId,
  EncounterCancelled: (d) => d.encounterId,
  EncounterTransferCancelled: (d) => d.encounterId,
  EncounterDischargeCancelled: (d) => d.encounterId,
  OrderPlaced: (d) => d.orderId,
  OrderCancelled: (d) => d.orderId,
  OrderStatusChanged: (d) => d.orderId,
  ResultReported: (d) => d.resultId,
  ResultCorrected: (d) => d.resultId,
  AttachmentStored: (d) => d.sha256,
  PatientLinkProposed: (d) => d.patientId,
  PatientsLinked: (d) => d.patientId,
  PatientsUnlinked: (d) => d.patientId,
  PatientLinkRejected: (d) => d.patientId,
};

function focusId<K extends EventType>(e: { type: K; data: EventTypeMap[K] }): string {
  const idOf: (d: EventTypeMap[K]) => string = ID_OF[e.type];
  return idOf(e.data);
}

export function focusOf(e: ClinicalEvent): Focus {
  return { resourceType: RESOURCE_TYPE_OF[e.type], id: focusId(e), created: CREATING.has(e.type) };
}

/** A full snapshot of demographics: nothing left out or deleted field by field (an HL7 partial update is not one). */
const isSnapshot = (d: { notSent?: readonly string[]; cleared?: readonly string[] }) =>
  (d.notSent ?? []).length === 0 && (d.cleared ?? []).length === 0;

/**
 * The resource as the event states it, or null when one event does not say
 * the whole resource (see the module comment): the notification is then id-only.
 */
export function renderFocus(e: ClinicalEvent): Resource | null {
  const pid = e.data.patientId;
  switch (e.type) {
    case 'PatientRegistered':
    case 'PatientUpdated': {
      const d = e.data.demographics;
      if (!isSnapshot(d)) return null;
      const deceased =
        d.deceasedAt !== null ? dateTimeOf(e.data.meta, 'demographics.deceasedAt', d.deceasedAt) : undefined;
      return patientResource(pid, d, { merged_into: null, replaces: [] }, deceased);
    }
    case 'EncounterStarted': {
      const d = e.data;
      const start = dateTimeOf(
        d.meta,
        d.admittedAt !== null ? 'admittedAt' : 'meta.occurredAt',
        d.admittedAt ?? d.meta.occurredAt,
      );
      return encounterResource(d, pid, start);
    }
    case 'OrderPlaced':
      return serviceRequestResource(
        e.data,
        pid,
        e.data.orderStatus ? requestStatus(e.data.orderStatus) : 'active',
      );
    case 'ResultReported':
    case 'ResultCorrected': {
      // As the portal: the observations of a released report; an unreleased one names none.
      const d = e.data;
      const ids = isReleasedStatus(d.status) ? observationIds(d.resultId, d.observations) : [];
      return diagnosticReportResource(d, pid, ids);
    }
    case 'AllergyRecorded':
      return allergyResource(e.data, pid);
    case 'DiagnosisRecorded':
      return conditionResource(e.data, pid);
    case 'CoverageRecorded':
      return coverageResource(e.data, pid);
    case 'PatientsMerged':
    case 'EncounterTransferred':
    case 'EncounterEnded':
    case 'EncounterCancelled':
    case 'EncounterTransferCancelled':
    case 'EncounterDischargeCancelled':
    case 'OrderCancelled':
    case 'OrderStatusChanged':
    case 'AttachmentStored':
    case 'PatientLinkProposed':
    case 'PatientsLinked':
    case 'PatientsUnlinked':
    case 'PatientLinkRejected':
      return null;
  }
}
