import { createHash } from 'node:crypto';
import type {
  Annotation,
  EncounterLocation,
  Identifier as FhirIdentifier,
  ServiceRequest,
} from '@medplum/fhirtypes';
import type { ClinicalEvent, Demographics, PatientRegistered } from '../../events/index.js';
import { annotationsOf } from './elements.js';
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
  concept,
  encounterResource,
  locationDisplay,
  observationIdOf,
  observationResource,
  orderIdentifiers,
  patientResource,
  requestStatus,
  serviceRequestResource,
  subject,
  timesOf,
  withAttender,
  withEncounterFacts,
} from './resources.js';
import {
  allergyRecorded,
  clinicalNeeds,
  coverageRecorded,
  diagnosisRecorded,
  keptDiagnoses,
} from './clinical.js';
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
  if (!draft.has('patients', patientId)) draft.put('patients', patientId, placeholderPatient(patientId));
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

/**
 * The rows an event reads. The patient an encounter, order, result or
 * clinical fact is about is only made to exist (a placeholder until
 * registered): `presence`, so its resource is not read back per batch.
 */
export function needs(e: ClinicalEvent): Needs<PortalTables> {
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
      return { encounters: [e.data.encounterId] };
    case 'OrderPlaced':
    case 'OrderCancelled':
    case 'OrderStatusChanged':
      return { service_requests: [e.data.orderId] };
    case 'ResultReported':
    case 'ResultCorrected':
      // The order too: basedOn must resolve, so a report of an order not (yet) seen makes its stub.
      return {
        reports: [e.data.resultId],
        ...(e.data.orderId ? { service_requests: [e.data.orderId] } : {}),
      };
    case 'AllergyRecorded':
    case 'CoverageRecorded':
    case 'DiagnosisRecorded':
      return clinicalNeeds(e);
    case 'AttachmentStored':
      // Written over whatever is stored (same sha256, same bytes): no need to load megabytes.
      return {};
    case 'PatientLinkProposed':
    case 'PatientsLinked':
    case 'PatientsUnlinked':
    case 'PatientLinkRejected':
      return {};
  }
}

