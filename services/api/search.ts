import type { FhirType } from '../../libs/auth/scopes.js';
import { HubError } from '../../libs/errors/index.js';

/**
 * FHIR search parameters the portal supports, parsed into plain filters.
 * Pure; the SQL is in readers/portal.ts, paging in paging.ts.
 */
export type SearchType = Exclude<FhirType, 'Patient'>;

/**
 * The search parameters each type takes beyond `patient` (CapabilityStatement, route schemas,
 * readers/portal.ts): their FHIR R4 names, and what each is about.
 */
/** The parameters that name the patient under another name (FHIR R4 search parameters of the type). */
export const PATIENT_ALIASES = ['subject', 'beneficiary'] as const;
export type PatientAlias = (typeof PATIENT_ALIASES)[number];

export interface SearchSpec {
  /** `code`: a token on the resource's code. */
  code: boolean;
  /** The date parameter (`date` or `recorded-date`) and the element it is about; null: none. */
  date: { name: 'date' | 'recorded-date'; docs: string } | null;
  /** The status parameter: `status` (a code element) or `clinical-status` (a CodeableConcept). */
  status: 'status' | 'clinical-status' | null;
  /** `encounter`: the visit the resource references (Encounter/id or id). */
  encounter: boolean;
  /** `category`: a token on category (CodeableConcepts, or AllergyIntolerance's codes). */
  category: boolean;
  /** Other names of `patient` for this type: `subject` (a Patient subject), Coverage `beneficiary`. */
  patientAliases: readonly PatientAlias[];
}

const spec = (s: Partial<SearchSpec>): SearchSpec => ({
  code: true,
  date: null,
  status: 'status',
  encounter: false,
  category: false,
  patientAliases: ['subject'],
  ...s,
});

export const SEARCH_PARAMS: Record<SearchType, SearchSpec> = {
  Encounter: spec({ code: false, date: { name: 'date', docs: 'date = period.start' } }),
  Observation: spec({ date: { name: 'date', docs: 'date = effectiveDateTime' }, encounter: true }),
  DiagnosticReport: spec({
    date: { name: 'date', docs: 'date = effectiveDateTime; released (final/corrected) reports only' },
    encounter: true,
    category: true,
  }),
  ServiceRequest: spec({ date: { name: 'date', docs: 'date = authoredOn' }, encounter: true }),
  AllergyIntolerance: spec({
    date: { name: 'date', docs: 'date = recordedDate (AL1-6)' },
    status: 'clinical-status',
    category: true,
    patientAliases: [],
  }),
  Condition: spec({
    date: { name: 'recorded-date', docs: 'recorded-date = recordedDate (DG1-5)' },
    status: 'clinical-status',
    encounter: true,
    category: true,
  }),
  Coverage: spec({ code: false, patientAliases: ['beneficiary'] }),
};

export const SEARCH_TYPES = Object.keys(SEARCH_PARAMS) as SearchType[];

/** A half-open instant range [from, to) as ISO strings; either end open. */
export interface DateRange {
  from: string | null;
  to: string | null;
}

const PREFIXES = ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap'] as const;

/** The instant range a FHIR date value (YYYY, YYYY-MM, YYYY-MM-DD or a dateTime) covers. */
export function dateValueRange(v: string): { start: Date; end: Date } {
  const m =
    /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/.exec(
      v,
    );
  if (!m)
    throw new HubError('HUB_INPUT_INVALID', 'date must be YYYY, YYYY-MM, YYYY-MM-DD or an ISO dateTime');
  const [, y, mo, d, hh, mm] = m;
  if (hh !== undefined) {
    const t = new Date(v.length === 16 ? `${v}:00Z` : /Z|[+-]\d{2}:\d{2}$/.test(v) ? v : `${v}Z`);
    if (Number.isNaN(t.getTime())) throw new HubError('HUB_INPUT_INVALID', 'invalid date');
    // A dateTime to the minute or second covers that minute or second.
    const width = m[6] === undefined ? 60_000 : 1000;
    void mm;
    return { start: t, end: new Date(t.getTime() + width) };
  }
  const year = Number(y);
  if (mo === undefined)
    return { start: new Date(Date.UTC(year, 0, 1)), end: new Date(Date.UTC(year + 1, 0, 1)) };
  const month = Number(mo) - 1;
  if (month < 0 || month > 11) throw new HubError('HUB_INPUT_INVALID', 'invalid month in date');
  if (d === undefined) {
    return { start: new Date(Date.UTC(year, month, 1)), end: new Date(Date.UTC(year, month + 1, 1)) };
  }
  const day = Number(d);
  const start = new Date(Date.UTC(year, month, day));
  if (start.getUTCMonth() !== month || day < 1)
    throw new HubError('HUB_INPUT_INVALID', 'invalid day in date');
  return { start, end: new Date(Date.UTC(year, month, day + 1)) };
}

/**
 * Intersects every `date` parameter (FHIR ANDs repeated parameters) into one
 * range. Supported prefixes: eq (default), gt, ge, lt, le, sa, eb.
 */
export function parseDateParams(values: readonly string[]): DateRange {
  let from: Date | null = null;
  let to: Date | null = null;
  const lower = (d: Date) => {
    if (!from || d > from) from = d;
  };
  const upper = (d: Date) => {
    if (!to || d < to) to = d;
  };
  for (const raw of values) {
    const p = PREFIXES.find((x) => raw.startsWith(x));
    const value = p ? raw.slice(2) : raw;
    const { start, end } = dateValueRange(value);
    switch (p ?? 'eq') {
      case 'eq':
        lower(start);
        upper(end);
        break;
      case 'gt':
      case 'sa':
        lower(end);
        break;
      case 'ge':
        lower(start);
        break;
      case 'lt':
      case 'eb':
        upper(start);
        break;
      case 'le':
        upper(end);
        break;
      case 'ne':
      case 'ap':
        throw new HubError('HUB_INPUT_INVALID', `date prefix ${p ?? ''} is not supported`);
    }
  }
  const f = from as Date | null;
  const t = to as Date | null;
  return { from: f ? f.toISOString() : null, to: t ? t.toISOString() : null };
}

/** A token parameter: `code`, `system|code` or `system|` (any code of a system). */
export interface TokenFilter {
  system: string | null;
  code: string | null;
}

/** Comma-separated values are ORed (FHIR); returns one filter per alternative. */
export function parseTokenParam(v: string): TokenFilter[] {
  return v
    .split(',')
    .filter((x) => x.length > 0)
    .map((x) => {
      const bar = x.indexOf('|');
      if (bar < 0) return { system: null, code: x };
      const system = x.slice(0, bar);
      const code = x.slice(bar + 1);
      return { system: system || null, code: code || null };
    });
}

/** A patient reference as given in `patient=`: `123` or `Patient/123`. */
export function parsePatientRef(v: string): string {
  return parseRef('Patient', v);
}

/** A reference parameter (`patient`, `encounter`): `id` or `Type/id`; the id alone. */
export function parseRef(type: 'Patient' | 'Encounter', v: string): string {
  const id = v.startsWith(`${type}/`) ? v.slice(type.length + 1) : v;
  if (!/^[A-Za-z0-9\-.:_]{1,128}$/.test(id))
    throw new HubError(
      'HUB_INPUT_INVALID',
      `${type.toLowerCase()} must be ${type === 'Patient' ? 'a patient' : 'an encounter'} id`,
    );
  return id;
}
