import type {
  CodeableConcept,
  Coding,
  DiagnosticReport,
  Encounter,
  Identifier as FhirIdentifier,
  Observation,
  Patient,
  Reference,
  ServiceRequest,
} from '@medplum/fhirtypes';
import { createHash } from 'node:crypto';
import {
  deterministicEventId,
  type ClinicalEvent,
  type Code,
  type Demographics,
  type EventMeta,
  type EventType,
  type Identifier,
  type Location,
  type ObservationValue,
  type Practitioner,
  type SourceTime,
} from '../events/index.js';
import { enterprisePatientId, patientKeyFor, resolveSystem, type IdentityPolicy } from '../identity/index.js';
import { checkIdentifier } from '../identity/hygiene.js';
import { MIME_TYPE_SYSTEM } from '../hl7/ed.js';
import { decodeAttachment, type DecodedAttachment, type LinkedAttachment } from './attachments.js';
import { errorIssue } from './outcome.js';
import { invalid, type Invalid, type SupportedType } from './validate.js';

/**
 * Pure mapping of FHIR R4 resources to the hub's events. The adapter resolves
 * references (I/O) beforehand and passes what it found; the mapping decides
 * which events a resource means given what the hub knew before
 * (`previous`). Documented per resource in mapping.md.
 */

export type MappableResource = Patient | Encounter | ServiceRequest | Observation | DiagnosticReport;

/** What the adapter remembers about a resource between versions (no PHI beyond ids). */
export interface ResourceState {
  /** Hub id of the aggregate: patient key, encounter id, order id or result id. */
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
  /** Observations referenced by DiagnosticReport.result that the adapter could see (contained or in the same bundle). */
  resultObservations?: readonly Observation[] | undefined;
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

// ---------- small converters ----------

function code(c: Coding | undefined, fallbackText?: string): Code | null {
  if (c?.code)
    return {
      system: c.system ?? 'urn:hub:unknown-system',
      code: c.code,
      display: c.display ?? null,
      version: null,
      alternates: [],
      text: null,
    };
  if (fallbackText)
    return {
      system: 'urn:hub:text',
      code: fallbackText,
      display: fallbackText,
      version: null,
      alternates: [],
      text: null,
    };
  return null;
}

function concept(cc: CodeableConcept | undefined): Code | null {
  if (!cc) return null;
  return code(
    cc.coding?.find((c) => c.code),
    cc.text,
  );
}

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
    i.system === undefined ? 'urn:hub:unknown-system' : canonicalIdPart(i.system) || 'urn:hub:unknown-system',
    policy,
  );
  const typeCode = i.type?.coding?.find((c) => c.code)?.code ?? authority?.identifierType ?? null;
  return { system, value, type: typeCode };
}

function identifiers(list: readonly FhirIdentifier[] | undefined, policy: IdentityPolicy): Identifier[] {
  return (list ?? []).map((i) => toHubIdentifier(i, policy)).filter((i): i is Identifier => i !== null);
}

/** The identifier of a given HL7 v2-0203 type, else the first usable one. */
function preferred(list: readonly Identifier[], type: string): Identifier | undefined {
  return list.find((i) => i.type === type) ?? list[0];
}

/** A FHIR date, dateTime or instant as sent: the UTC instant, its precision and the offset it was written in. */
export interface FhirTime {
  instant: number;
  precision: SourceTime['precision'];
  offsetMinutes: number;
}

const FHIR_DATE_TIME =
  /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

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
  const precision =
    m[7] !== undefined
      ? 'millisecond'
      : m[6] !== undefined
        ? 'second'
        : m[4] !== undefined
          ? 'minute'
          : m[3] !== undefined
            ? 'day'
            : m[2] !== undefined
              ? 'month'
              : 'year';
  return { instant, precision, offsetMinutes };
}

function instant(s: string | undefined): number | null {
  return fhirTime(s)?.instant ?? null;
}

