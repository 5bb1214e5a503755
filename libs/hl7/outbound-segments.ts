import type { AttachmentRef, Demographics, EventMeta, Note, SourceTime } from '../events/index.js';
import type { IdentityPolicy } from '../identity/index.js';
import type { Code, Identifier, Location, Practitioner } from '../events/index.js';
import {
  comps,
  cwe,
  cx,
  dt,
  dtm,
  escOpt,
  esc,
  idOf,
  joinTrim,
  NULL_FIELD,
  pl,
  reps,
  xad,
  xcn,
  xpn,
  xtn,
} from './outbound-types.js';

/**
 * The segments every outbound message shares (PID, PD1, NK1, EVN, PV1, NTE)
 * and the context they are built in: the inverse of scope.ts and
 * map-adt-patient.ts. See outbound.ts.
 */

/** Order / result category → OBR-24 diagnostic service section (table 0074), as categoryForSection reads it back. */
export const SECTION: Readonly<Record<string, string>> = { laboratory: 'LAB', imaging: 'RAD', other: 'OTH' };

/** Namespace (CX.4 / HD) of the hub's own ids: the enterprise patient id (PID-3) and hub encounter id (PV1-50). */
export const HUB_AUTHORITY = 'HUB';

export interface OutboundOptions {
  /** MSH-12. */
  version: string;
  /** MSH-3 / MSH-4 (HD namespace ids). */
  sendingApplication: string;
  sendingFacility: string;
  /** MSH-5 / MSH-6. */
  receivingApplication?: string | undefined;
  receivingFacility?: string | undefined;
  /** MSH-7, epoch ms (the sender's clock, injected). */
  now: number;
  /** MSH-10 (see controlIdFor). */
  controlId: string;
  /** MSH-11; P unless told. */
  processingId?: 'P' | 'T' | 'D' | undefined;
  /** Registered assigning authorities: identifiers go out with the site's own HD spelling. */
  policy?: IdentityPolicy | undefined;
  /**
   * The patient's stored demographics, for events that carry only a patient
   * id (encounters, results, merges). Without them PID has PID-3 alone (the
   * hub's enterprise id), which keeps the receiver's stored name and birth
   * date (PID-5 left empty is "not sent"), but a receiver that requires
   * PID-5 refuses the message.
   */
  patient?: Demographics | null | undefined;
  /** RP pointer (OBX-5.1) for an attachment whose bytes are not in the event; default `urn:hub:attachment:sha256:<hex>`. */
  attachmentPointer?: ((ref: AttachmentRef) => string) | undefined;
}

/** Major.minor of MSH-12 as a number (2.5.1 → 2.5). */
export function versionNumber(v: string): number {
  const m = /^(\d+)\.(\d+)/.exec(v);
  return m ? Number(m[1]) + Number(m[2]) / 10 : 2.5;
}

/** Everything a segment builder needs besides the event. */
export interface Ctx {
  o: OutboundOptions;
  meta: EventMeta;
  v27: boolean;
  v26: boolean;
  /** The source time the event recorded for an instant field (path as in SourceTime.field). */
  time(ms: number | null, field: string): string;
}

export function contextOf(o: OutboundOptions, meta: EventMeta): Ctx {
  const byField = new Map<string, SourceTime>(meta.sourceTimes.map((t) => [t.field, t]));
  const v = versionNumber(o.version);
  return {
    o,
    meta,
    v27: v >= 2.7,
    v26: v >= 2.6,
    time: (ms, field) => dtm(ms, byField.get(field)),
  };
}

export const seg = (name: string, fields: readonly string[]): string => joinTrim('|', [name, ...fields]);

/** Field n (1-based) of a segment from a sparse list of [n, value]. */
export function fields(values: readonly (readonly [number, string])[]): string[] {
  const max = values.reduce((m, [n]) => Math.max(m, n), 0);
  const out: string[] = Array.from({ length: max }, () => '');
  for (const [n, v] of values) out[n - 1] = v;
  return out;
}

/** The hub's enterprise patient id as a CX (type PI, patient internal identifier). */
export function hubPatientCx(patientId: string): string {
  return comps(esc(patientId), '', '', HUB_AUTHORITY, 'PI');
}

