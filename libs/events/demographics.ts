import type { ContactPoint, Demographics } from './generated.js';

/**
 * How a reader applies a Demographics record to what it has stored (HL7 v2
 * chapter 2 null semantics, carried by `notSent` / `cleared`):
 *
 * - sent: the record's value replaces the stored one (a list replaces the whole stored list);
 * - not sent: the stored value stays;
 * - cleared (HL7 `""`): the stored value is deleted (null, or an empty list).
 *
 * A record with both lists empty (FHIR, and every event written before the
 * lists existed) is a full snapshot: every field is "sent". Pure.
 */

/** The Demographics fields a source may leave out or clear; `identifiers` is always sent. */
export const DEMOGRAPHICS_FIELDS = [
  'names',
  'birthDate',
  'administrativeGender',
  'deceased',
  'deceasedAt',
  'addresses',
  'telecom',
  'maritalStatus',
  'language',
  // Added with issue #18: HL7 PID-10, PID-22, PID-17, the NK1 segments and PD1-4 are sent,
  // left out and deleted as independently as the fields above.
  'race',
  'ethnicity',
  'religion',
  'contacts',
  'primaryCareProvider',
] as const;
export type DemographicsField = (typeof DEMOGRAPHICS_FIELDS)[number];

/**
 * The fields added after notSent / cleared existed. A partial record written by a producer that
 * predates them (an adapter not yet upgraded) cannot name them, and carries them empty: in a
 * partial record an empty value of one of these that is not named in `cleared` is "not sent", so
 * such a record never deletes what a newer one stored. A current HL7 producer never sends one of
 * them empty (a sent PID-10/17/22, NK1 or PD1-4 always has a value), so nothing is lost.
 */
const LATER_FIELDS: ReadonlySet<string> = new Set([
  'race',
  'ethnicity',
  'religion',
  'contacts',
  'primaryCareProvider',
]);

function isEmptyValue(v: unknown): boolean {
  return v === null || (Array.isArray(v) && v.length === 0);
}

/**
 * Telecom arrives in two independently sent parts in HL7 v2 (PID-13 home, PID-14 business),
 * named `telecom.home` / `telecom.work` in notSent / cleared and in ContactPoint.part.
 */
export const TELECOM_PARTS = ['home', 'work'] as const;
export type TelecomPart = (typeof TELECOM_PARTS)[number];

export type FieldState = 'sent' | 'notSent' | 'cleared';

/** What the record says about one field (or telecom part, as `telecom.home` / `telecom.work`). */
export function fieldState(d: Demographics, field: DemographicsField | `telecom.${TelecomPart}`): FieldState {
  if (d.cleared.includes(field)) return 'cleared';
  if (d.notSent.includes(field)) return 'notSent';
  if (LATER_FIELDS.has(field) && !isFullSnapshot(d) && isEmptyValue(d[field as keyof Demographics])) {
    return 'notSent';
  }
  if (field === 'telecom') {
    const parts = TELECOM_PARTS.map((p) => fieldState(d, `telecom.${p}`));
    if (parts.every((s) => s === 'cleared')) return 'cleared';
    if (parts.every((s) => s === 'notSent')) return 'notSent';
  }
  return 'sent';
}

/** True when the record is a full snapshot (nothing left out, nothing cleared by name). */
export function isFullSnapshot(d: Demographics): boolean {
  return d.notSent.length === 0 && d.cleared.length === 0;
}

/**
 * The part a stored contact point belongs to: its `part` when the source said, else (FHIR, and
 * events before parts existed) `work` for a work number and `home` for the rest.
 */
export function telecomPartOf(c: ContactPoint): TelecomPart {
  if (c.part === 'home' || c.part === 'work') return c.part;
  return c.use === 'work' ? 'work' : 'home';
}

/** Applies one state to a field: the incoming value, the stored one, or empty. */
export function applyField<T>(state: FieldState, incoming: T, stored: T | undefined, empty: T): T {
  switch (state) {
    case 'sent':
      return incoming;
    case 'cleared':
      return empty;
    case 'notSent':
      return stored === undefined ? empty : stored;
  }
}

function mergeTelecom(stored: readonly ContactPoint[] | undefined, incoming: Demographics): ContactPoint[] {
  const whole = fieldState(incoming, 'telecom');
  if (whole !== 'sent') return applyField(whole, incoming.telecom, stored ? [...stored] : undefined, []);
  const parts = TELECOM_PARTS.map((p) => ({ p, state: fieldState(incoming, `telecom.${p}`) }));
  // Both parts sent: the list replaces the whole stored list, in the order the source gave.
  if (parts.every((x) => x.state === 'sent')) return incoming.telecom;
  return parts.flatMap(({ p, state }) =>
    applyField(
      state,
      incoming.telecom.filter((c) => telecomPartOf(c) === p),
      (stored ?? []).filter((c) => telecomPartOf(c) === p),
      [],
    ),
  );
}

/**
 * The demographics a reader holds after applying `incoming` to `stored` (null: nothing stored
 * yet). The result is a full snapshot (notSent and cleared empty), ready to store.
 */
export function mergeDemographics(stored: Demographics | null, incoming: Demographics): Demographics {
  if (isFullSnapshot(incoming)) return incoming;
  const s = stored ?? undefined;
  const f = <K extends Exclude<DemographicsField, 'telecom'>>(
    k: K,
    empty: Demographics[K],
  ): Demographics[K] => applyField(fieldState(incoming, k), incoming[k], s?.[k], empty);
  return {
    identifiers: incoming.identifiers,
    names: f('names', []),
    birthDate: f('birthDate', null),
    administrativeGender: f('administrativeGender', null),
    deceased: f('deceased', null),
    deceasedAt: f('deceasedAt', null),
    addresses: f('addresses', []),
    telecom: mergeTelecom(s?.telecom, incoming),
    maritalStatus: f('maritalStatus', null),
    language: f('language', null),
    race: f('race', []),
    ethnicity: f('ethnicity', []),
    religion: f('religion', null),
    contacts: f('contacts', []),
    primaryCareProvider: f('primaryCareProvider', null),
    notSent: [],
    cleared: [],
  };
}

/** Demographics that say nothing: a full snapshot of empty fields (the start of a record built field by field). */
export const EMPTY_DEMOGRAPHICS: Readonly<Demographics> = {
  identifiers: [],
  names: [],
  birthDate: null,
  administrativeGender: null,
  deceased: null,
  deceasedAt: null,
  addresses: [],
  telecom: [],
  maritalStatus: null,
  language: null,
  notSent: [],
  cleared: [],
  race: [],
  ethnicity: [],
  religion: null,
  contacts: [],
  primaryCareProvider: null,
};
