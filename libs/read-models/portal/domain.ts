import { createHash } from 'node:crypto';
import type { EncounterLocation } from '@medplum/fhirtypes';
import type { ClinicalEvent, Demographics, ObservationValue, PatientRegistered } from '../../events/index.js';
import { fieldState, mergeDemographics } from '../../events/demographics.js';
import { undonePart, isReleasedStatus, resultRank, supersedes } from '../../projections/clinical.js';
import {
  evolveByType,
  type Draft,
  type EventOf,
  type EvolveHandlers,
  type Needs,
  type Resolve,
} from '../../projections/store.js';
import {
  dateTimeOf,
  diagnosticReportResource,
  encounterResource,
  locationDisplay,
  observationResource,
  patientResource,
  requestStatus,
  serviceRequestResource,
  subject,
} from './resources.js';
import type { AttachmentRow, EncounterRow, PatientRow, PortalTables, ServiceRequestRow } from './tables.js';

export type * from './tables.js';

/**
 * The patient portal's read model: what a patient may see of their own
 * record, as FHIR R4 resources (rows: tables.ts, resources: resources.ts).
 * Pure: evolves a draft of rows, no I/O; one handler per event type.
 */

export function attachmentRow(d: { sha256: string; contentType: string; data: Buffer }): AttachmentRow {
  return {
    sha256: d.sha256,
    content_type: d.contentType,
    size: d.data.length,
    sha1: createHash('sha1').update(d.data).digest('base64'),
    data: `\\x${d.data.toString('hex')}`,
  };
}

/**
 * Patient.deceasedDateTime after an update: a deceasedAt the update did not
 * send keeps its stored rendering (HL7 null semantics); a sent one is
 * rendered as sent (PID-29, `demographics.deceasedAt` in sourceTimes).
 */
function deceasedRendering(
  prev: PatientRow,
  data: Pick<PatientRegistered, 'demographics' | 'meta'>,
  merged: Demographics,
): string | undefined {
  if (merged.deceasedAt === null) return undefined;
  const kept = prev.resource.deceasedDateTime;
  if (fieldState(data.demographics, 'deceasedAt') === 'notSent' && kept !== undefined) return kept;
  return dateTimeOf(data.meta, 'demographics.deceasedAt', merged.deceasedAt);
}

function placeholderPatient(patientId: string): PatientRow {
  const row = { merged_into: null, replaces: [] };
  return {
    patient_id: patientId,
    placeholder: true,
    ...row,
    resource: patientResource(patientId, null, row),
    demographics: null,
  };
}

function ensurePatient(draft: Draft<PortalTables>, patientId: string): void {
  if (!draft.get('patients', patientId)) draft.put('patients', patientId, placeholderPatient(patientId));
}

function stubEncounter(encounterId: string, patientId: string): EncounterRow {
  return {
    encounter_id: encounterId,
    patient_id: patientId,
    visible: true,
    date_at: null,
    resource: {
      resourceType: 'Encounter',
      id: encounterId,
      status: 'unknown',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'UNK' },
      subject: subject(patientId),
    },
  };
}

function stubRequest(orderId: string, patientId: string): ServiceRequestRow {
  return {
    order_id: orderId,
    patient_id: patientId,
    date_at: null,
    resource: {
      resourceType: 'ServiceRequest',
      id: orderId,
      status: 'unknown',
      intent: 'order',
      subject: subject(patientId),
    },
  };
}