/** Rows an event only needs to exist: the patient of every event that is not about the patient itself (patientOf). */
export function presence(e: ClinicalEvent, resolve: Resolve): Needs<PortalTables> {
  switch (e.type) {
    case 'PatientRegistered':
    case 'PatientUpdated':
    case 'PatientsMerged':
    case 'AttachmentStored':
    case 'PatientLinkProposed':
    case 'PatientsLinked':
    case 'PatientsUnlinked':
    case 'PatientLinkRejected':
      return {};
    case 'EncounterStarted':
    case 'EncounterTransferred':
    case 'EncounterEnded':
    case 'EncounterCancelled':
    case 'EncounterTransferCancelled':
    case 'EncounterDischargeCancelled':
    case 'OrderPlaced':
    case 'OrderCancelled':
    case 'OrderStatusChanged':
    case 'ResultReported':
    case 'ResultCorrected':
    case 'AllergyRecorded':
    case 'CoverageRecorded':
    case 'DiagnosisRecorded':
      return { patients: [resolve(e.data.patientId)] };
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
    // Diagnoses recorded before this (re)statement of the visit stay on it (clinical.ts).
    resource: keptDiagnoses(encounterResource(d, pid, start), draft.get('encounters', d.encounterId)),
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
  const participant = withAttender(prev.resource.participant ?? [], e.data.attendingPractitioner, at);
  draft.put('encounters', e.data.encounterId, {
    ...prev,
    resource: {
      ...withEncounterFacts(prev.resource, e.data),
      location: locations,
      ...(participant.length > 0 ? { participant } : {}),
    },
  });
}

function encounterEnded(draft: Draft<PortalTables>, e: EventOf<'EncounterEnded'>, resolve: Resolve): void {
  const pid = patientOf(draft, resolve, e.data.patientId);
  const prev = encounterOf(draft, e.data.encounterId, pid);
  const end = dateTimeOf(e.data.meta, 'endedAt', e.data.endedAt);
  const participant = withAttender(
    prev.resource.participant ?? [],
    e.data.attendingPractitioner ?? null,
    end,
  );
  draft.put('encounters', e.data.encounterId, {
    ...prev,
    resource: {
      ...withEncounterFacts(prev.resource, e.data),
      status: prev.resource.status === 'entered-in-error' ? 'entered-in-error' : 'finished',
      period: { ...prev.resource.period, end },
      ...(participant.length > 0 ? { participant } : {}),
      ...endLocations(prev.resource.location, locationDisplay(e.data.location ?? null), end),
    },
  });
}

/**
 * Locations at discharge: the active one completed at the end. A discharge location (PV1-3 on
 * the A03) the visit has no record of yet is added as the last, completed location.
 */
function endLocations(
  prev: readonly EncounterLocation[] | undefined,
  discharged: string | undefined,
  end: string,
): { location?: EncounterLocation[] } {
  const locations = (prev ?? []).map((l): EncounterLocation =>
    l.status === 'active' ? { ...l, status: 'completed', period: { ...l.period, end } } : l,
  );
  const last = locations[locations.length - 1];
  if (discharged && last?.location.display !== discharged)
    locations.push({ location: { display: discharged }, status: 'completed', period: { end } });
  return locations.length > 0 ? { location: locations } : {};
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
  const undone = UNDO[undonePart(e)](prev);
  const encounterClass = e.type === 'EncounterCancelled' ? e.data.encounterClass : null;
  draft.put('encounters', e.data.encounterId, {
    ...undone,
    resource: withEncounterFacts(undone.resource, { encounterClass }),
  });
}

function orderPlaced(draft: Draft<PortalTables>, e: EventOf<'OrderPlaced'>, resolve: Resolve): void {
  const pid = patientOf(draft, resolve, e.data.patientId);
  const d = e.data;
  const prev = draft.get('service_requests', d.orderId);
  // An order cancelled or completed before its placement arrived keeps that status; else the
  // status the placer sent (ORC-5), else active.
  const status =
    prev && prev.resource.status !== 'unknown'
      ? prev.resource.status
      : d.orderStatus
        ? requestStatus(d.orderStatus)
        : 'active';
  const placed = serviceRequestResource(d, pid, status);
  // Numbers and notes that status changes or results brought before the placement stay.
  const identifier = withIdentifiers(placed.identifier, prev?.resource.identifier ?? []);
  const note = withNotes(placed.note, prev?.resource.note ?? []);
  draft.put('service_requests', d.orderId, {
    order_id: d.orderId,
    patient_id: pid,
    date_at: d.orderedAt,
    resource: {
      ...placed,
      ...(identifier.length > 0 ? { identifier } : {}),
      ...(note.length > 0 ? { note } : {}),
    },
  });
}

/** Notes with those not yet there (same text) added, in arrival order. */
function withNotes(prev: readonly Annotation[] | undefined, add: readonly Annotation[]): Annotation[] {
  const out = [...(prev ?? [])];
  for (const n of add) if (!out.some((o) => o.text === n.text)) out.push(n);
  return out;
}

function orderStatusChanged(
  draft: Draft<PortalTables>,
  e: EventOf<'OrderCancelled' | 'OrderStatusChanged'>,
  resolve: Resolve,
): void {
  const pid = patientOf(draft, resolve, e.data.patientId);
  const prev = draft.get('service_requests', e.data.orderId) ?? stubRequest(e.data.orderId, pid);
  const status = e.type === 'OrderCancelled' ? 'revoked' : statusAfter(e.data.status, e.data.resultStatus);
  // Revoked is terminal: a late status update must not revive a cancelled order.
  if (prev.resource.status === 'revoked') return;
  const identifier = withIdentifiers(
    prev.resource.identifier,
    orderIdentifiers(e.data.placerOrderNumber, e.data.fillerOrderNumber),
  );
  const notes =
    e.type === 'OrderStatusChanged' ? annotationsOf(e.data.notes ?? [], 'notes', timesOf(e.data.meta)) : [];
  const note = withNotes(prev.resource.note, notes);
  draft.put('service_requests', e.data.orderId, {
    ...prev,
    resource: {
      ...prev.resource,
      ...(identifier.length > 0 ? { identifier } : {}),
      status,
      ...(note.length > 0 ? { note } : {}),
    },
  });
}

/** An order whose results are final (OBR-25 F or C) is completed whatever ORC-5 said. */
function statusAfter(status: string, resultStatus: string | null): ServiceRequest['status'] {
  const s = requestStatus(status);
  return s === 'active' && (resultStatus === 'final' || resultStatus === 'corrected') ? 'completed' : s;
}

/** Identifiers with those newly known (a filler number first sent on a status change) added once. */
function withIdentifiers(
  prev: readonly FhirIdentifier[] | undefined,
  add: readonly FhirIdentifier[],
): FhirIdentifier[] {
  const out = [...(prev ?? [])];
  for (const i of add)
    if (
      !out.some(
        (o) =>
          o.system === i.system &&
          o.value === i.value &&
          o.type?.coding?.[0]?.code === i.type?.coding?.[0]?.code,
      )
    )
      out.push(i);
  return out;
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
  const ctx = {
    resultId: d.resultId,
    patientId: pid,
    encounterId: d.encounterId,
    category: d.category,
    meta: d.meta,
    reportEffective: d.effectiveAt !== null ? dateTimeOf(d.meta, 'effectiveAt', d.effectiveAt) : undefined,
    specimens: d.specimens ?? [],
    performer: d.performer,
  };
  const ids = observationIds(d.resultId, d.observations);
  const shown = released
    ? d.observations.map((o, i) => ({
        o,
        resource: observationResource(ctx, o, i, ids[i] ?? `${d.resultId}-${i}`),
      }))
    : [];
  for (const { o, resource } of shown) {
    draft.put('observations', resource.id, {
      observation_id: resource.id,
      result_id: d.resultId,
      patient_id: pid,
      resource,
      // The instant effectiveDateTime shows: the observation's own, else the report's.
      date_at: o.observedAt ?? d.effectiveAt,
    });
  }
  if (d.orderId) {
    const order = draft.get('service_requests', d.orderId) ?? stubRequest(d.orderId, pid);
    const resource = requestKnownFromReport(order.resource, d);
    if (resource) draft.put('service_requests', d.orderId, { ...order, resource });
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

/**
 * Observation ids of a report's lines, in order: observationIdOf each, a repeat within the report
 * (one code twice with no sub-id) made unique by its position so that neither hides the other.
 */
export function observationIds(
  resultId: string,
  observations: EventOf<'ResultReported'>['data']['observations'],
): string[] {
  const seen = new Set<string>();
  return observations.map((o) => {
    const base = observationIdOf(resultId, o);
    const id = seen.has(base) ? `${base}-${o.sequence}` : base;
    seen.add(id);
    return id;
  });
}

/**
 * What a report says of the order it fulfils, added to the order as known so far (a stub when
 * its placement was not seen, e.g. a result-only feed): the placer/filler numbers it lacks, and
 * what was ordered when nothing else said. Only additions, so the order's row is the same
 * whichever of placement, status changes and results arrives first; a later OrderPlaced
 * replaces the rest (and keeps these numbers). Null when the report adds
 * nothing: known from what was added, not by serialising the resource twice
 * per result (a replay's hottest comparison).
 */
function requestKnownFromReport(
  prev: ServiceRequest,
  d: EventOf<'ResultReported' | 'ResultCorrected'>['data'],
): ServiceRequest | null {
  const identifier = withIdentifiers(
    prev.identifier,
    orderIdentifiers(d.placerOrderNumber, d.fillerOrderNumber),
  );
  const code = prev.code ? undefined : concept(d.orderCode ?? d.code);
  if (identifier.length === (prev.identifier?.length ?? 0) && code === undefined) return null;
  return {
    ...prev,
    ...(identifier.length > 0 ? { identifier } : {}),
    ...(code === undefined ? {} : { code }),
  };
}

/**
 * A link is not a merge: no resource moves and no Patient.link is stored.
 * The store records the pair (person_links, libs/projections/store.ts); the
 * API presents the person when it reads (both records' identifiers, `seealso`
 * links, the record of both), so an unlink splits them with nothing to undo.
 */
const identityDecision = (): void => undefined;

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
  AllergyRecorded: (draft, e, resolve) =>
    allergyRecorded(draft, e.data, patientOf(draft, resolve, e.data.patientId)),
  CoverageRecorded: (draft, e, resolve) =>
    coverageRecorded(draft, e.data, patientOf(draft, resolve, e.data.patientId)),
  DiagnosisRecorded: (draft, e, resolve) =>
    diagnosisRecorded(draft, e.data, patientOf(draft, resolve, e.data.patientId), (id, pid) =>
      encounterOf(draft, id, pid),
    ),
  AttachmentStored: (draft, e) => draft.put('attachments', e.data.sha256, attachmentRow(e.data)),
  PatientLinkProposed: identityDecision,
  PatientsLinked: identityDecision,
  PatientsUnlinked: identityDecision,
  PatientLinkRejected: identityDecision,
};

export const evolve = evolveByType(HANDLERS);
