import { createHash } from 'node:crypto';
import type {
  Attachment,
  CodeableConcept,
  DiagnosticReport,
  Encounter,
  EncounterLocation,
  Observation,
  Patient,
  PatientLink,
  ServiceRequest,
} from '@medplum/fhirtypes';
import type {
  ClinicalEvent,
  Code,
  Demographics,
  EncounterStarted,
  EventMeta,
  ObservationValue,
  PatientRegistered,
  ResultReported,
} from '../../libs/events/index.js';
import { fieldState, mergeDemographics } from '../../libs/events/demographics.js';
import { renderDateTime, renderInstant, type SentAs } from '../../libs/fhir/datetime.js';
import { undonePart, isReleasedStatus, resultRank, supersedes } from '../../libs/projections/clinical.js';
import type { Draft, Needs, Resolve } from '../../libs/projections/store.js';

/**
 * The patient portal's read model: what a patient may see of their own
 * record, as FHIR R4 resources. Pure: evolves a draft of rows, no I/O.
 *
 * Visibility rules: demographics, encounters (not those entered in error),
 * orders with their status, and only released reports (final or corrected;
 * the highest version wins whatever the arrival order; preliminary never
 * shows; a cancelled report is withdrawn).
 *
 * Times: every dateTime/instant in a resource is rendered as the source sent
 * it (offset and precision from EventMeta.sourceTimes, libs/fhir/datetime.ts),
 * so every reader of the resource (API, GET /patients/:id/record) sees the
 * sender's local time; events without sourceTimes render in UTC as before.
 * Rendered strings with different offsets do not sort as instants, so each
 * searchable table keeps the instant its FHIR `date` parameter is about in
 * `date_at` (UTC timestamptz) for search and ordering.
 */
export interface PatientRow {
  patient_id: string;
  merged_into: string | null;
  /** Created by a fact about a patient not (yet) registered. */
  placeholder: boolean;
  replaces: string[];
  resource: Patient;
  /**
   * The demographics the resource shows, after HL7 null semantics (fields not sent kept, `""`
   * deleted): what the next partial update is applied to. Null on a placeholder.
   */
  demographics: Demographics | null;
}

export interface EncounterRow {
  encounter_id: string;
  patient_id: string;
  visible: boolean;
  resource: Encounter;
  /** period.start as an instant (search `date`, ordering). */
  date_at: number | null;
}

export interface ServiceRequestRow {
  order_id: string;
  patient_id: string;
  resource: ServiceRequest;
  /** authoredOn as an instant (search `date`, ordering). */
  date_at: number | null;
}

export interface ReportRow {
  result_id: string;
  patient_id: string;
  order_id: string | null;
  visible: boolean;
  version_rank: number;
  version_at: number;
  version_event: string;
  resource: DiagnosticReport;
  /** effectiveDateTime as an instant (search `date`, ordering). */
  date_at: number | null;
}

export interface ObservationRow {
  observation_id: string;
  result_id: string;
  patient_id: string;
  resource: Observation;
  /** effectiveDateTime as an instant (search `date`, ordering). */
  date_at: number | null;
}

/**
 * Content carried by AttachmentStored (a PDF report), stored once per
 * content: keyed by its SHA-256, whoever it belongs to. Who may read it
 * follows from the released reports that present it (services/api).
 */
export interface AttachmentRow {
  sha256: string;
  content_type: string;
  size: number;
  /** FHIR Attachment.hash: base64 SHA-1 of the data, computed when stored. */
  sha1: string;
  /** The bytes as Postgres bytea input (`\x` + hex): rows travel to the store as JSON. */
  data: string;
}

export interface PortalTables {
  patients: PatientRow;
  encounters: EncounterRow;
  service_requests: ServiceRequestRow;
  reports: ReportRow;
  observations: ObservationRow;
  attachments: AttachmentRow;
}

/**
 * DiagnosticReport.presentedForm: the report's attachments, each once, in report order. Content
 * the hub holds (ED, `attachment`) is served at Binary/<sha256>; a link (RP: HL7 reference
 * pointer, or a FHIR form sent with a url only) is given back as sent: its url, its MIME type
 * (valueCode) and title (the code's display), no size or hash (the hub does not hold the bytes).
 */