export function needs(e: ClinicalEvent, resolve: Resolve): Needs<PortalTables> {
  switch (e.type) {
    case 'PatientRegistered':
    case 'PatientUpdated':
      return { patients: [e.data.patientId] };
    case 'PatientsMerged':
      return { patients: [e.data.patientId, e.data.mergedPatientId] };
    case 'EncounterStarted':
    case 'EncounterTransferred':
    case 'EncounterEnded':
    case 'EncounterCancelled':
    case 'EncounterTransferCancelled':
    case 'EncounterDischargeCancelled':
      return { patients: [resolve(e.data.patientId)], encounters: [e.data.encounterId] };
    case 'OrderPlaced':
    case 'OrderCancelled':
    case 'OrderStatusChanged':
      return { patients: [resolve(e.data.patientId)], service_requests: [e.data.orderId] };
    case 'ResultReported':
    case 'ResultCorrected':
      return { patients: [resolve(e.data.patientId)], reports: [e.data.resultId] };
    case 'AllergyRecorded':
    case 'CoverageRecorded':
    case 'DiagnosisRecorded':
      return {};
    case 'AttachmentStored':
      // Written over whatever is stored (same sha256, same bytes): no need to load megabytes.
      return {};
  }
}

/** The patient an event is about (its survivor after merges), with a placeholder row until registered. */
function patientOf(draft: Draft<PortalTables>, resolve: Resolve, patientId: string): string {
  const pid = resolve(patientId);
  ensurePatient(draft, pid);
  return pid;
}

const encounterOf = (draft: Draft<PortalTables>, encounterId: string, patientId: string): EncounterRow =>
  draft.get('encounters', encounterId) ?? stubEncounter(encounterId, patientId);

/**
 * Demographics of a retired id stay on its own (inactive) row; they must
 * not overwrite the survivor's. Fields the sender did not send keep the
 * stored value; `""` deletes it (mergeDemographics).
 */
function demographicsReceived(
  draft: Draft<PortalTables>,
  e: EventOf<'PatientRegistered' | 'PatientUpdated'>,
): void {
  const id = e.data.patientId;
  const prev = draft.get('patients', id) ?? placeholderPatient(id);
  const demographics = mergeDemographics(prev.demographics, e.data.demographics);
  draft.put('patients', id, {
    ...prev,
    placeholder: false,
    resource: patientResource(id, demographics, prev, deceasedRendering(prev, e.data, demographics)),
    demographics,
  });
}

/**
 * Links name the direct survivor (FHIR replaced-by / replaces), not the
 * root of a chain: the root depends on which merges were seen already.
 */
function patientsMerged(draft: Draft<PortalTables>, e: EventOf<'PatientsMerged'>): void {
  const retiredId = e.data.mergedPatientId;
  const survivorId = e.data.patientId;
  if (retiredId === survivorId) return;
  const retired = draft.get('patients', retiredId) ?? placeholderPatient(retiredId);
  const retiredNext = { ...retired, merged_into: e.data.patientId };
  draft.put('patients', retiredId, {
    ...retiredNext,
    resource: { ...retired.resource, ...patientResource(retiredId, null, retiredNext) },
  });
  const survivor = draft.get('patients', survivorId) ?? placeholderPatient(survivorId);
  const survivorNext = { ...survivor, replaces: [...new Set([...survivor.replaces, retiredId])].sort() };
  draft.put('patients', survivorId, {
    ...survivorNext,
    resource: { ...survivor.resource, ...patientResource(survivorId, null, survivorNext) },
  });
}

function encounterStarted(
  draft: Draft<PortalTables>,
  e: EventOf<'EncounterStarted'>,
  resolve: Resolve,
): void {
  const pid = patientOf(draft, resolve, e.data.patientId);
  const d = e.data;
  const startAt = d.admittedAt ?? d.meta.occurredAt;
  const start = dateTimeOf(d.meta, d.admittedAt !== null ? 'admittedAt' : 'meta.occurredAt', startAt);
  draft.put('encounters', d.encounterId, {
    encounter_id: d.encounterId,
    patient_id: pid,
    visible: true,
    date_at: startAt,
    resource: encounterResource(d, pid, start),
  });
}

