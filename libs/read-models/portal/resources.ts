import type {
  Attachment,
  CodeableConcept,
  Coding,
  DiagnosticReport,
  Encounter,
  EncounterParticipant,
  Extension,
  Identifier as FhirIdentifier,
  Observation,
  ObservationComponent as ObservationComponentFhir,
  ObservationReferenceRange,
  Patient,
  PatientContact as PatientContactFhir,
  PatientLink,
  Reference,
  ServiceRequest,
} from '@medplum/fhirtypes';
import type {
  Code,
  Demographics,
  EncounterStarted,
  EventMeta,
  Identifier,
  ObservationComponent,
  ObservationValue,
  OrderPlaced,
  PatientContact,
  Practitioner,
  ResultReported,
  Specimen,
} from '../../events/index.js';
import { renderDateTime, renderInstant, type SentAs } from '../../fhir/datetime.js';
import { isReleasedStatus, resultRank } from '../../projections/clinical.js';
import { V2_TABLE } from '../../terminology/code-systems.js';
import { CDC_RACE_ETHNICITY, toFhirConcept, type V2TableId } from '../../terminology/v2-fhir.js';
import {
  addressOf,
  annotationsOf,
  containedSpecimens,
  contactPointOf,
  humanNameOf,
  identifierOf,
  practitionerRef,
  quantityOf,
  type Times,
} from './elements.js';
import type { PatientRow } from './tables.js';

/**
 * The portal's FHIR R4 resources, built from events and rows. Pure. Every
 * time is rendered as the source sent it (dateTimeOf; see tables.ts).
 *
 * Codes go through the one v2 ↔ FHIR table (libs/terminology/v2-fhir.ts). Clinicians are
 * References by identifier and display (the hub serves no Practitioner), specimens are
 * contained (`#spec-n`): every reference in a served resource resolves.
 *
 * Resources are stored as built: rows projected by an earlier build keep that build's shape.
 * A change here needs no migration (no column changes) and there is no output version to bump:
 * `hub projections rebuild portal` replays the log into the next version schema and switches
 * readers to it without downtime (libs/projections/versions.ts). Replayed events of every age
 * keep their ids (observationIdOf), so references between rows stay stable across a rebuild.
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

/**
 * A Code as a CodeableConcept, through the one v2 ↔ FHIR table (libs/terminology/v2-fhir.ts):
 * the FHIR coding first where a v2 table code maps to one, every coding as sent with canonical
 * systems, the sender's text. `table` is the v2 table the element implies (OBX-8: 0078). The
 * overloads let a present code give a concept without `!`.
 */
export function concept(c: Code, table?: V2TableId): CodeableConcept;
export function concept(c: Code | null | undefined, table?: V2TableId): CodeableConcept | undefined;
export function concept(c: Code | null | undefined, table?: V2TableId): CodeableConcept | undefined {
  if (!c) return undefined;
  const key = conceptKey(c, table);
  let out = CONCEPTS.get(key);
  if (out === undefined) {
    if (CONCEPTS.size >= MAX_CONCEPTS) CONCEPTS.clear();
    CONCEPTS.set(key, (out = frozenConcept(toFhirConcept(c, table))));
  }
  return out;
}

/**
 * toFhirConcept's answers by code: a replay renders the same few codes
 * (tests, units, flags) for every observation line, and each rendering
 * walks the v2 tables and allocates anew. Memoising a pure function keeps
 * evolve pure; the answers are frozen because resources share them, so a
 * caller that changed one in place throws instead of changing them all.
 * Bounded: cleared when full (a log of ever new codes just renders each).
 */
const CONCEPTS = new Map<string, CodeableConcept>();
const MAX_CONCEPTS = 8192;

/**
 * Every field toFhirConcept reads, joined by U+0000 (which no event's text
 * holds: isValidEvent refuses it); a nullable field is `-` when null, else
 * `=` and its text, so that null and "" differ.
 */
function conceptKey(c: Code, table: V2TableId | undefined): string {
  const f = (v: string | null) => (v === null ? '-' : `=${v}`);
  let key = `${table ?? ''}\u0000${c.system}\u0000${c.code}\u0000${f(c.display)}\u0000${f(c.version)}\u0000${f(c.text)}`;
  for (const a of c.alternates)
    key += `\u0000${a.system}\u0000${a.code}\u0000${f(a.display)}\u0000${f(a.version)}`;
  return key;
}

