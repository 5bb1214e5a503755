import type {
  Address as FhirAddress,
  AllergyIntolerance,
  Annotation,
  CodeableConcept,
  Coding as FhirCoding,
  Condition,
  ContactPoint as FhirContactPoint,
  Coverage,
  DiagnosticReport,
  Encounter,
  HumanName as FhirHumanName,
  Identifier as FhirIdentifier,
  Observation,
  Patient,
  Reference,
  Resource,
  ServiceRequest,
  Specimen as FhirSpecimen,
} from '@medplum/fhirtypes';
import { createHash } from 'node:crypto';
import {
  codeOf,
  deterministicEventId,
  type Address,
  type ClinicalEvent,
  type Code,
  type Coding,
  type ContactPoint,
  type EventMeta,
  type EventType,
  type HumanName,
  type Identifier,
  type Location,
  type Note,
  type Practitioner,
  type SourceTime,
  type Specimen,
} from '../events/index.js';
import { patientKeyFor, resolveSystem, type IdentityPolicy } from '../identity/index.js';
import { checkIdentifier } from '../identity/hygiene.js';
import { textCode } from '../terminology/code-systems.js';
import { errorIssue } from './outcome.js';
import { invalid, type Invalid, type SupportedType } from './validate.js';

/**
 * What every per-resource mapper (map-*.ts) shares: the input and result types, hub ids, and the
 * converters from FHIR datatypes to the event records. Pure: no clock, no I/O, no randomness.
 */

export type MappableResource =
  | Patient
  | Encounter
  | ServiceRequest
  | Observation
  | DiagnosticReport
  | AllergyIntolerance
  | Condition
  | Coverage
  | FhirSpecimen;

/** What the adapter remembers about a resource between versions (no PHI beyond ids). */
export interface ResourceState {
  /** Hub id of the aggregate: patient key, encounter, order, result, allergy, diagnosis or coverage id. */
  hubId: string;
  patientKey: string;
  status: string | null;
  location: Location | null;
}

export interface PriorVersion extends ResourceState {
  version: number;
  contentHash: string;
}

export interface MapInput {
  resource: MappableResource;
  /** Logical id the hub stores the resource under. */
  id: string;
  /** Version this write creates (previous + 1). */
  version: number;
  contentHash: string;
  previous: PriorVersion | null;
  /** Subject's enterprise patient key as the adapter resolved it; undefined when it could not. */
  subjectKey?: string | undefined;
  /** Hub encounter id of Resource.encounter / context, if any. */
  encounterId?: string | null | undefined;
  /** Hub order id of basedOn[0], if any. */
  orderId?: string | null | undefined;
  /** The ServiceRequest basedOn[0] names, when the adapter holds it (its numbers and code). */
  order?: ServiceRequest | undefined;
  /** Observations referenced by DiagnosticReport.result that the adapter could see (contained or in the same bundle). */
  resultObservations?: readonly Observation[] | undefined;
  /**
   * Resources the mapping reads through a reference (specimen, Encounter.diagnosis.condition) that
   * the adapter found in its store or the same bundle, by the reference string as sent. Contained
   * resources (`#id`) are read from the resource itself.
   */
  related?: ReadonlyMap<string, Resource> | undefined;
  /**
   * An Observation that a DiagnosticReport of the same request lists in result[]: the report's
   * event carries it, so it makes no result of its own (one report with its values, not 1 + n).
   */
  partOfReport?: boolean | undefined;
}

export interface MapContext {
  policy: IdentityPolicy;
  recordedAt: number;
  source: { system: string; facility: string | null; messageId: string | null };
  correlationId: string | null;
  /**
   * Client request id (+ entry index) when the client sent one: event ids are
   * then derived from it. Otherwise from the resource identity, version and
   * content hash.
   */
  requestKey: string | null;
  rawMessageRef?: string | null;
}

export type MapResult = { ok: true; events: ClinicalEvent[]; state: ResourceState } | Invalid;

export const UNKNOWN_SYSTEM = 'urn:hub:unknown-system';

/**
 * Hub ids of encounters, orders and results, derived exactly as the HL7
 * adapter derives them (libs/hl7/scope.ts encounterIdFor / orderIdFor /
 * resultIdFor; a unit test pins the equality), so that a visit or order
 * arriving by either route is one aggregate. Free of the identifier's value.
 */
export function hubIdFor(prefix: 'enc' | 'ord', system: string, value: string): string {
  return `${prefix}-${deterministicEventId([prefix === 'enc' ? 'encounter' : 'order', system, value])}`;
}