function encounterTransferred(
  draft: Draft<PortalTables>,
  e: EventOf<'EncounterTransferred'>,
  resolve: Resolve,
): void {
  const pid = patientOf(draft, resolve, e.data.patientId);
  const prev = encounterOf(draft, e.data.encounterId, pid);
  const at = dateTimeOf(e.data.meta, 'transferredAt', e.data.transferredAt);
  const locations: EncounterLocation[] = (prev.resource.location ?? []).map((l) =>
    l.status === 'active' ? { ...l, status: 'completed', period: { ...l.period, end: at } } : l,
  );
  locations.push({
    location: { display: locationDisplay(e.data.toLocation) ?? 'unknown' },
    status: 'active',
    period: { start: at },
  });
  draft.put('encounters', e.data.encounterId, {
    ...prev,
    resource: { ...prev.resource, location: locations },
  });
}

function encounterEnded(draft: Draft<PortalTables>, e: EventOf<'EncounterEnded'>, resolve: Resolve): void {
  const pid = patientOf(draft, resolve, e.data.patientId);
  const prev = encounterOf(draft, e.data.encounterId, pid);
  const end = dateTimeOf(e.data.meta, 'endedAt', e.data.endedAt);
  draft.put('encounters', e.data.encounterId, {
    ...prev,
    resource: {
      ...prev.resource,
      status: prev.resource.status === 'entered-in-error' ? 'entered-in-error' : 'finished',
      period: { ...prev.resource.period, end },
      ...(prev.resource.location
        ? {
            location: prev.resource.location.map((l) =>
              l.status === 'active' ? { ...l, status: 'completed', period: { ...l.period, end } } : l,
            ),
          }
        : {}),
    },
  });
}

/** A cancelled admission: withdrawn (entered in error), kept so that late events cannot revive it. */
function visitUndone(prev: EncounterRow): EncounterRow {
  return { ...prev, visible: false, resource: { ...prev.resource, status: 'entered-in-error' } };
}

/** A cancelled transfer: the last location removed, the one before active again. */
function transferUndone(prev: EncounterRow): EncounterRow {
  const locs = [...(prev.resource.location ?? [])];
  if (locs.length >= 2) {
    locs.pop();
    const last = locs[locs.length - 1];
    if (last) {
      const { end: _end, ...period } = last.period ?? {};
      locs[locs.length - 1] = { ...last, status: 'active', period };
    }
  }
  return { ...prev, resource: { ...prev.resource, location: locs } };
}

/** A cancelled discharge: no end, in progress again, the last location active again. */
function dischargeUndone(prev: EncounterRow): EncounterRow {
  const { end: _end, ...period } = prev.resource.period ?? {};
  const locs = [...(prev.resource.location ?? [])];
  const last = locs[locs.length - 1];
  if (last) {
    const { end: _e, ...lp } = last.period ?? {};
    locs[locs.length - 1] = { ...last, status: 'active', period: lp };
  }
  return {
    ...prev,
    resource: {
      ...prev.resource,
      status: prev.resource.status === 'finished' ? 'in-progress' : prev.resource.status,
      period,
      ...(locs.length > 0 ? { location: locs } : {}),
    },
  };
}

const UNDO = { visit: visitUndone, transfer: transferUndone, discharge: dischargeUndone } as const;

function encounterUndone(
  draft: Draft<PortalTables>,
  e: EventOf<'EncounterCancelled' | 'EncounterTransferCancelled' | 'EncounterDischargeCancelled'>,
  resolve: Resolve,
): void {
  const pid = patientOf(draft, resolve, e.data.patientId);
  const prev = encounterOf(draft, e.data.encounterId, pid);
  draft.put('encounters', e.data.encounterId, UNDO[undonePart(e)](prev));
}

function orderPlaced(draft: Draft<PortalTables>, e: EventOf<'OrderPlaced'>, resolve: Resolve): void {
  const pid = patientOf(draft, resolve, e.data.patientId);
  const d = e.data;
  const prev = draft.get('service_requests', d.orderId);
  // An order cancelled or completed before its placement arrived keeps that status.
  const status = prev && prev.resource.status !== 'unknown' ? prev.resource.status : 'active';
  draft.put('service_requests', d.orderId, {
    order_id: d.orderId,
    patient_id: pid,
    date_at: d.orderedAt,
    resource: serviceRequestResource(d, pid, status),
  });
}