function frozenConcept(cc: CodeableConcept): CodeableConcept {
  for (const coding of cc.coding ?? []) Object.freeze(coding);
  if (cc.coding) Object.freeze(cc.coding);
  return Object.freeze(cc);
}

export const subject = (patientId: string) => ({ reference: `Patient/${patientId}` });

/** How each instant of an event is rendered: as its source sent it (sourceTimes), else UTC. */
export function timesOf(meta: EventMeta): Times {
  return {
    dateTime: (field, ms) => dateTimeOf(meta, field, ms),
    instant: (field, ms) => renderInstant(ms, sentAs(meta, field)),
  };
}

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

const US_CORE = 'http://hl7.org/fhir/us/core/StructureDefinition';
/** The OMB categories of the CDC Race & Ethnicity code system (US Core ombCategory). */
const OMB_CATEGORIES = new Set(['1002-5', '2028-9', '2054-5', '2076-8', '2106-3', '2135-2', '2186-5']);

/**
 * Race (PID-10) or ethnicity (PID-22) as the US Core extension: each coding in the CDC Race &
 * Ethnicity system (directly, or mapped from v2 tables 0005/0189) as `ombCategory` when it is one
 * of the OMB categories, else `detailed`; `text` (required) the sender's words. Chosen because
 * it is the extension FHIR consumers in practice read; codes in other systems stay in `text`.
 */
function raceOrEthnicity(kind: 'race' | 'ethnicity', codes: readonly Code[]): Extension | undefined {
  if (codes.length === 0) return undefined;
  const parts: Extension[] = [];
  const words: string[] = [];
  for (const c of codes) {
    const cc = concept(c, kind === 'race' ? '0005' : '0189');
    for (const coding of cc.coding ?? []) {
      if (coding.system !== CDC_RACE_ETHNICITY || !coding.code) continue;
      parts.push({
        url: OMB_CATEGORIES.has(coding.code) ? 'ombCategory' : 'detailed',
        valueCoding: coding,
      });
    }
    const word = c.text ?? c.display ?? cc.coding?.[0]?.display ?? c.code;
    if (!words.includes(word)) words.push(word);
  }
  return {
    url: `${US_CORE}/us-core-${kind}`,
    extension: [...parts, { url: 'text', valueString: words.join(', ') }],
  };
}