/** A result is its report number (filler, else placer) and its report code, as for HL7 OBR-3 + OBR-4. */
export function resultIdFor(system: string, value: string, c: Code): string {
  return `res-${deterministicEventId(['result', system, value, c.system, c.code])}`;
}

/** Ids of the record types that have no HL7 number to share: from the resource's identifier, else its logical id. */
const RECORD_PREFIX = {
  AllergyIntolerance: ['alg', 'allergy'],
  Condition: ['dx', 'diagnosis'],
  Coverage: ['cov', 'coverage'],
  Specimen: ['spm', 'specimen'],
} as const;

export function recordIdFor(type: keyof typeof RECORD_PREFIX, system: string, value: string): string {
  const [prefix, kind] = RECORD_PREFIX[type];
  return `${prefix}-${deterministicEventId([kind, system, value])}`;
}

/** System used when a resource has no business identifier: the FHIR logical id within this hub. */
export function logicalIdSystem(type: string): string {
  return `urn:hub:fhir:${type}`;
}

/** Canonical JSON (sorted keys) hash of a resource without id and meta: equal content, equal hash. */
export function contentHash(resource: object): string {
  const { id: _id, meta: _meta, ...rest } = resource as { id?: unknown; meta?: unknown };
  const canon = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(canon);
    if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      return Object.fromEntries(
        Object.keys(o)
          .sort()
          .map((k) => [k, canon(o[k])]),
      );
    }
    return v;
  };
  return createHash('sha256')
    .update(JSON.stringify(canon(rest)))
    .digest('hex')
    .slice(0, 32);
}

// ---------- datatypes ----------

function codingOf(c: FhirCoding & { code: string }): Coding {
  return {
    system: c.system ?? UNKNOWN_SYSTEM,
    code: c.code,
    display: c.display ?? null,
    version: c.version ?? null,
  };
}

const hasCode = (c: FhirCoding): c is FhirCoding & { code: string } => c.code !== undefined && c.code !== '';

/** One FHIR Coding as a Code (no alternates, no text); null without a code. */
export function code(c: FhirCoding | undefined): Code | null {
  if (!c || !hasCode(c)) return null;
  return { ...codingOf(c), alternates: [], text: null };
}

/**
 * CodeableConcept → Code, losslessly as far as the record goes: the first coding with a code is the
 * primary, every later one an alternate in the order sent (with its version), `text` kept as text.
 * Text alone is a code in `urn:hub:text` (display and text the same). A coding without a code
 * (system or display only) names no concept and is dropped.
 */
export function concept(cc: CodeableConcept | undefined): Code | null {
  if (!cc) return null;
  const text = cc.text ?? null;
  const [first, ...rest] = (cc.coding ?? []).filter(hasCode);
  if (first) return { ...codingOf(first), alternates: rest.map(codingOf), text };
  if (text) return textCode(text);
  return null;
}

export function concepts(list: readonly CodeableConcept[] | undefined): Code[] {
  return (list ?? []).map(concept).filter((c): c is Code => c !== null);
}

/** A Code in a FHIR-defined code system for a bare FHIR code element (e.g. AllergyIntolerance.type). */
export function fhirCode(system: string, value: string | undefined): Code | null {
  return value ? codeOf(system, value) : null;
}

/** A placeholder code where the schema needs one and the resource has none. */
export const UNKNOWN_CODE: Code = codeOf(UNKNOWN_SYSTEM, 'unknown');

/** An identifier part in its canonical form (NFC, trimmed); validation has refused any other problem. */
function canonicalIdPart(s: string): string {
  const r = checkIdentifier(s);
  return r.ok ? r.value : r.problem === 'empty' ? '' : s;
}

export function toHubIdentifier(i: FhirIdentifier, policy: IdentityPolicy): Identifier | null {
  const value = i.value === undefined ? '' : canonicalIdPart(i.value);
  if (value === '') return null;
  // The system as the site registered the authority (libs/identity resolveSystem); the type as
  // sent, else the one registered for the authority, as for HL7 CX-5.
  const { system, authority } = resolveSystem(
    i.system === undefined ? UNKNOWN_SYSTEM : canonicalIdPart(i.system) || UNKNOWN_SYSTEM,
    policy,
  );
  const typeCode = i.type?.coding?.find((c) => c.code)?.code ?? authority?.identifierType ?? null;
  return { system, value, type: typeCode };
}

export function identifiers(
  list: readonly FhirIdentifier[] | undefined,
  policy: IdentityPolicy,
): Identifier[] {
  return (list ?? []).map((i) => toHubIdentifier(i, policy)).filter((i): i is Identifier => i !== null);
}