function orderStatusChanged(
  draft: Draft<PortalTables>,
  e: EventOf<'OrderCancelled' | 'OrderStatusChanged'>,
  resolve: Resolve,
): void {
  const pid = patientOf(draft, resolve, e.data.patientId);
  const prev = draft.get('service_requests', e.data.orderId) ?? stubRequest(e.data.orderId, pid);
  const status = e.type === 'OrderCancelled' ? 'revoked' : requestStatus(e.data.status);
  // Revoked is terminal: a late status update must not revive a cancelled order.
  if (prev.resource.status === 'revoked') return;
  draft.put('service_requests', e.data.orderId, { ...prev, resource: { ...prev.resource, status } });
}

/**
 * The winning version of a report replaces the shown one with its
 * observations; only a released version (final or corrected) shows them.
 */
function resultReported(
  draft: Draft<PortalTables>,
  e: EventOf<'ResultReported' | 'ResultCorrected'>,
  resolve: Resolve,
): void {
  const pid = patientOf(draft, resolve, e.data.patientId);
  const d = e.data;
  const stamp = { rank: resultRank(d.status), at: d.issuedAt ?? d.meta.occurredAt, eventId: d.meta.eventId };
  const prev = draft.get('reports', d.resultId);
  const current = prev ? { rank: prev.version_rank, at: prev.version_at, eventId: prev.version_event } : null;
  // A preliminary can never be shown and never supersedes what is shown.
  if (stamp.rank <= 1 || !supersedes(stamp, current)) return;
  for (const r of prev?.resource.result ?? []) {
    const id = r.reference?.split('/')[1];
    if (id) draft.delete('observations', id);
  }
  const released = isReleasedStatus(d.status);
  const observed = (o: ObservationValue, i: number) =>
    o.observedAt === null ? undefined : dateTimeOf(d.meta, `observations[${i}].observedAt`, o.observedAt);
  const shown = released
    ? d.observations.map((o, i) => ({
        o,
        resource: observationResource(d.resultId, pid, d.encounterId, o, observed(o, i)),
      }))
    : [];
  for (const { o, resource } of shown) {
    draft.put('observations', resource.id, {
      observation_id: resource.id,
      result_id: d.resultId,
      patient_id: pid,
      resource,
      date_at: o.observedAt,
    });
  }
  draft.put('reports', d.resultId, {
    result_id: d.resultId,
    patient_id: pid,
    order_id: d.orderId,
    visible: released,
    version_rank: stamp.rank,
    version_at: stamp.at,
    version_event: stamp.eventId,
    resource: diagnosticReportResource(
      d,
      pid,
      shown.map(({ resource }) => resource.id),
    ),
    date_at: d.effectiveAt,
  });
}

const HANDLERS: EvolveHandlers<PortalTables> = {
  PatientRegistered: demographicsReceived,
  PatientUpdated: demographicsReceived,
  PatientsMerged: patientsMerged,
  EncounterStarted: encounterStarted,
  EncounterTransferred: encounterTransferred,
  EncounterEnded: encounterEnded,
  EncounterCancelled: encounterUndone,
  EncounterTransferCancelled: encounterUndone,
  EncounterDischargeCancelled: encounterUndone,
  OrderPlaced: orderPlaced,
  OrderCancelled: orderStatusChanged,
  OrderStatusChanged: orderStatusChanged,
  ResultReported: resultReported,
  ResultCorrected: resultReported,
  AllergyRecorded: () => undefined,
  CoverageRecorded: () => undefined,
  DiagnosisRecorded: () => undefined,
  AttachmentStored: (draft, e) => draft.put('attachments', e.data.sha256, attachmentRow(e.data)),
};

export const evolve = evolveByType(HANDLERS);
