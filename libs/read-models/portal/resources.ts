import type {
  Attachment,
  CodeableConcept,
  DiagnosticReport,
  Encounter,
  Observation,
  Patient,
  PatientLink,
  ServiceRequest,
} from '@medplum/fhirtypes';
import type {
  Code,
  Demographics,
  EncounterStarted,
  EventMeta,
  ObservationValue,
  OrderPlaced,
  ResultReported,
} from '../../events/index.js';
import { renderDateTime, renderInstant, type SentAs } from '../../fhir/datetime.js';
import { isReleasedStatus, resultRank } from '../../projections/clinical.js';
import type { PatientRow } from './tables.js';

/**
 * The portal's FHIR R4 resources, built from events and rows. Pure. Every
 * time is rendered as the source sent it (dateTimeOf; see tables.ts).
 */

/**
 * DiagnosticReport.presentedForm: the report's attachments, each once, in report order. Content
 * the hub holds (ED, `attachment`) is served at Binary/<sha256>; a link (RP: HL7 reference
 * pointer, or a FHIR form sent with a url only) is given back as sent: its url, its MIME type
 * (valueCode) and title (the code's display), no size or hash (the hub does not hold the bytes).
 */
export function presentedForm(observations: readonly ObservationValue[]): Attachment[] {
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

/** How an instant field of an event was sent (meta.sourceTimes); undefined when not recorded: UTC. */
export function sentAs(meta: EventMeta, field: string): SentAs | undefined {
  return meta.sourceTimes.find((t) => t.field === field);
}

/** A dateTime element for an event's instant field, as the source sent it. */
export const dateTimeOf = (meta: EventMeta, field: string, ms: number): string =>
  renderDateTime(ms, sentAs(meta, field));

/** A Code as a CodeableConcept; the overloads let a present code give a concept without `!`. */
export function concept(c: Code): CodeableConcept;
export function concept(c: Code | null | undefined): CodeableConcept | undefined;
export function concept(c: Code | null | undefined): CodeableConcept | undefined {
  if (!c) return undefined;
  return { coding: [{ system: c.system, code: c.code, ...(c.display ? { display: c.display } : {}) }] };
}

export const subject = (patientId: string) => ({ reference: `Patient/${patientId}` });

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
      ...(n.use ? { use: n.use as NonNullable<NonNullable<Patient['name']>[number]['use']> } : {}),
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
      system: t.system as NonNullable<NonNullable<Patient['telecom']>[number]['system']>,
      value: t.value,
    })),
    ...(d.maritalStatus ? { maritalStatus: concept(d.maritalStatus) } : {}),
    ...(d.language ? { communication: [{ language: concept(d.language) }] } : {}),
  };
}

export function locationDisplay(l: EncounterStarted['location']): string | undefined {
  if (!l) return undefined;
  const parts = [l.unit, l.room, l.bed].filter((x): x is string => Boolean(x));
  return parts.length > 0 ? parts.join(' / ') : (l.facility ?? undefined);
}

export function reportStatus(s: string): DiagnosticReport['status'] {
  const r = resultRank(s);
  if (r === 3) return 'corrected';
  if (r === 2) return 'final';
  if (r === 4) return 'cancelled';
  return 'preliminary';
}

/** `effectiveDateTime`: observedAt as the source sent it. Always has an id (the row's key). */
export function observationResource(
  resultId: string,
  patientId: string,
  encounterId: string | null,
  o: ObservationValue,
  effectiveDateTime: string | undefined,
): Observation & { id: string } {
  const obs: Observation & { id: string } = {
    resourceType: 'Observation',
    id: `${resultId}-${o.sequence}`,
    status:
      reportStatus(o.status) === 'preliminary' ? 'final' : (reportStatus(o.status) as Observation['status']),
    code: concept(o.code),
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
    obs.valueCodeableConcept = concept(o.valueCode);
  } else if (o.valueString !== null) {
    obs.valueString = o.valueString;
  }
  if (o.interpretation) obs.interpretation = [concept(o.interpretation)];
  if (o.referenceRange) obs.referenceRange = [{ text: o.referenceRange }];
  return obs;
}

export function requestStatus(s: string): ServiceRequest['status'] {
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

/** An admission as an Encounter; its start (and first location's) as the source sent it. */
export function encounterResource(d: EncounterStarted, patientId: string, start: string): Encounter {
  const display = locationDisplay(d.location);
  return {
    resourceType: 'Encounter',
    id: d.encounterId,
    status: d.status === 'planned' ? 'planned' : 'in-progress',
    class: {
      system: d.encounterClass.system,
      code: d.encounterClass.code,
      ...(d.encounterClass.display ? { display: d.encounterClass.display } : {}),
    },
    subject: subject(patientId),
    period: { start },
    ...(d.visitNumber ? { identifier: [{ system: d.visitNumber.system, value: d.visitNumber.value }] } : {}),
    ...(d.hospitalService ? { serviceType: concept(d.hospitalService) } : {}),
    ...(display ? { location: [{ location: { display }, status: 'active', period: { start } }] } : {}),
  };
}

/** A placed order as a ServiceRequest with the given status. */
export function serviceRequestResource(
  d: OrderPlaced,
  patientId: string,
  status: ServiceRequest['status'],
): ServiceRequest {
  const priority = ['routine', 'urgent', 'asap', 'stat'].includes(d.priority)
    ? (d.priority as ServiceRequest['priority'])
    : undefined;
  return {
    resourceType: 'ServiceRequest',
    id: d.orderId,
    status,
    intent: 'order',
    category: [{ text: d.category }],
    code: concept(d.code),
    subject: subject(patientId),
    ...(priority ? { priority } : {}),
    ...(d.encounterId ? { encounter: { reference: `Encounter/${d.encounterId}` } } : {}),
    authoredOn: dateTimeOf(d.meta, 'orderedAt', d.orderedAt),
    ...(d.placerOrderNumber
      ? { identifier: [{ system: d.placerOrderNumber.system, value: d.placerOrderNumber.value }] }
      : {}),
  };
}

/**
 * The winning version of a report as a DiagnosticReport: its observations
 * (`observationIds`, released versions only), conclusion and presented
 * forms only when released.
 */
export function diagnosticReportResource(
  d: ResultReported,
  patientId: string,
  observationIds: readonly string[],
): DiagnosticReport {
  const released = isReleasedStatus(d.status);
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
    code: concept(d.code),
    subject: subject(patientId),
    ...(d.orderId ? { basedOn: [{ reference: `ServiceRequest/${d.orderId}` }] } : {}),
    ...(d.encounterId ? { encounter: { reference: `Encounter/${d.encounterId}` } } : {}),
    ...(d.effectiveAt !== null
      ? { effectiveDateTime: dateTimeOf(d.meta, 'effectiveAt', d.effectiveAt) }
      : {}),
    // DiagnosticReport.issued is an FHIR instant: full precision whatever was sent.
    ...(d.issuedAt !== null ? { issued: renderInstant(d.issuedAt, sentAs(d.meta, 'issuedAt')) } : {}),
    ...(observationIds.length > 0
      ? { result: observationIds.map((id) => ({ reference: `Observation/${id}` })) }
      : {}),
    ...(released && d.reportText ? { conclusion: d.reportText } : {}),
  };
  const forms = released ? presentedForm(d.observations) : [];
  if (forms.length > 0) report.presentedForm = forms;
  return report;
}