/** The identifier of a given HL7 v2-0203 type, else the first usable one. */
export function preferred(list: readonly Identifier[], type: string): Identifier | undefined {
  return list.find((i) => i.type === type) ?? list[0];
}

export function humanName(n: FhirHumanName): HumanName {
  return {
    family: n.family ?? null,
    given: n.given ?? [],
    prefix: n.prefix?.join(' ') ?? null,
    suffix: n.suffix?.join(' ') ?? null,
    use: n.use ?? null,
  };
}

export function address(a: FhirAddress): Address {
  return {
    lines: a.line ?? [],
    city: a.city ?? null,
    state: a.state ?? null,
    postalCode: a.postalCode ?? null,
    country: a.country ?? null,
    use: a.use ?? null,
    type: a.type ?? null,
  };
}

export function telecom(list: readonly FhirContactPoint[] | undefined): ContactPoint[] {
  return (list ?? []).flatMap((t) =>
    t.value ? [{ system: t.system ?? 'other', value: t.value, use: t.use ?? null, part: null }] : [],
  );
}

/** A FHIR date, dateTime or instant as sent: the UTC instant, its precision and the offset it was written in. */
export interface FhirTime {
  instant: number;
  precision: SourceTime['precision'];
  offsetMinutes: number;
}

const FHIR_DATE_TIME =
  /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

function precisionOf(m: RegExpExecArray): SourceTime['precision'] {
  if (m[7] !== undefined) return 'millisecond';
  if (m[6] !== undefined) return 'second';
  if (m[4] !== undefined) return 'minute';
  if (m[3] !== undefined) return 'day';
  return m[2] !== undefined ? 'month' : 'year';
}

/**
 * Reads a FHIR date/dateTime/instant. A value with a time carries its offset (the validator
 * refuses one without: FHIR R4 says a time SHALL have a zone, see validate.ts); a date without a
 * time (YYYY, YYYY-MM, YYYY-MM-DD) names no zone and is taken as the start of that period in UTC,
 * offset 0. Never the host's zone. Null when absent or unreadable.
 */