/** A field's text by the event's null semantics: (Demographics name, value if sent) → value, `""` or empty. */
type FieldState = (name: string, value: string) => string;

/**
 * Chapter 2 null semantics from the event's lists: a cleared field is sent
 * as `""` (delete), a not-sent field empty (keep). A field with no value
 * that neither list names is empty, except in a full snapshot (both lists
 * empty) of an update, where "no value" means "none": `""`.
 */
function fieldState(d: Demographics, update: boolean): FieldState {
  const full = d.notSent.length === 0 && d.cleared.length === 0;
  return (name, value) => {
    if (d.cleared.includes(name)) return NULL_FIELD;
    if (d.notSent.includes(name)) return '';
    if (value !== '') return value;
    return full && update ? NULL_FIELD : '';
  };
}

/** A telecom part (PID-13 home, PID-14 work): entries of that part, or by use where the event has no parts. */
function telecomPart(d: Demographics, part: 'home' | 'work'): string {
  const mine = d.telecom.filter((t) => (t.part ?? (t.use === 'work' ? 'work' : 'home')) === part);
  return reps(mine.map(xtn));
}

/**
 * PID from the patient id and demographics (the event's own, else the
 * stored ones the caller gave). PID-3 always ends with the hub's enterprise
 * id (authority HUB, type PI), so a receiver can tie visit and result
 * messages, which carry nothing else, to the patient.
 */
export function pidSegment(c: Ctx, patientId: string, d: Demographics | null, update: boolean): string {
  const ids = [...(d?.identifiers ?? []).map((i) => cx(i, c.o.policy)), hubPatientCx(patientId)];
  if (!d)
    return seg(
      'PID',
      fields([
        [1, '1'],
        [3, reps(ids)],
      ]),
    );
  const s = fieldState(d, update);
  const telecomAll = d.cleared.includes('telecom')
    ? NULL_FIELD
    : d.notSent.includes('telecom')
      ? null
      : undefined;
  const phone = (part: 'home' | 'work') => telecomAll ?? s(`telecom.${part}`, telecomPart(d, part));
  const deceased = d.deceased === true ? 'Y' : d.deceased === false ? 'N' : s('deceased', '');
  return seg(
    'PID',
    fields([
      [1, '1'],
      [3, reps(ids)],
      [5, s('names', reps(d.names.map(xpn)))],
      [7, s('birthDate', dt(d.birthDate))],
      [8, s('administrativeGender', genderCode(d.administrativeGender))],
      [10, s('race', reps(d.race.map((r) => cwe(r, c.v27))))],
      [11, s('addresses', reps(d.addresses.map(xad)))],
      [13, phone('home')],
      [14, phone('work')],
      [15, s('language', cwe(d.language, c.v27))],
      [16, s('maritalStatus', cwe(d.maritalStatus, c.v27))],
      [17, s('religion', cwe(d.religion, c.v27))],
      [22, s('ethnicity', reps(d.ethnicity.map((r) => cwe(r, c.v27))))],
      [29, s('deceasedAt', c.time(d.deceasedAt, 'demographics.deceasedAt'))],
      [30, deceased],
    ]),
  );
}

/** FHIR administrative-gender → PID-8 (table 0001). */
const GENDER: Readonly<Record<string, string>> = { male: 'M', female: 'F', other: 'O', unknown: 'U' };
const genderCode = (g: string | null): string => (g ? (GENDER[g] ?? '') : '');

/** PD1-4 primary care provider, when the demographics say anything about it. */
export function pd1Segment(c: Ctx, d: Demographics | null, update: boolean): string[] {
  if (!d) return [];
  const v = fieldState(d, update)('primaryCareProvider', xcn(d.primaryCareProvider, c.o.policy));
  return v === '' ? [] : [seg('PD1', fields([[4, v]]))];
}

/**
 * NK1 per contact: NK1-2 name, NK1-3 relationship (table 0063), NK1-4
 * address, NK1-5/6 phones, NK1-7 contact role (table 0131), NK1-8/9
 * period, NK1-13 organisation. Contacts not sent: no NK1; cleared: one NK1
 * with `""` (the inbound rule).
 */