function practitioner(ref: Reference | undefined, policy: IdentityPolicy): Practitioner | null {
  if (!ref) return null;
  const id = ref.identifier ? toHubIdentifier(ref.identifier, policy) : null;
  // Reference.display is free text (a name); it is carried only as the name.
  const name = ref.display ? { family: ref.display, given: [], prefix: null, suffix: null, use: null } : null;
  if (!id && !name) return null;
  return { id, name, telecom: [] };
}

/** Parses `Patient/123`, `https://x/fhir/Patient/123` or `Patient/123/_history/2` into its type and id. */
export function parseLiteralReference(ref: string | undefined): { type: string; id: string } | undefined {
  if (!ref) return undefined;
  const m = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/.exec(ref);
  const [, type, id] = m ?? [];
  return type !== undefined && id !== undefined ? { type, id } : undefined;
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
    case 'Encounter':
    case 'ServiceRequest':
    case 'Observation':
    case 'DiagnosticReport':
      return r.subject;
  }
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
      const c = concept(r.code) ?? {
        system: 'urn:hub:unknown-system',
        code: 'unknown',
        display: null,
        version: null,
        alternates: [],
        text: null,
      };
      return resultIdFor(id.system, id.value, c);
    }
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

// ---------- per resource ----------

function metaFor(
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

export function demographicsOf(p: Patient, policy: IdentityPolicy): Demographics {
  return {
    identifiers: identifiers(p.identifier, policy),
    names: (p.name ?? []).map((n) => ({
      family: n.family ?? null,
      given: n.given ?? [],
      prefix: n.prefix?.join(' ') ?? null,
      suffix: n.suffix?.join(' ') ?? null,
      use: n.use ?? null,
    })),
    birthDate: p.birthDate ?? null,
    administrativeGender: p.gender ?? null,
    deceased: p.deceasedBoolean ?? (p.deceasedDateTime ? true : null),
    deceasedAt: instant(p.deceasedDateTime),
    addresses: (p.address ?? []).map((a) => ({
      lines: a.line ?? [],
      city: a.city ?? null,
      state: a.state ?? null,
      postalCode: a.postalCode ?? null,
      country: a.country ?? null,
      use: a.use ?? null,
      type: null,
    })),
    telecom: (p.telecom ?? []).flatMap((t) =>
      t.value ? [{ system: t.system ?? 'other', value: t.value, use: t.use ?? null, part: null }] : [],
    ),
    maritalStatus: concept(p.maritalStatus),
    language: concept(p.communication?.find((c) => c.preferred)?.language ?? p.communication?.[0]?.language),
    // A FHIR create or update (PUT) is the whole resource: an absent element is no value, not
    // "keep the stored one" (FHIR R4 RESTful API, update). So every event is a full snapshot.
    race: [],
    ethnicity: [],
    religion: null,
    contacts: [],
    primaryCareProvider: null,
    notSent: [],
    cleared: [],
  };
}

// Required bindings whose codes reach an event; the validator does not check terminology.
const GENDERS = new Set(['male', 'female', 'other', 'unknown']);
const TELECOM_SYSTEMS = new Set(['phone', 'fax', 'email', 'pager', 'url', 'sms', 'other']);
const PRIORITIES = new Set(['routine', 'urgent', 'asap', 'stat']);

function codeNotInBinding(expression: string, binding: string): Invalid {
  return invalid('fhir-invalid', 422, [
    errorIssue('code-invalid', `the code is not in the required value set ${binding}`, expression),
  ]);
}

function mapPatient(p: Patient, input: MapInput, ctx: MapContext): MapResult {
  if (p.gender !== undefined && !GENDERS.has(p.gender)) {
    return codeNotInBinding('Patient.gender', 'administrative-gender');
  }
  const badTelecom = (p.telecom ?? []).findIndex(
    (t) => t.system !== undefined && !TELECOM_SYSTEMS.has(t.system),
  );
  if (badTelecom >= 0)
    return codeNotInBinding(`Patient.telecom[${badTelecom}].system`, 'contact-point-system');
  const demographics = demographicsOf(p, ctx.policy);
  const key = enterprisePatientId(demographics.identifiers, ctx.policy);
  if (!key) {
    return invalid('unmappable', 422, [
      errorIssue(
        'required',
        'a Patient needs at least one identifier with a value: the hub keys patients by identifier',
        'Patient.identifier',
      ),
    ]);
  }
  const type = input.previous ? 'PatientUpdated' : 'PatientRegistered';
  const occurredAt = instant(p.meta?.lastUpdated) ?? ctx.recordedAt;
  const data = {
    meta: metaFor(type, 0, input, ctx, occurredAt, {
      'meta.occurredAt': p.meta?.lastUpdated,
      'demographics.deceasedAt': p.deceasedDateTime,
    }),
    patientId: key,
    demographics,
  };
  return {
    ok: true,
    events: [{ type, data }],
    state: {
      hubId: key,
      patientKey: key,
      status: p.active === false ? 'inactive' : 'active',
      location: null,
    },
  };
}

function needSubject(input: MapInput, type: SupportedType): Invalid | string {
  if (input.subjectKey) return input.subjectKey;
  return invalid('unmappable', 422, [
    errorIssue(
      'not-found',
      `${type}.subject must reference a Patient known to the hub (Patient/{id} posted before, a Patient in the same bundle, or an identifier reference)`,
      `${type}.subject`,
    ),
  ]);
}

function encounterLocation(e: Encounter): Location | null {
  const loc = e.location?.find((l) => l.status === 'active') ?? e.location?.[0];
  const unit = loc?.location.display ?? null;
  const facility = e.serviceProvider?.display ?? null;
  if (!unit && !facility) return null;
  return { facility, unit, room: null, bed: null };
}

/** Field by field: a stored location comes back from Postgres with its keys in another order. */
function sameLocation(a: Location | null, b: Location | null): boolean {
  if (a === null || b === null) return a === b;
  return a.facility === b.facility && a.unit === b.unit && a.room === b.room && a.bed === b.bed;
}

const ENCOUNTER_ACTIVE = new Set(['planned', 'arrived', 'triaged', 'in-progress', 'onleave']);

/** What every event of one Encounter write shares. */
interface EncounterWrite {
  e: Encounter;
  input: MapInput;
  ctx: MapContext;
  subject: string;
  encounterId: string;
  location: Location | null;
  prevStatus: string | null;
}

function encounterStarted(w: EncounterWrite, seq: number): ClinicalEvent {
  const { e, input, ctx } = w;
  const ids = identifiers(e.identifier, ctx.policy);
  const attending = e.participant?.find((p) =>
    p.type?.some((t) => t.coding?.some((c) => c.code === 'ATND')),
  )?.individual;
  const start = instant(e.period?.start);
  return {
    type: 'EncounterStarted',
    data: {
      meta: metaFor('EncounterStarted', seq, input, ctx, start ?? ctx.recordedAt, {
        'meta.occurredAt': e.period?.start,
        admittedAt: e.period?.start,
      }),
      patientId: w.subject,
      encounterId: w.encounterId,
      visitNumber: preferred(ids, 'VN') ?? null,
      encounterClass: code(e.class) ?? {
        system: 'urn:hub:unknown-system',
        code: 'unknown',
        display: null,
        version: null,
        alternates: [],
        text: null,
      },
      status: e.status === 'planned' ? 'planned' : 'in-progress',
      location: w.location,
      hospitalService: concept(e.serviceType),
      attendingPractitioner: practitioner(attending, ctx.policy),
      admittedAt: start,
      payer: null,
      admitReason: null,
      admitSource: null,
      admissionType: null,
      dischargeDisposition: null,
    },
  };
}

/**
 * planned … onleave: a start when the visit was not active before, a transfer when an active
 * visit moved, a start when a pre-admit became an admission; else (a repeat) nothing.
 */
function activeEncounterEvents(w: EncounterWrite): ClinicalEvent[] {
  const { e, input, ctx, location, prevStatus } = w;
  const wasActive = prevStatus !== null && ENCOUNTER_ACTIVE.has(prevStatus);
  if (!wasActive) return [encounterStarted(w, 0)];
  if (location && !sameLocation(location, input.previous?.location ?? null) && e.status !== 'planned') {
    return [
      {
        type: 'EncounterTransferred',
        data: {
          meta: metaFor('EncounterTransferred', 0, input, ctx, ctx.recordedAt),
          patientId: w.subject,
          encounterId: w.encounterId,
          fromLocation: input.previous?.location ?? null,
          toLocation: location,
          transferredAt: ctx.recordedAt,
          encounterClass: null,
          hospitalService: null,
          attendingPractitioner: null,
        },
      },
    ];
  }
  // Pre-admit became an admission: a start of the real visit.
  if (prevStatus === 'planned' && e.status !== 'planned') return [encounterStarted(w, 0)];
  return [];
}

function finishedEncounterEvents(w: EncounterWrite): ClinicalEvent[] {
  const { e, input, ctx, prevStatus } = w;
  // A backfill may send a visit only once it is over: it still started.
  const events = prevStatus === null ? [encounterStarted(w, 0)] : [];
  if (prevStatus === 'finished') return events;
  const end = instant(e.period?.end) ?? ctx.recordedAt;
  events.push({
    type: 'EncounterEnded',
    data: {
      meta: metaFor('EncounterEnded', events.length, input, ctx, end, {
        'meta.occurredAt': e.period?.end,
        endedAt: e.period?.end,
      }),
      patientId: w.subject,
      encounterId: w.encounterId,
      endedAt: end,
      dischargeDisposition: concept(e.hospitalization?.dischargeDisposition),
      encounterClass: null,
      hospitalService: null,
      attendingPractitioner: null,
      location: null,
    },
  });
  return events;
}

function cancelledEncounterEvents(w: EncounterWrite): ClinicalEvent[] {
  const { e, input, ctx, prevStatus } = w;
  if (prevStatus === 'cancelled' || prevStatus === 'entered-in-error') return [];
  return [
    {
      type: 'EncounterCancelled',
      data: {
        meta: metaFor('EncounterCancelled', 0, input, ctx, ctx.recordedAt),
        patientId: w.subject,
        encounterId: w.encounterId,
        reason:
          e.status === 'entered-in-error'
            ? {
                system: 'http://hl7.org/fhir/encounter-status',
                code: 'entered-in-error',
                display: null,
                version: null,
                alternates: [],
                text: null,
              }
            : null,
        cancelledEventType: prevStatus === 'finished' ? 'discharge' : 'admit',
        encounterClass: null,
      },
    },
  ];
}

/** The events a write of this status means, given the status the hub knew before. */
function encounterEvents(w: EncounterWrite): ClinicalEvent[] | Invalid {
  switch (w.e.status) {
    case 'planned':
    case 'arrived':
    case 'triaged':
    case 'in-progress':
    case 'onleave':
      return activeEncounterEvents(w);
    case 'finished':
      return finishedEncounterEvents(w);
    case 'cancelled':
    case 'entered-in-error':
      return cancelledEncounterEvents(w);
    case 'unknown':
    case undefined:
      return invalid('unmappable', 422, [
        errorIssue(
          'code-invalid',
          'Encounter.status unknown cannot be mapped to a visit event',
          'Encounter.status',
        ),
      ]);
  }
}

function mapEncounter(e: Encounter, input: MapInput, ctx: MapContext): MapResult {
  const subject = needSubject(input, 'Encounter');
  if (typeof subject !== 'string') return subject;
  const encounterId = input.previous?.hubId ?? hubIdOfResource(e, input.id, ctx.policy);
  const location = encounterLocation(e);
  const prevStatus = input.previous?.status ?? null;
  const events = encounterEvents({ e, input, ctx, subject, encounterId, location, prevStatus });
  if (!Array.isArray(events)) return events;
  return {
    ok: true,
    events,
    state: { hubId: encounterId, patientKey: subject, status: e.status, location },
  };
}

const LAB_CATEGORIES = new Set(['108252007', 'LAB', 'laboratory']);
const IMAGING_CATEGORIES = new Set(['363679005', 'RAD', 'imaging', 'IMG']);

function categoryOf(cats: readonly CodeableConcept[] | undefined): 'laboratory' | 'imaging' | 'other' {
  for (const c of cats ?? []) {
    for (const cd of c.coding ?? []) {
      if (cd.code && LAB_CATEGORIES.has(cd.code)) return 'laboratory';
      if (cd.code && IMAGING_CATEGORIES.has(cd.code)) return 'imaging';
    }
  }
  return 'other';
}

function mapServiceRequest(s: ServiceRequest, input: MapInput, ctx: MapContext): MapResult {
  if (s.priority !== undefined && !PRIORITIES.has(s.priority)) {
    return codeNotInBinding('ServiceRequest.priority', 'request-priority');
  }
  const subject = needSubject(input, 'ServiceRequest');
  if (typeof subject !== 'string') return subject;
  const orderId = input.previous?.hubId ?? hubIdOfResource(s, input.id, ctx.policy);
  const prevStatus = input.previous?.status ?? null;
  const ids = identifiers(s.identifier, ctx.policy);
  const events: ClinicalEvent[] = [];
  let seq = 0;
  const placed = (): ClinicalEvent | Invalid => {
    const c = concept(s.code);
    if (!c) {
      return invalid('unmappable', 422, [
        errorIssue('required', 'ServiceRequest.code is required to place an order', 'ServiceRequest.code'),
      ]);
    }
    return {
      type: 'OrderPlaced',
      data: {
        meta: metaFor('OrderPlaced', seq++, input, ctx, instant(s.authoredOn) ?? ctx.recordedAt, {
          'meta.occurredAt': s.authoredOn,
          orderedAt: s.authoredOn,
        }),
        patientId: subject,
        orderId,
        placerOrderNumber: ids.find((i) => i.type === 'PLAC') ?? ids[0] ?? null,
        fillerOrderNumber: ids.find((i) => i.type === 'FILL') ?? null,
        encounterId: input.encounterId ?? null,
        code: c,
        category: categoryOf(s.category),
        priority: s.priority ?? 'routine',
        orderedAt: instant(s.authoredOn) ?? ctx.recordedAt,
        orderingProvider: practitioner(s.requester, ctx.policy),
        placerGroupNumber: null,
        specimens: [],
        notes: [],
        reasons: [],
        orderStatus: null,
      },
    };
  };
  const changed = (): ClinicalEvent => ({
    type: 'OrderStatusChanged',
    data: {
      meta: metaFor('OrderStatusChanged', seq++, input, ctx, ctx.recordedAt),
      patientId: subject,
      orderId,
      status: s.status,
      fillerStatus: null,
      changedAt: ctx.recordedAt,
      placerOrderNumber: null,
      fillerOrderNumber: null,
      resultStatus: null,
      notes: [],
    },
  });
  switch (s.status) {
    case 'draft':
    case 'active':
    case 'on-hold':
    case 'completed': {
      if (prevStatus === null) {
        const p = placed();
        if ('ok' in p) return p;
        events.push(p);
        if (s.status === 'on-hold' || s.status === 'completed') events.push(changed());
      } else if (prevStatus !== s.status) {
        events.push(changed());
      }
      break;
    }
    case 'revoked':
    case 'entered-in-error': {
      if (prevStatus !== 'revoked' && prevStatus !== 'entered-in-error') {
        events.push({
          type: 'OrderCancelled',
          data: {
            meta: metaFor('OrderCancelled', seq++, input, ctx, ctx.recordedAt),
            patientId: subject,
            orderId,
            reason:
              s.status === 'entered-in-error'
                ? {
                    system: 'http://hl7.org/fhir/request-status',
                    code: 'entered-in-error',
                    display: null,
                    version: null,
                    alternates: [],
                    text: null,
                  }
                : null,
            cancelledAt: ctx.recordedAt,
            placerOrderNumber: null,
            fillerOrderNumber: null,
          },
        });
      }
      break;
    }
    case 'unknown':
    case undefined:
      return invalid('unmappable', 422, [
        errorIssue('code-invalid', 'ServiceRequest.status unknown cannot be mapped', 'ServiceRequest.status'),
      ]);
  }
  return {
    ok: true,
    events,
    state: { hubId: orderId, patientKey: subject, status: s.status, location: null },
  };
}

/** Hub result status for a FHIR Observation/DiagnosticReport status; undefined = not mappable. */
function resultStatus(
  s: string | undefined,
): { kind: 'reported' | 'corrected'; status: string; reason: string | null } | undefined {
  switch (s) {
    case 'registered':
    case 'partial':
    case 'preliminary':
      return { kind: 'reported', status: 'preliminary', reason: null };
    case 'final':
      return { kind: 'reported', status: 'final', reason: null };
    case 'amended':
    case 'corrected':
    case 'appended':
      return { kind: 'corrected', status: 'corrected', reason: s };
    case 'cancelled':
      return { kind: 'reported', status: 'cancelled', reason: null };
    case 'entered-in-error':
      return { kind: 'corrected', status: 'cancelled', reason: 'entered-in-error' };
    case undefined:
    default:
      return undefined;
  }
}

export function observationValue(o: Observation, sequence: number): ObservationValue {
  const base: ObservationValue = {
    sequence,
    code: concept(o.code) ?? {
      system: 'urn:hub:unknown-system',
      code: 'unknown',
      display: null,
      version: null,
      alternates: [],
      text: null,
    },
    valueType: 'ST',
    valueNumber: null,
    valueString: null,
    valueCode: null,
    valueComparator: null,
    unit: null,
    referenceRange: null,
    interpretation: concept(o.interpretation?.[0]),
    status: resultStatus(o.status)?.status ?? 'final',
    observedAt: instant(o.effectiveDateTime ?? o.effectivePeriod?.start ?? o.issued),
    attachment: null,
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
  const rr = o.referenceRange?.[0];
  if (rr) {
    base.referenceRange =
      rr.text ??
      (rr.low?.value !== undefined || rr.high?.value !== undefined
        ? `${rr.low?.value ?? ''}-${rr.high?.value ?? ''}`
        : null);
  }
  if (o.valueQuantity) {
    const comparator = o.valueQuantity.comparator ?? null;
    return {
      ...base,
      valueType: comparator ? 'SN' : 'NM',
      valueNumber: o.valueQuantity.value ?? null,
      valueComparator: comparator,
      unit: o.valueQuantity.unit ?? o.valueQuantity.code ?? null,
    };
  }
  if (o.valueCodeableConcept)
    return { ...base, valueType: 'CWE', valueCode: concept(o.valueCodeableConcept) };
  if (o.valueString !== undefined) return { ...base, valueType: 'ST', valueString: o.valueString };
  if (o.valueInteger !== undefined) return { ...base, valueType: 'NM', valueNumber: o.valueInteger };
  if (o.valueBoolean !== undefined) return { ...base, valueType: 'ST', valueString: String(o.valueBoolean) };
  if (o.valueDateTime !== undefined) return { ...base, valueType: 'DTM', valueString: o.valueDateTime };
  return base;
}

function attachmentRef(a: DecodedAttachment, fallbackTitle: string | null): ObservationValue['attachment'] {
  return { sha256: a.sha256, size: a.size, contentType: a.contentType, title: a.title ?? fallbackTitle };
}

/**
 * A presentedForm without data, as HL7 v2 carries a link to a document held elsewhere: an `RP`
 * (reference pointer) value, the same shape libs/hl7 map-result.ts gives OBX-2 = RP. The pointer
 * is valueString, the MIME type valueCode (BCP 13), the title the code's display (an ED value's
 * title falls back on the same display). Nothing is fetched: the content stays where it is.
 */
/** An observation line that carries a document (ED content or an RP link) rather than a value. */
function documentValue(
  sequence: number,
  code: Code,
  status: string,
  doc: Pick<ObservationValue, 'valueType' | 'valueString' | 'valueCode' | 'attachment'>,
): ObservationValue {
  return {
    sequence,
    code,
    valueNumber: null,
    valueComparator: null,
    unit: null,
    referenceRange: null,
    interpretation: null,
    status,
    observedAt: null,
    ...doc,
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

function linkValue(a: LinkedAttachment, sequence: number, c: Code, status: string): ObservationValue {
  return documentValue(sequence, { ...c, display: a.title ?? c.display }, status, {
    valueType: 'RP',
    valueString: a.url,
    valueCode: a.contentType
      ? {
          system: MIME_TYPE_SYSTEM,
          code: a.contentType,
          display: null,
          version: null,
          alternates: [],
          text: null,
        }
      : null,
    attachment: null,
  });
}

/**
 * The result's observations and the attachment content they refer to. A report's presentedForm
 * entries follow its result Observations, one ED value each (code: the report's code), the way an
 * HL7 ORU carries its PDF in an OBX of type ED, so every reader finds report attachments in one
 * place: ObservationValue.attachment (the portal renders them back as presentedForm → Binary).
 * A form without data (a url) is an RP value instead, as HL7 sends a link (linkValue).
 * (FHIR R4 Observation has no valueAttachment: the validator refuses it as an unknown element.)
 */
function resultObservationsOf(
  r: Observation | DiagnosticReport,
  input: MapInput,
  c: Code,
  status: string,
): { observations: ObservationValue[]; lifted: DecodedAttachment[] } | Invalid {
  const lifted: DecodedAttachment[] = [];
  const observations =
    r.resourceType === 'Observation'
      ? [observationValue(r, 1)]
      : (input.resultObservations ?? []).map((o, i) => observationValue(o, i + 1));
  if (r.resourceType === 'DiagnosticReport') {
    const seen = new Set<string>();
    const linked = new Set<string>();
    for (const [i, form] of (r.presentedForm ?? []).entries()) {
      const a = decodeAttachment(form, `DiagnosticReport.presentedForm[${i}]`);
      if (!a.ok) return invalid('attachment-invalid', a.status, [a.issue]);
      if (a.kind === 'link') {
        // The same link twice is one form, as the same content is.
        if (a.value.url !== null && linked.has(a.value.url)) continue;
        if (a.value.url !== null) linked.add(a.value.url);
        observations.push(linkValue(a.value, observations.length + 1, c, status));
        continue;
      }
      // The same content twice is one form (the portal shows each sha256 once).
      if (seen.has(a.value.sha256)) continue;
      seen.add(a.value.sha256);
      lifted.push(a.value);
      observations.push(
        documentValue(observations.length + 1, c, status, {
          valueType: 'ED',
          // The sender's own link to the same content (url and data both sent): kept, not served.
          valueString: a.value.url,
          valueCode: null,
          attachment: attachmentRef(a.value, c.display),
        }),
      );
    }
  }
  return { observations, lifted };
}

/**
 * One AttachmentStored per content, ahead of the result that refers to it (one publish, before
 * the 201). Its event id is derived from patient and sha256 alone, exactly as for HL7 (libs/hl7
 * map-result.ts), so the same PDF sent by either route, again or in a correction, is one fact.
 */
function attachmentEvents(
  lifted: readonly DecodedAttachment[],
  patientId: string,
  input: MapInput,
  ctx: MapContext,
  occurredAt: number,
): ClinicalEvent[] {
  const seen = new Set<string>();
  const out: ClinicalEvent[] = [];
  for (const a of lifted) {
    if (seen.has(a.sha256)) continue;
    seen.add(a.sha256);
    out.push({
      type: 'AttachmentStored',
      data: {
        meta: {
          ...metaFor('AttachmentStored', out.length + 1, input, ctx, occurredAt),
          eventId: deterministicEventId(['attachment', patientId, a.sha256]),
        },
        patientId,
        sha256: a.sha256,
        size: a.size,
        contentType: a.contentType,
        data: a.data,
      },
    });
  }
  return out;
}

function mapResult(r: Observation | DiagnosticReport, input: MapInput, ctx: MapContext): MapResult {
  const type = r.resourceType;
  const subject = needSubject(input, type);
  if (typeof subject !== 'string') return subject;
  const st = resultStatus(r.status);
  if (!st) {
    return invalid('unmappable', 422, [
      errorIssue(
        'code-invalid',
        `${type}.status ${r.status ?? '(none)'} cannot be mapped to a result`,
        `${type}.status`,
      ),
    ]);
  }
  const c = concept(r.code);
  if (!c) {
    return invalid('unmappable', 422, [
      errorIssue('required', `${type}.code needs a coding or text`, `${type}.code`),
    ]);
  }
  const resultId = input.previous?.hubId ?? hubIdOfResource(r, input.id, ctx.policy);
  const lifting = resultObservationsOf(r, input, c, st.status);
  if ('ok' in lifting) return lifting;
  const { observations, lifted } = lifting;
  const effectiveAt = instant(r.effectiveDateTime ?? r.effectivePeriod?.start);
  const issuedAt = instant(r.issued);
  const common = {
    patientId: subject,
    resultId,
    orderId: input.orderId ?? null,
    encounterId: input.encounterId ?? null,
    code: c,
    category: categoryOf(r.category),
    status: st.status,
    effectiveAt,
    issuedAt,
    observations,
    reportText: r.resourceType === 'DiagnosticReport' ? (r.conclusion ?? null) : null,
    performer: practitioner(r.performer?.[0], ctx.policy),
    notes: [],
    specimens: [],
    placerOrderNumber: null,
    fillerOrderNumber: null,
    orderCode: null,
  };
  const occurredAt = issuedAt ?? effectiveAt ?? ctx.recordedAt;
  const effectiveSent = r.effectiveDateTime ?? r.effectivePeriod?.start;
  const observationSources = r.resourceType === 'Observation' ? [r] : (input.resultObservations ?? []);
  const times: Record<string, string | undefined> = {
    'meta.occurredAt': r.issued ?? effectiveSent,
    effectiveAt: effectiveSent,
    issuedAt: r.issued,
    ...Object.fromEntries(
      observationSources.map((o, i) => [
        `observations[${i}].observedAt`,
        o.effectiveDateTime ?? o.effectivePeriod?.start ?? o.issued,
      ]),
    ),
  };
  // A result first seen as amended is still a correction of something the source reported before.
  const results: ClinicalEvent[] =
    st.kind === 'corrected'
      ? [
          {
            type: 'ResultCorrected',
            data: {
              ...common,
              meta: metaFor('ResultCorrected', 0, input, ctx, occurredAt, times),
              correctionReason: st.reason,
            },
          },
        ]
      : [
          {
            type: 'ResultReported',
            data: { ...common, meta: metaFor('ResultReported', 0, input, ctx, occurredAt, times) },
          },
        ];
  const events = [...attachmentEvents(lifted, subject, input, ctx, occurredAt), ...results];
  return {
    ok: true,
    events,
    state: { hubId: resultId, patientKey: subject, status: r.status, location: null },
  };
}

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
  }
}