export function fhirTime(s: string | undefined): FhirTime | null {
  if (!s) return null;
  const m = FHIR_DATE_TIME.exec(s);
  if (!m) return null;
  const n = (v: string | undefined, d: number) => (v === undefined ? d : Number(v));
  const zone = m[8];
  const offsetMinutes =
    zone === undefined || zone === 'Z'
      ? 0
      : (zone.startsWith('-') ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
  const wall = new Date(0);
  wall.setUTCFullYear(n(m[1], 0), n(m[2], 1) - 1, n(m[3], 1));
  wall.setUTCHours(
    n(m[4], 0),
    n(m[5], 0),
    n(m[6], 0),
    m[7] === undefined ? 0 : Number(m[7].padEnd(3, '0').slice(0, 3)),
  );
  const instant = wall.getTime() - offsetMinutes * 60_000;
  if (!Number.isFinite(instant)) return null;
  return { instant, precision: precisionOf(m), offsetMinutes };
}

export function instant(s: string | undefined): number | null {
  return fhirTime(s)?.instant ?? null;
}

export function practitioner(ref: Reference | undefined, policy: IdentityPolicy): Practitioner | null {
  if (!ref) return null;
  const id = ref.identifier ? toHubIdentifier(ref.identifier, policy) : null;
  // Reference.display is free text (a name); it is carried only as the name.
  const name = ref.display ? { family: ref.display, given: [], prefix: null, suffix: null, use: null } : null;
  if (!id && !name) return null;
  return { id, name, telecom: [] };
}

/** Annotation → Note: text, author (authorString, else the author reference's display), time. */
export function notes(list: readonly Annotation[] | undefined): Note[] {
  return (list ?? []).map((a) => ({
    text: a.text,
    source: a.authorString ?? a.authorReference?.display ?? null,
    type: null,
    authoredAt: instant(a.time),
  }));
}

/** Parses `Patient/123`, `https://x/fhir/Patient/123` or `Patient/123/_history/2` into its type and id. */
export function parseLiteralReference(ref: string | undefined): { type: string; id: string } | undefined {
  if (!ref) return undefined;
  const m = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/.exec(ref);
  const [, type, id] = m ?? [];
  return type !== undefined && id !== undefined ? { type, id } : undefined;
}

/**
 * The resource a reference points at, when the mapping can see it: a contained one (`#id`) of
 * `host`, else one the adapter resolved (input.related). Undefined otherwise.
 */
export function referenced<T extends Resource['resourceType']>(
  ref: Reference | undefined,
  type: T,
  host: { contained?: Resource[] | undefined },
  input: MapInput,
): Extract<Resource, { resourceType: T }> | undefined {
  const r = ref?.reference;
  if (!r) return undefined;
  const found = r.startsWith('#') ? host.contained?.find((c) => c.id === r.slice(1)) : input.related?.get(r);
  return found?.resourceType === type ? (found as Extract<Resource, { resourceType: T }>) : undefined;
}

/** FHIR Specimen → the hub's Specimen record (HL7 SPM as the v2-to-FHIR guide maps it). */
export function specimenOf(s: FhirSpecimen, policy: IdentityPolicy): Specimen {
  const ids = identifiers(s.identifier, policy);
  const accession = s.accessionIdentifier ? toHubIdentifier(s.accessionIdentifier, policy) : null;
  const c = s.collection;
  return {
    // SPM-2: the filler's number first, as HL7 does; the accession number is the filler's (lab's) too.
    identifier: ids.find((i) => i.type === 'FILL') ?? accession ?? ids[0] ?? null,
    type: concept(s.type),
    collectionMethod: concept(c?.method),
    sourceSite: concept(c?.bodySite),
    collectedAt: instant(c?.collectedDateTime ?? c?.collectedPeriod?.start),
    collectedUntil: instant(c?.collectedPeriod?.end),
    receivedAt: instant(s.receivedTime),
  };
}

/** The specimens a list of references names that the mapping can see (contained or resolved), once each. */
export function specimensOf(
  refs: readonly Reference[] | undefined,
  host: { contained?: Resource[] | undefined },
  input: MapInput,
  policy: IdentityPolicy,
): Specimen[] {
  return uniqueSpecimens(
    (refs ?? []).flatMap((ref) => {
      const s = referenced(ref, 'Specimen', host, input);
      return s ? [specimenOf(s, policy)] : [];
    }),
  );
}

/** Specimens once each (a report and its observations often name the same one). */
export function uniqueSpecimens(list: readonly Specimen[]): Specimen[] {
  const seen = new Set<string>();
  return list.filter((s) => {
    const key = JSON.stringify(s);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** A subject given as a logical identifier needs no lookup: the key is derived as for a Patient. */
export function patientKeyFromIdentifierReference(
  ref: Reference | undefined,
  policy: IdentityPolicy,
): string | undefined {
  const id = ref?.identifier ? toHubIdentifier(ref.identifier, policy) : null;
  return id ? patientKeyFor(id, policy) : undefined;
}

/** The reference each supported type uses for its patient. */
export function subjectOf(r: MappableResource): Reference | undefined {
  switch (r.resourceType) {
    case 'Patient':
      return undefined;
    case 'AllergyIntolerance':
      return r.patient;
    case 'Coverage':
      return r.beneficiary;
    case 'Encounter':
    case 'ServiceRequest':
    case 'Observation':
    case 'DiagnosticReport':
    case 'Condition':
    case 'Specimen':
      return r.subject;
  }
}

/** References the adapter resolves before mapping: the visit, the order, and what the mapping reads. */
export interface ResourceLinks {
  encounter?: Reference;
  basedOn?: Reference;
  /** References to Specimen / Condition resources whose content the mapping carries (input.related). */
  related: { type: 'Specimen' | 'Condition'; ref: Reference }[];
}

const asRelated = (type: 'Specimen' | 'Condition', refs: readonly Reference[] | undefined) =>
  (refs ?? []).filter((r) => r.reference && !r.reference.startsWith('#')).map((ref) => ({ type, ref }));

export function linksOf(r: MappableResource): ResourceLinks {
  const enc = (e: Reference | undefined) => (e ? { encounter: e } : {});
  switch (r.resourceType) {
    case 'Patient':
    case 'Coverage':
    case 'Specimen':
      return { related: [] };
    case 'Encounter':
      return {
        related: asRelated(
          'Condition',
          (r.diagnosis ?? []).map((d) => d.condition),
        ),
      };
    case 'ServiceRequest':
      return { ...enc(r.encounter), related: asRelated('Specimen', r.specimen) };
    case 'AllergyIntolerance':
    case 'Condition':
      return { ...enc(r.encounter), related: [] };
    case 'Observation':
    case 'DiagnosticReport':
      return {
        ...enc(r.encounter),
        ...(r.basedOn?.[0] ? { basedOn: r.basedOn[0] } : {}),
        related: asRelated(
          'Specimen',
          r.resourceType === 'Observation' ? (r.specimen ? [r.specimen] : []) : r.specimen,
        ),
      };
  }
}

/** Hub id from a record's own identifier (the first usable one), else its logical id. */
function recordIdOf(type: keyof typeof RECORD_PREFIX, ids: readonly Identifier[], logicalId: string): string {
  const id = ids[0] ?? { system: logicalIdSystem(type), value: logicalId };
  return recordIdFor(type, id.system, id.value);
}

/** Hub id of an aggregate resource (not Patient) from its identifiers, else from its logical id. */
export function hubIdOfResource(
  r: Exclude<MappableResource, Patient>,
  logicalId: string,
  policy: IdentityPolicy,
): string {
  const ids = identifiers(r.identifier, policy);
  const own = { system: logicalIdSystem(r.resourceType), value: logicalId };
  switch (r.resourceType) {
    case 'Encounter': {
      const id = preferred(ids, 'VN') ?? own;
      return hubIdFor('enc', id.system, id.value);
    }
    case 'ServiceRequest': {
      const id = ids.find((i) => i.type === 'PLAC') ?? preferred(ids, 'FILL') ?? own;
      return hubIdFor('ord', id.system, id.value);
    }
    case 'Observation':
    case 'DiagnosticReport': {
      const id = ids.find((i) => i.type === 'FILL') ?? preferred(ids, 'PLAC') ?? own;
      return resultIdFor(id.system, id.value, concept(r.code) ?? UNKNOWN_CODE);
    }
    case 'AllergyIntolerance':
    case 'Condition':
    case 'Coverage':
    case 'Specimen':
      return recordIdOf(r.resourceType, ids, logicalId);
  }
}

/** Hub id for a reference to an aggregate when only the reference is known (identifier or logical id). */
export function hubIdOfReference(
  prefix: 'enc' | 'ord',
  ref: Reference | undefined,
  policy: IdentityPolicy,
): string | null {
  if (!ref) return null;
  const id = ref.identifier ? toHubIdentifier(ref.identifier, policy) : null;
  if (id) return hubIdFor(prefix, id.system, id.value);
  const lit = parseLiteralReference(ref.reference);
  return lit ? hubIdFor(prefix, logicalIdSystem(lit.type), lit.id) : null;
}

// ---------- events ----------

export function metaFor(
  type: EventType,
  seq: number,
  input: MapInput,
  ctx: MapContext,
  occurredAt: number,
  times: Record<string, string | undefined> = {},
): EventMeta {
  const identity =
    ctx.requestKey ?? `${input.resource.resourceType}/${input.id}/v${input.version}/${input.contentHash}`;
  return {
    eventId: deterministicEventId(['fhir', ctx.source.system, identity, type, String(seq)]),
    eventType: type,
    occurredAt,
    recordedAt: ctx.recordedAt,
    source: { ...ctx.source },
    correlationId: ctx.correlationId,
    causationId: null,
    rawMessageRef: ctx.rawMessageRef ?? null,
    sourceTimes: sourceTimesOf(times),
  };
}

/**
 * The offset and precision each instant field was sent with. `times`: event field path → the FHIR
 * value it was read from; `meta.occurredAt` is among them when the clinical time was sent (it is
 * absent, and so skipped, when the ingest time stood in).
 */
function sourceTimesOf(times: Record<string, string | undefined>): SourceTime[] {
  const out: SourceTime[] = [];
  for (const [field, value] of Object.entries(times)) {
    const t = fhirTime(value);
    if (t) out.push({ field, precision: t.precision, offsetMinutes: t.offsetMinutes, zoned: false });
  }
  return out;
}

export function codeNotInBinding(expression: string, binding: string): Invalid {
  return invalid('fhir-invalid', 422, [
    errorIssue('code-invalid', `the code is not in the required value set ${binding}`, expression),
  ]);
}

export function needSubject(input: MapInput, type: SupportedType): Invalid | string {
  if (input.subjectKey) return input.subjectKey;
  const element = type === 'AllergyIntolerance' ? 'patient' : type === 'Coverage' ? 'beneficiary' : 'subject';
  return invalid('unmappable', 422, [
    errorIssue(
      'not-found',
      `${type}.${element} must reference a Patient known to the hub (Patient/{id} posted before, a Patient in the same bundle, or an identifier reference)`,
      `${type}.${element}`,
    ),
  ]);
}

export function required(type: string, element: string, what: string): Invalid {
  return invalid('unmappable', 422, [
    errorIssue('required', `${type}.${element} ${what}`, `${type}.${element}`),
  ]);
}

/** The code of the first coding of a status-like CodeableConcept (clinicalStatus, verificationStatus). */
export function statusCode(cc: CodeableConcept | undefined): string | null {
  return cc?.coding?.find(hasCode)?.code ?? null;
}