/** NK1 contacts as Patient.contact; a contact with nothing to show is left out (pat-1). */
function contactsOf(contacts: readonly PatientContact[]): PatientContactFhir[] {
  return contacts.flatMap((c): PatientContactFhir[] => {
    const shown: PatientContactFhir = {
      ...(c.relationships.length > 0 ? { relationship: c.relationships.map((r) => concept(r)) } : {}),
      ...(c.name ? { name: humanNameOf(c.name) } : {}),
      ...(c.telecom.length > 0 ? { telecom: c.telecom.map(contactPointOf) } : {}),
      ...(c.address ? { address: addressOf(c.address) } : {}),
      ...(c.organization ? { organization: { display: c.organization } } : {}),
      ...(c.periodStart || c.periodEnd
        ? {
            period: {
              ...(c.periodStart ? { start: c.periodStart } : {}),
              ...(c.periodEnd ? { end: c.periodEnd } : {}),
            },
          }
        : {}),
    };
    return shown.name || shown.telecom || shown.address || shown.organization ? [shown] : [];
  });
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
  const extension = [
    raceOrEthnicity('race', d.race ?? []),
    raceOrEthnicity('ethnicity', d.ethnicity ?? []),
    d.religion
      ? {
          url: 'http://hl7.org/fhir/StructureDefinition/patient-religion',
          valueCodeableConcept: concept(d.religion),
        }
      : undefined,
  ].filter((x): x is Extension => x !== undefined);
  const contact = contactsOf(d.contacts ?? []);
  const gp = practitionerRef(d.primaryCareProvider ?? null);
  return {
    ...base,
    ...(extension.length > 0 ? { extension } : {}),
    // FHIR JSON forbids empty arrays: a list the sender cleared (HL7 "") is left out, not [].
    ...(d.identifiers.length > 0 ? { identifier: d.identifiers.map((i) => identifierOf(i)) } : {}),
    ...(d.names.length > 0 ? { name: d.names.map(humanNameOf) } : {}),
    ...(d.birthDate ? { birthDate: d.birthDate } : {}),
    ...(gender ? { gender } : {}),
    ...(d.deceasedAt !== null
      ? { deceasedDateTime: deceasedDateTime ?? renderDateTime(d.deceasedAt, null) }
      : d.deceased !== null
        ? { deceasedBoolean: d.deceased }
        : {}),
    ...(d.addresses.length > 0 ? { address: d.addresses.map(addressOf) } : {}),
    ...(d.telecom.length > 0 ? { telecom: d.telecom.map(contactPointOf) } : {}),
    ...(d.maritalStatus ? { maritalStatus: concept(d.maritalStatus, '0002') } : {}),
    ...(d.language ? { communication: [{ language: concept(d.language, '0296') }] } : {}),
    ...(contact.length > 0 ? { contact } : {}),
    ...(gp ? { generalPractitioner: [gp] } : {}),
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

/**
 * An observation's id: its stable observationId (the same value across report versions, so a
 * correction replaces it); events written before observationId existed keep the id they were
 * always given (report id and OBX-1), so replaying them yields the same ids.
 */
export const observationIdOf = (resultId: string, o: Pick<ObservationValue, 'observationId' | 'sequence'>) =>
  o.observationId ?? `${resultId}-${o.sequence}`;

/** What an observation takes from its report. */
export interface ObservationContext {
  resultId: string;
  patientId: string;
  encounterId: string | null;
  category: string;
  meta: EventMeta;
  /** The report's effectiveDateTime as rendered: the observation's when it has none of its own. */
  reportEffective: string | undefined;
  /** The report's specimens (the observation references the first, contained). */
  specimens: readonly Specimen[];
  /** Who reported it (OBX-16 is not kept per line: the report's performer). */
  performer: Practitioner | null;
}

const OBSERVATION_CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';

type ValueLike = Pick<
  ObservationValue,
  'valueType' | 'valueNumber' | 'valueString' | 'valueCode' | 'valueComparator' | 'unit' | 'unitCode'
>;

/** value[x] of an observation or component: Quantity (with UCUM), CodeableConcept or string. */
function valueOf(o: ValueLike): Pick<Observation, 'valueQuantity' | 'valueCodeableConcept' | 'valueString'> {
  // A document (ED content, RP link) is the report's presentedForm: no value (not the MIME type
  // as a coded value, nor the sender's url as a string).
  if (o.valueType === 'ED' || o.valueType === 'RP') return {};
  if (o.valueNumber !== null)
    return { valueQuantity: quantityOf(o.valueNumber, o.unit, o.unitCode ?? null, o.valueComparator) };
  if (o.valueCode) return { valueCodeableConcept: concept(o.valueCode) };
  if (o.valueString !== null) return { valueString: o.valueString };
  return {};
}

/** referenceRange: numeric low/high in the value's unit, and the range as sent (text). */
function referenceRangeOf(
  o: Pick<ObservationValue, 'referenceRange' | 'referenceLow' | 'referenceHigh' | 'unit' | 'unitCode'>,
): ObservationReferenceRange[] | undefined {
  const low = o.referenceLow ?? null;
  const high = o.referenceHigh ?? null;
  if (low === null && high === null && !o.referenceRange) return undefined;
  const q = (v: number) => quantityOf(v, o.unit, o.unitCode ?? null);
  return [
    {
      ...(low !== null ? { low: q(low) } : {}),
      ...(high !== null ? { high: q(high) } : {}),
      ...(o.referenceRange ? { text: o.referenceRange } : {}),
    },
  ];
}

/** Every OBX-8 repetition through table 0078 (events before `interpretations` have the first only). */
function interpretationsOf(
  o: Pick<ObservationValue, 'interpretation'> & Partial<Pick<ObservationValue, 'interpretations'>>,
): CodeableConcept[] | undefined {
  const all =
    o.interpretations && o.interpretations.length > 0
      ? o.interpretations
      : o.interpretation
        ? [o.interpretation]
        : [];
  return all.length > 0 ? all.map((c) => concept(c, '0078')) : undefined;
}

function componentOf(c: ObservationComponent): ObservationComponentFhir {
  const interpretation = interpretationsOf(c);
  const referenceRange = referenceRangeOf(c);
  return {
    code: concept(c.code),
    ...valueOf(c),
    ...(interpretation ? { interpretation } : {}),
    ...(referenceRange ? { referenceRange } : {}),
  };
}

/**
 * One observation line as an Observation, with the id `id` (observationIdOf, made unique
 * within its report by the caller). `index` is its position in the event (for its times).
 * Effective time: its own, else the report's (a result without one is what the validator warns
 * about). Specimen: the report's first, contained.
 */
export function observationResource(
  ctx: ObservationContext,
  o: ObservationValue,
  index: number,
  id: string,
): Observation & { id: string } {
  const times = timesOf(ctx.meta);
  const field = `observations[${index}]`;
  const effectiveDateTime =
    o.observedAt !== null ? times.dateTime(`${field}.observedAt`, o.observedAt) : ctx.reportEffective;
  const { contained, refs } = containedSpecimens(ctx.specimens.slice(0, 1), 'specimens', times);
  const interpretation = interpretationsOf(o);
  const referenceRange = referenceRangeOf(o);
  const status = reportStatus(o.status);
  const performer = practitionerRef(ctx.performer);
  const category = ctx.category === 'laboratory' || ctx.category === 'imaging' ? ctx.category : undefined;
  return {
    resourceType: 'Observation',
    id,
    ...(contained.length > 0 ? { contained } : {}),
    status: status === 'preliminary' ? 'final' : (status as Observation['status']),
    ...(category ? { category: [{ coding: [{ system: OBSERVATION_CATEGORY, code: category }] }] } : {}),
    code: concept(o.code),
    subject: subject(ctx.patientId),
    ...(ctx.encounterId ? { encounter: { reference: `Encounter/${ctx.encounterId}` } } : {}),
    ...(effectiveDateTime !== undefined ? { effectiveDateTime } : {}),
    ...(performer ? { performer: [performer] } : {}),
    ...valueOf(o),
    ...(interpretation ? { interpretation } : {}),
    ...((o.notes ?? []).length > 0 ? { note: annotationsOf(o.notes, `${field}.notes`, times) } : {}),
    ...(o.bodySite ? { bodySite: concept(o.bodySite) } : {}),
    ...(o.method ? { method: concept(o.method) } : {}),
    ...(refs[0] ? { specimen: refs[0] } : {}),
    ...(referenceRange ? { referenceRange } : {}),
    ...((o.components ?? []).length > 0 ? { component: o.components.map(componentOf) } : {}),
  };
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

const ATTENDER = {
  coding: [
    {
      system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType',
      code: 'ATND',
      display: 'attender',
    },
  ],
};

/** Whether two references name the same clinician (identifier, else display). */
const sameClinician = (a: Reference | undefined, b: Reference | undefined): boolean =>
  a?.identifier?.value !== undefined || b?.identifier?.value !== undefined
    ? a?.identifier?.value === b?.identifier?.value && a?.identifier?.system === b?.identifier?.system
    : a?.display === b?.display;

/**
 * Encounter.participant after a clinician was named attending at `at`: unchanged when it is
 * the current attender; otherwise the current attender's period ends and the new one starts.
 */
export function withAttender(
  participants: readonly EncounterParticipant[],
  p: Practitioner | null,
  at: string,
): EncounterParticipant[] {
  const who = practitionerRef(p);
  if (!who) return [...participants];
  const isAttender = (x: EncounterParticipant) =>
    x.type?.some((t) => t.coding?.some((c) => c.code === 'ATND'));
  const current = participants.find((x) => isAttender(x) && x.period?.end === undefined);
  if (current && sameClinician(current.individual, who)) return [...participants];
  return [
    ...participants.map((x) => (x === current ? { ...x, period: { ...x.period, end: at } } : x)),
    { type: [ATTENDER], period: { start: at }, individual: who },
  ];
}

/** Encounter facts any visit event may carry (latest sent wins). */
export interface EncounterFacts {
  encounterClass?: Code | null;
  hospitalService?: Code | null;
  dischargeDisposition?: Code | null;
  admitSource?: Code | null;
  admitReason?: Code | null;
  admissionType?: Code | null;
}

/** The elements those facts set (only those sent: an event without one keeps the stored one). */
export function encounterFacts(f: EncounterFacts): Partial<Encounter> {
  const hospitalization = {
    ...(f.admitSource ? { admitSource: concept(f.admitSource, '0023') } : {}),
    ...(f.dischargeDisposition ? { dischargeDisposition: concept(f.dischargeDisposition, '0112') } : {}),
  };
  return {
    ...(f.encounterClass ? { class: classCoding(f.encounterClass) } : {}),
    ...(f.hospitalService ? { serviceType: concept(f.hospitalService, '0069') } : {}),
    ...(f.admissionType ? { priority: concept(f.admissionType, '0007') } : {}),
    ...(f.admitReason ? { reasonCode: [concept(f.admitReason)] } : {}),
    ...(Object.keys(hospitalization).length > 0 ? { hospitalization } : {}),
  };
}

/** Merges new facts into an encounter: hospitalization element by element. */
export function withEncounterFacts(prev: Encounter, f: EncounterFacts): Encounter {
  const next = encounterFacts(f);
  return {
    ...prev,
    ...next,
    ...(next.hospitalization
      ? { hospitalization: { ...prev.hospitalization, ...next.hospitalization } }
      : {}),
  };
}

/** Encounter.class is a Coding: the FHIR coding of the class (v2-0004 mapped to v3 ActCode). */
function classCoding(c: Code): Coding {
  const coding = concept(c, '0004').coding?.[0];
  return (
    coding ?? {
      system: 'http://terminology.hl7.org/CodeSystem/v3-NullFlavor',
      code: 'UNK',
      display: 'unknown',
    }
  );
}

/** An admission as an Encounter; its start (and first location's) as the source sent it. */
export function encounterResource(d: EncounterStarted, patientId: string, start: string): Encounter {
  const display = locationDisplay(d.location);
  const participant = withAttender([], d.attendingPractitioner, start);
  return {
    resourceType: 'Encounter',
    id: d.encounterId,
    ...(d.visitNumber ? { identifier: [identifierOf(d.visitNumber, 'VN')] } : {}),
    status: d.status === 'planned' ? 'planned' : 'in-progress',
    class: classCoding(d.encounterClass),
    subject: subject(patientId),
    ...(participant.length > 0 ? { participant } : {}),
    period: { start },
    ...encounterFacts({ ...d, encounterClass: null }),
    ...(display ? { location: [{ location: { display }, status: 'active', period: { start } }] } : {}),
  };
}

/** FHIR ServiceRequest.category for the hub's order category (SNOMED CT, the FHIR example set). */
const ORDER_CATEGORY: Readonly<Record<string, Coding>> = {
  laboratory: { system: 'http://snomed.info/sct', code: '108252007', display: 'Laboratory procedure' },
  imaging: { system: 'http://snomed.info/sct', code: '363679005', display: 'Imaging' },
};

/** Placer and filler order numbers as identifiers typed PLAC / FILL (v2-0203). */
export function orderIdentifiers(
  placer: Identifier | null | undefined,
  filler: Identifier | null | undefined,
): FhirIdentifier[] {
  return [
    ...(placer ? [identifierOf(placer, 'PLAC')] : []),
    ...(filler ? [identifierOf(filler, 'FILL')] : []),
  ];
}

/**
 * A placed order as a ServiceRequest with the given status. The placer group number (ORC-4) is
 * `requisition` without a type: v2-0203 PGN is not in the table's R4 code list (an error there).
 */
export function serviceRequestResource(
  d: OrderPlaced,
  patientId: string,
  status: ServiceRequest['status'],
): ServiceRequest {
  const priority = ['routine', 'urgent', 'asap', 'stat'].includes(d.priority)
    ? (d.priority as ServiceRequest['priority'])
    : undefined;
  const times = timesOf(d.meta);
  const identifier = orderIdentifiers(d.placerOrderNumber, d.fillerOrderNumber);
  const { contained, refs } = containedSpecimens(d.specimens ?? [], 'specimens', times);
  const requester = practitionerRef(d.orderingProvider);
  const category = ORDER_CATEGORY[d.category];
  const reasons = d.reasons ?? [];
  const notes = d.notes ?? [];
  return {
    resourceType: 'ServiceRequest',
    id: d.orderId,
    ...(contained.length > 0 ? { contained } : {}),
    ...(identifier.length > 0 ? { identifier } : {}),
    ...(d.placerGroupNumber ? { requisition: identifierOf(d.placerGroupNumber) } : {}),
    status,
    intent: 'order',
    category: [{ ...(category ? { coding: [category] } : {}), text: d.category }],
    ...(priority ? { priority } : {}),
    code: concept(d.code),
    subject: subject(patientId),
    ...(d.encounterId ? { encounter: { reference: `Encounter/${d.encounterId}` } } : {}),
    authoredOn: dateTimeOf(d.meta, 'orderedAt', d.orderedAt),
    ...(requester ? { requester } : {}),
    ...(reasons.length > 0 ? { reasonCode: reasons.map((r) => concept(r)) } : {}),
    ...(refs.length > 0 ? { specimen: refs } : {}),
    ...(notes.length > 0 ? { note: annotationsOf(notes, 'notes', times) } : {}),
  };
}

const REPORT_CATEGORY: Readonly<Record<string, Coding>> = {
  laboratory: { system: V2_TABLE('0074'), code: 'LAB', display: 'Laboratory' },
  imaging: { system: V2_TABLE('0074'), code: 'RAD', display: 'Radiology' },
};
const OTHER_CATEGORY: Coding = { system: V2_TABLE('0074'), code: 'OTH', display: 'Other' };

/**
 * The report's narrative: R4 DiagnosticReport has no `note`, so the report-level notes (NTE
 * after OBR) follow the report text in `conclusion`, each a paragraph. Events written before
 * `notes` existed folded the NTEs into reportText, so they read the same as before.
 */
export function conclusionOf(d: Pick<ResultReported, 'reportText' | 'notes'>): string | undefined {
  const parts = [d.reportText, ...(d.notes ?? []).map((n) => n.text)].filter(
    (x): x is string => typeof x === 'string' && x.trim() !== '',
  );
  return parts.length > 0 ? parts.join('\n\n') : undefined;
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
  const times = timesOf(d.meta);
  const { contained, refs } = containedSpecimens(d.specimens ?? [], 'specimens', times);
  const performer = practitionerRef(d.performer);
  const conclusion = released ? conclusionOf(d) : undefined;
  const report: DiagnosticReport = {
    resourceType: 'DiagnosticReport',
    id: d.resultId,
    ...(contained.length > 0 ? { contained } : {}),
    ...(d.fillerOrderNumber ? { identifier: [identifierOf(d.fillerOrderNumber, 'FILL')] } : {}),
    ...(d.orderId ? { basedOn: [{ reference: `ServiceRequest/${d.orderId}` }] } : {}),
    status: reportStatus(d.status),
    category: [{ coding: [REPORT_CATEGORY[d.category] ?? OTHER_CATEGORY] }],
    code: concept(d.code),
    subject: subject(patientId),
    ...(d.encounterId ? { encounter: { reference: `Encounter/${d.encounterId}` } } : {}),
    ...(d.effectiveAt !== null
      ? { effectiveDateTime: dateTimeOf(d.meta, 'effectiveAt', d.effectiveAt) }
      : {}),
    // DiagnosticReport.issued is an FHIR instant: full precision whatever was sent.
    ...(d.issuedAt !== null ? { issued: renderInstant(d.issuedAt, sentAs(d.meta, 'issuedAt')) } : {}),
    ...(performer ? { performer: [performer] } : {}),
    ...(refs.length > 0 ? { specimen: refs } : {}),
    ...(observationIds.length > 0
      ? { result: observationIds.map((id) => ({ reference: `Observation/${id}` })) }
      : {}),
    ...(conclusion ? { conclusion } : {}),
  };
  const forms = released ? presentedForm(d.observations) : [];
  if (forms.length > 0) report.presentedForm = forms;
  return report;
}