function presentedForm(observations: readonly ObservationValue[]): Attachment[] {
  const seen = new Set<string>();
  const out: Attachment[] = [];
  for (const o of observations) {
    const a = o.attachment;
    if (a) {
      if (seen.has(a.sha256)) continue;
      seen.add(a.sha256);
      out.push({
        contentType: a.contentType,
        url: `Binary/${a.sha256}`,
        size: a.size,
        ...(a.title ? { title: a.title } : {}),
      });
    } else if (o.valueType === 'RP') {
      const link: Attachment = {
        ...(o.valueCode ? { contentType: o.valueCode.code } : {}),
        ...(o.valueString ? { url: o.valueString } : {}),
        ...(o.code.display ? { title: o.code.display } : {}),
      };
      const key = `url:${o.valueString ?? ''}`;
      // An empty Attachment is not FHIR (ele-1); the same url twice is one form.
      if (Object.keys(link).length === 0 || (o.valueString && seen.has(key))) continue;
      seen.add(key);
      out.push(link);
    }
  }
  return out;
}

export function attachmentRow(d: { sha256: string; contentType: string; data: Buffer }): AttachmentRow {
  return {
    sha256: d.sha256,
    content_type: d.contentType,
    size: d.data.length,
    sha1: createHash('sha1').update(d.data).digest('base64'),
    data: `\\x${d.data.toString('hex')}`,
  };
}

/** How an instant field of an event was sent (meta.sourceTimes); undefined when not recorded: UTC. */
function sentAs(meta: EventMeta, field: string): SentAs | undefined {
  return meta.sourceTimes.find((t) => t.field === field);
}

/** A dateTime element for an event's instant field, as the source sent it. */
const dateTimeOf = (meta: EventMeta, field: string, ms: number): string =>
  renderDateTime(ms, sentAs(meta, field));

function concept(c: Code | null | undefined): CodeableConcept | undefined {
  if (!c) return undefined;
  return { coding: [{ system: c.system, code: c.code, ...(c.display ? { display: c.display } : {}) }] };
}

const subject = (patientId: string) => ({ reference: `Patient/${patientId}` });

function genderOf(g: string | null): Patient['gender'] {
  switch (g) {
    case 'male':
    case 'female':
    case 'other':
    case 'unknown':
      return g;
    case null:
    default:
      return undefined;
  }
}

function linksOf(row: Pick<PatientRow, 'merged_into' | 'replaces'>): PatientLink[] | undefined {
  const links: PatientLink[] = [];
  if (row.merged_into)
    links.push({ other: { reference: `Patient/${row.merged_into}` }, type: 'replaced-by' });
  for (const r of [...row.replaces].sort())
    links.push({ other: { reference: `Patient/${r}` }, type: 'replaces' });
  return links.length > 0 ? links : undefined;
}

/**
 * `deceasedDateTime`: deceasedAt as rendered from the event that sent it (the
 * demographics keep only the instant); UTC when not given.
 */
