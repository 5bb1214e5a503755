import type { FhirType } from '../../libs/auth/scopes.js';
import { HubError } from '../../libs/errors/index.js';

/**
 * FHIR search parameters the portal supports, parsed into plain filters.
 * Pure; the SQL is in readers/portal.ts, paging in paging.ts.
 */
export type SearchType = Exclude<FhirType, 'Patient'>;

/** The searchable types: whether they take `code`, and what `date` means for each (CapabilityStatement). */
export const SEARCH_PARAMS: Record<SearchType, { code: boolean; docs: string }> = {
  Encounter: { code: false, docs: 'date = period.start' },
  Observation: { code: true, docs: 'date = effectiveDateTime' },
  DiagnosticReport: { code: true, docs: 'date = effectiveDateTime; released (final/corrected) reports only' },
  ServiceRequest: { code: true, docs: 'date = authoredOn' },
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
  const id = v.startsWith('Patient/') ? v.slice('Patient/'.length) : v;
  if (!/^[A-Za-z0-9\-.:_]{1,128}$/.test(id))
    throw new HubError('HUB_INPUT_INVALID', 'patient must be a patient id');
  return id;
}