export function nk1Segments(c: Ctx, d: Demographics | null, update: boolean): string[] {
  if (!d) return [];
  const state = fieldState(d, update)('contacts', d.contacts.length > 0 ? 'x' : '');
  if (state === NULL_FIELD) return [seg('NK1', ['1', NULL_FIELD])];
  if (state === '') return [];
  return d.contacts.map((k, i) => {
    const role = k.relationships.find((r) => r.system.endsWith('v2-0131'));
    const rel = k.relationships.find((r) => r !== role);
    return seg(
      'NK1',
      fields([
        [1, String(i + 1)],
        [2, k.name ? xpn(k.name) : ''],
        [3, cwe(rel, c.v27)],
        [4, k.address ? xad(k.address) : ''],
        [5, reps(k.telecom.filter((t) => t.use !== 'work').map(xtn))],
        [6, reps(k.telecom.filter((t) => t.use === 'work').map(xtn))],
        [7, cwe(role, c.v27)],
        [8, dt(k.periodStart)],
        [9, dt(k.periodEnd)],
        [13, escOpt(k.organization)],
      ]),
    );
  });
}

/** EVN: EVN-1 trigger (kept for pre-2.5 receivers), EVN-2 recorded, EVN-4 reason, EVN-6 occurred. */
export function evnSegment(
  c: Ctx,
  trigger: string,
  reason = '',
  at: { ms: number; field: string } = { ms: c.meta.occurredAt, field: 'meta.occurredAt' },
): string {
  return seg(
    'EVN',
    fields([
      [1, trigger],
      [2, dtm(c.meta.recordedAt)],
      [4, reason],
      [6, c.time(at.ms, at.field)],
    ]),
  );
}

/** What a PV1 says; absent parts are empty fields. */
export interface Pv1 {
  encounterId: string;
  /** PV1-2 (table 0004); U (unknown) when empty, as PV1-2 is required. */
  patientClass: string;
  visit?: Identifier | null;
  location?: Location | null;
  priorLocation?: Location | null;
  admissionType?: Code | null;
  attending?: Practitioner | null;
  service?: Code | null;
  admitSource?: Code | null;
  disposition?: Code | null;
  /** PV1-44 / PV1-45, already as DTM. */
  admittedAt?: string;
  dischargedAt?: string;
}

/**
 * PV1 of an encounter: PV1-19 the visit number where the event has it, else
 * the hub encounter id; PV1-50 (alternate visit id) always the hub encounter
 * id, so every message of one visit shares one key whatever PV1-19 says.
 */
export function pv1Segment(c: Ctx, v: Pv1): string {
  const hubVisit = comps(esc(v.encounterId), '', '', HUB_AUTHORITY, 'VN');
  return seg(
    'PV1',
    fields([
      [1, '1'],
      [2, v.patientClass || 'U'],
      [3, pl(v.location ?? null)],
      [4, idOf(v.admissionType)],
      [6, pl(v.priorLocation ?? null)],
      [7, xcn(v.attending ?? null, c.o.policy)],
      [10, idOf(v.service)],
      [14, idOf(v.admitSource)],
      [19, v.visit ? cx(v.visit, c.o.policy) : hubVisit],
      [36, idOf(v.disposition)],
      [44, v.admittedAt ?? ''],
      [45, v.dischargedAt ?? ''],
      [50, hubVisit],
    ]),
  );
}

/** PID (and PD1, when the caller gave stored demographics) of a message about a patient by id only. */
export function patientById(c: Ctx, patientId: string): string[] {
  const d = c.o.patient ?? null;
  return [pidSegment(c, patientId, d, false), ...pd1Segment(c, d, false)];
}

/** NTE: NTE-2 source (table 0105), NTE-3 the lines (one repetition each), NTE-4 type, NTE-6 entered (v2.6+). */
export function nteSegments(c: Ctx, notes: readonly Note[], path: string): string[] {
  return notes.map((n, i) =>
    seg(
      'NTE',
      fields([
        [1, String(i + 1)],
        [2, escOpt(n.source)],
        [3, textLines(n.text)],
        [4, cwe(n.type, c.v27)],
        [6, c.v26 ? c.time(n.authoredAt, `${path}[${i}].authoredAt`) : ''],
      ]),
    ),
  );
}

/** Lines of text as repetitions (TX, NTE-3): empty lines kept, so the text reads back as it was. */
export const textLines = (text: string): string => text.split('\n').map(esc).join('~');