export function patientResource(
  patientId: string,
  d: Demographics | null,
  row: Pick<PatientRow, 'merged_into' | 'replaces'>,
  deceasedDateTime?: string,
): Patient {
  const link = linksOf(row);
  const base: Patient = { resourceType: 'Patient', id: patientId, active: row.merged_into === null };
  if (link) base.link = link;
  if (!d) return base;
  const gender = genderOf(d.administrativeGender);
  return {
    ...base,
    identifier: d.identifiers.map((i) => ({
      system: i.system,
      value: i.value,
      ...(i.type ? { type: { coding: [{ code: i.type }] } } : {}),
    })),
    name: d.names.map((n) => ({
      ...(n.family ? { family: n.family } : {}),
      given: n.given,
      ...(n.prefix ? { prefix: [n.prefix] } : {}),
      ...(n.suffix ? { suffix: [n.suffix] } : {}),
      ...(n.use ? { use: n.use as NonNullable<Patient['name']>[number]['use'] } : {}),
    })),
    ...(d.birthDate ? { birthDate: d.birthDate } : {}),
    ...(gender ? { gender } : {}),
    ...(d.deceasedAt !== null
      ? { deceasedDateTime: deceasedDateTime ?? renderDateTime(d.deceasedAt, null) }
      : d.deceased !== null
        ? { deceasedBoolean: d.deceased }
        : {}),
    address: d.addresses.map((a) => ({
      line: a.lines,
      ...(a.city ? { city: a.city } : {}),
      ...(a.state ? { state: a.state } : {}),
      ...(a.postalCode ? { postalCode: a.postalCode } : {}),
      ...(a.country ? { country: a.country } : {}),
    })),
    telecom: d.telecom.map((t) => ({
      system: t.system as NonNullable<Patient['telecom']>[number]['system'],
      value: t.value,
    })),
    ...(d.maritalStatus ? { maritalStatus: concept(d.maritalStatus)! } : {}),
    ...(d.language ? { communication: [{ language: concept(d.language)! }] } : {}),
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

function locationDisplay(l: EncounterStarted['location']): string | undefined {
  if (!l) return undefined;
  const parts = [l.unit, l.room, l.bed].filter((x): x is string => Boolean(x));
  return parts.length > 0 ? parts.join(' / ') : (l.facility ?? undefined);
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

function reportStatus(s: string): DiagnosticReport['status'] {
  const r = resultRank(s);
  if (r === 3) return 'corrected';
  if (r === 2) return 'final';
  if (r === 4) return 'cancelled';
  return 'preliminary';
}

/** `effectiveDateTime`: observedAt as the source sent it. */
function observationResource(
  resultId: string,
  patientId: string,
  encounterId: string | null,
  o: ObservationValue,
  effectiveDateTime: string | undefined,
): Observation {
  const obs: Observation = {
    resourceType: 'Observation',
    id: `${resultId}-${o.sequence}`,
    status:
      reportStatus(o.status) === 'preliminary' ? 'final' : (reportStatus(o.status) as Observation['status']),
    code: concept(o.code)!,
    subject: subject(patientId),
    ...(encounterId ? { encounter: { reference: `Encounter/${encounterId}` } } : {}),
    ...(effectiveDateTime !== undefined ? { effectiveDateTime } : {}),
  };
  // A document (ED content, RP link) is the report's presentedForm: its Observation carries no
  // value (not the MIME type as a coded value, nor the sender's url as a string).
  const isDocument = o.valueType === 'ED' || o.valueType === 'RP';
  if (isDocument) {
    // no value[x]
  } else if (o.valueNumber !== null) {
    obs.valueQuantity = {
      value: o.valueNumber,
      ...(o.unit ? { unit: o.unit } : {}),
      ...(o.valueComparator ? { comparator: o.valueComparator as '<' | '<=' | '>=' | '>' } : {}),
    };
  } else if (o.valueCode) {
    obs.valueCodeableConcept = concept(o.valueCode)!;
  } else if (o.valueString !== null) {
    obs.valueString = o.valueString;
  }
  if (o.interpretation) obs.interpretation = [concept(o.interpretation)!];
  if (o.referenceRange) obs.referenceRange = [{ text: o.referenceRange }];
  return obs;
}

function applyResult(
  draft: Draft<PortalTables>,
  d: ResultReported & { correctionReason?: string | null },
  patientId: string,
): void {
  const stamp = {
    rank: resultRank(d.status),
    at: d.issuedAt ?? d.meta.occurredAt,
    eventId: d.meta.eventId,
  };
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
  const obs = released
    ? d.observations.map((o, i) => ({
        resource: observationResource(d.resultId, patientId, d.encounterId, o, observed(o, i)),
        at: o.observedAt,
      }))
    : [];
  for (const o of obs) {
    draft.put('observations', o.resource.id!, {
      observation_id: o.resource.id!,
      result_id: d.resultId,
      patient_id: patientId,
      resource: o.resource,
      date_at: o.at,
    });
  }
  const report: DiagnosticReport = {
    resourceType: 'DiagnosticReport',
    id: d.resultId,
    status: reportStatus(d.status),
    category: [
      {
        coding: [
          {
            system: 'http://terminology.hl7.org/CodeSystem/v2-0074',
            code: d.category === 'imaging' ? 'RAD' : d.category === 'laboratory' ? 'LAB' : 'OTH',
          },
        ],
      },
    ],
    code: concept(d.code)!,
    subject: subject(patientId),
    ...(d.orderId ? { basedOn: [{ reference: `ServiceRequest/${d.orderId}` }] } : {}),
    ...(d.encounterId ? { encounter: { reference: `Encounter/${d.encounterId}` } } : {}),
    ...(d.effectiveAt !== null
      ? { effectiveDateTime: dateTimeOf(d.meta, 'effectiveAt', d.effectiveAt) }
      : {}),
    // DiagnosticReport.issued is an FHIR instant: full precision whatever was sent.
    ...(d.issuedAt !== null ? { issued: renderInstant(d.issuedAt, sentAs(d.meta, 'issuedAt')) } : {}),
    ...(obs.length > 0 ? { result: obs.map((o) => ({ reference: `Observation/${o.resource.id}` })) } : {}),
    ...(released && d.reportText ? { conclusion: d.reportText } : {}),
  };
  const forms = released ? presentedForm(d.observations) : [];
  if (forms.length > 0) report.presentedForm = forms;
  draft.put('reports', d.resultId, {
    result_id: d.resultId,
    patient_id: patientId,
    order_id: d.orderId,
    visible: released,
    version_rank: stamp.rank,
    version_at: stamp.at,
    version_event: stamp.eventId,
    resource: report,
    date_at: d.effectiveAt,
  });
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
    case 'AttachmentStored':
      // Written over whatever is stored (same sha256, same bytes): no need to load megabytes.
      return {};
  }
}

function requestStatus(s: string): ServiceRequest['status'] {
  switch (s) {
    case 'draft':
    case 'active':
    case 'on-hold':
    case 'revoked':
    case 'completed':
    case 'entered-in-error':
    case 'unknown':
      return s;
    case 'cancelled':
      return 'revoked';
    default:
      return 'active';
  }
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

export function evolve(draft: Draft<PortalTables>, e: ClinicalEvent, resolve: Resolve): void {
  switch (e.type) {
    case 'PatientRegistered':
    case 'PatientUpdated': {
      // Demographics of a retired id stay on its own (inactive) row; they must
      // not overwrite the survivor's.
      // Fields the sender did not send keep the stored value; `""` deletes it (mergeDemographics).
      const id = e.data.patientId;
      const prev = draft.get('patients', id) ?? placeholderPatient(id);
      const demographics = mergeDemographics(prev.demographics, e.data.demographics);
      draft.put('patients', id, {
        ...prev,
        placeholder: false,
        resource: patientResource(id, demographics, prev, deceasedRendering(prev, e.data, demographics)),
        demographics,
      });
      return;
    }
    case 'PatientsMerged': {
      // Links name the direct survivor (FHIR replaced-by / replaces), not the
      // root of a chain: the root depends on which merges were seen already.
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
      return;
    }
    case 'EncounterStarted': {
      const pid = resolve(e.data.patientId);
      ensurePatient(draft, pid);
      const d = e.data;
      const display = locationDisplay(d.location);
      const startAt = d.admittedAt ?? d.meta.occurredAt;
      const start = dateTimeOf(d.meta, d.admittedAt !== null ? 'admittedAt' : 'meta.occurredAt', startAt);
      const resource: Encounter = {
        resourceType: 'Encounter',
        id: d.encounterId,
        status: d.status === 'planned' ? 'planned' : 'in-progress',
        class: {
          system: d.encounterClass.system,
          code: d.encounterClass.code,
          ...(d.encounterClass.display ? { display: d.encounterClass.display } : {}),
        },
        subject: subject(pid),
        period: { start },
        ...(d.visitNumber
          ? { identifier: [{ system: d.visitNumber.system, value: d.visitNumber.value }] }
          : {}),
        ...(d.hospitalService ? { serviceType: concept(d.hospitalService)! } : {}),
        ...(display ? { location: [{ location: { display }, status: 'active', period: { start } }] } : {}),
      };
      draft.put('encounters', d.encounterId, {
        encounter_id: d.encounterId,
        patient_id: pid,
        visible: true,
        date_at: startAt,
        resource,
      });
      return;
    }
    case 'EncounterTransferred': {
      const pid = resolve(e.data.patientId);
      ensurePatient(draft, pid);
      const prev = draft.get('encounters', e.data.encounterId) ?? stubEncounter(e.data.encounterId, pid);
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
      return;
    }
    case 'EncounterEnded': {
      const pid = resolve(e.data.patientId);
      ensurePatient(draft, pid);
      const prev = draft.get('encounters', e.data.encounterId) ?? stubEncounter(e.data.encounterId, pid);
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
      return;
    }
    case 'EncounterCancelled':
    case 'EncounterTransferCancelled':
    case 'EncounterDischargeCancelled': {
      const pid = resolve(e.data.patientId);
      ensurePatient(draft, pid);
      const prev = draft.get('encounters', e.data.encounterId) ?? stubEncounter(e.data.encounterId, pid);
      const part = undonePart(e);
      if (part === 'visit') {
        draft.put('encounters', e.data.encounterId, {
          ...prev,
          visible: false,
          resource: { ...prev.resource, status: 'entered-in-error' },
        });
      } else if (part === 'transfer') {
        const locs = [...(prev.resource.location ?? [])];
        if (locs.length >= 2) {
          locs.pop();
          const last = locs[locs.length - 1]!;
          const { end: _end, ...period } = last.period ?? {};
          locs[locs.length - 1] = { ...last, status: 'active', period };
        }
        draft.put('encounters', e.data.encounterId, {
          ...prev,
          resource: { ...prev.resource, location: locs },
        });
      } else {
        const { end: _end, ...period } = prev.resource.period ?? {};
        const locs = [...(prev.resource.location ?? [])];
        const last = locs[locs.length - 1];
        if (last) {
          const { end: _e, ...lp } = last.period ?? {};
          locs[locs.length - 1] = { ...last, status: 'active', period: lp };
        }
        draft.put('encounters', e.data.encounterId, {
          ...prev,
          resource: {
            ...prev.resource,
            status: prev.resource.status === 'finished' ? 'in-progress' : prev.resource.status,
            period,
            ...(locs.length > 0 ? { location: locs } : {}),
          },
        });
      }
      return;
    }
    case 'OrderPlaced': {
      const pid = resolve(e.data.patientId);
      ensurePatient(draft, pid);
      const d = e.data;
      const prev = draft.get('service_requests', d.orderId);
      // An order cancelled or completed before its placement arrived keeps that status.
      const status = prev && prev.resource.status !== 'unknown' ? prev.resource.status : 'active';
      const priority = ['routine', 'urgent', 'asap', 'stat'].includes(d.priority)
        ? (d.priority as ServiceRequest['priority'])
        : undefined;
      draft.put('service_requests', d.orderId, {
        order_id: d.orderId,
        patient_id: pid,
        date_at: d.orderedAt,
        resource: {
          resourceType: 'ServiceRequest',
          id: d.orderId,
          status,
          intent: 'order',
          category: [{ text: d.category }],
          code: concept(d.code)!,
          subject: subject(pid),
          ...(priority ? { priority } : {}),
          ...(d.encounterId ? { encounter: { reference: `Encounter/${d.encounterId}` } } : {}),
          authoredOn: dateTimeOf(d.meta, 'orderedAt', d.orderedAt),
          ...(d.placerOrderNumber
            ? { identifier: [{ system: d.placerOrderNumber.system, value: d.placerOrderNumber.value }] }
            : {}),
        },
      });
      return;
    }
    case 'OrderCancelled':
    case 'OrderStatusChanged': {
      const pid = resolve(e.data.patientId);
      ensurePatient(draft, pid);
      const prev = draft.get('service_requests', e.data.orderId) ?? stubRequest(e.data.orderId, pid);
      const status = e.type === 'OrderCancelled' ? 'revoked' : requestStatus(e.data.status);
      // Revoked is terminal: a late status update must not revive a cancelled order.
      if (prev.resource.status === 'revoked') return;
      draft.put('service_requests', e.data.orderId, { ...prev, resource: { ...prev.resource, status } });
      return;
    }
    case 'ResultReported':
    case 'ResultCorrected': {
      const pid = resolve(e.data.patientId);
      ensurePatient(draft, pid);
      applyResult(draft, e.data, pid);
      return;
    }
    case 'AttachmentStored':
      draft.put('attachments', e.data.sha256, attachmentRow(e.data));
      return;
  }
}
