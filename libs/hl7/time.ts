import { IANAZone } from 'luxon';
import { HubError } from '../errors/index.js';

/**
 * HL7 v2 date/time (TS/DTM): YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ].
 * Every DTM/TS the hub reads goes through {@link parseHl7DateTime}.
 *
 * Zone rule (HL7 v2 chapter 2, DTM): a value with an explicit offset means
 * exactly that offset; a value without one is in the sender's local time, so
 * it is resolved in the sender's IANA zone (site configuration:
 * `defaultTimeZone`, or the zone of the sender matched by MSH-3/MSH-4). The
 * zone is an argument, never the host's zone, so the same message maps to the
 * same instants on every machine.
 *
 * Daylight-saving rule (RFC 5545 section 3.3.5 and Temporal's
 * `disambiguation: 'compatible'`):
 * - a local time that occurs twice (autumn overlap, e.g. 01:30 on
 *   2026-11-01 in America/New_York) is the EARLIER instant, the one still on
 *   the summer offset (05:30Z, -04:00);
 * - a local time that does not exist (spring gap, e.g. 02:30 on 2026-03-08
 *   in America/New_York) is moved forward by the length of the gap, i.e. read
 *   with the offset in force before the gap (02:30-05:00 = 07:30Z, which is
 *   03:30-04:00).
 * The zone arithmetic (the tz database offset in force at an instant) is
 * luxon's; only the choice between the candidate offsets is made here, because
 * luxon's own choice for an overlap depends on the current date.
 *
 * Partial precision: a value stands for the start of the period it names
 * (2026 = 2026-01-01T00:00 local); the precision is returned so that readers
 * do not mistake "sometime on that day" for midnight. Fractional seconds
 * beyond milliseconds (the 4th digit) are truncated, not rounded, so a value
 * never moves into the next second.
 */

export type TimePrecision = 'year' | 'month' | 'day' | 'hour' | 'minute' | 'second' | 'millisecond';

export interface Hl7Time {
  /** UTC epoch milliseconds. */
  instant: number;
  precision: TimePrecision;
  /** The UTC offset the value was expressed in, in minutes east of UTC (New York in winter: -300). */
  offsetMinutes: number;
  /** True when the offset came from the sender's zone, false when the value carried it. */
  zoned: boolean;
}

/** A parsed time, null when the field is empty, 'invalid' when malformed or out of range. */
export type ParsedTime = Hl7Time | null | 'invalid';

const TS =
  /^(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,4}))?)?)?)?)?)?(?:([+-])(\d{2})(\d{2}))?$/;

const PRECISION_BY_GROUP: TimePrecision[] = [
  'year',
  'month',
  'day',
  'hour',
  'minute',
  'second',
  'millisecond',
];

const zones = new Map<string, IANAZone>();

/** The luxon zone for an IANA name; HUB_CONFIG_INVALID when the name is not a tz database zone. */
function zoneFor(timeZone: string): IANAZone {
  let zone = zones.get(timeZone);
  if (!zone) {
    zone = IANAZone.create(timeZone);
    if (!zone.isValid) {
      throw new HubError('HUB_CONFIG_INVALID', `time zone ${JSON.stringify(timeZone)} is not an IANA zone`);
    }
    zones.set(timeZone, zone);
  }
  return zone;
}

/** Whether `timeZone` is an IANA tz database zone name this runtime knows (e.g. America/New_York, UTC). */
export function isValidTimeZone(timeZone: string): boolean {
  return IANAZone.isValidZone(timeZone);
}

/**
 * One HL7 DTM/TS value → instant, precision and the offset it was expressed
 * in. `timeZone` is the sender's IANA zone, used only when the value has no
 * offset of its own. Throws HUB_CONFIG_INVALID when `timeZone` is not a zone.
 */
export function parseHl7DateTime(value: string, timeZone: string): ParsedTime {
  const v = value.trim();
  if (v === '') return null;
  const m = TS.exec(v);
  if (!m) return 'invalid';
  const num = (s: string | undefined, dflt: number) => (s === undefined ? dflt : Number(s));
  const year = num(m[1], 0);
  const month = num(m[2], 1);
  const day = num(m[3], 1);
  const hour = num(m[4], 0);
  const minute = num(m[5], 0);
  const second = num(m[6], 0);
  const millisecond = m[7] === undefined ? 0 : Number(m[7].padEnd(3, '0').slice(0, 3));
  // HL7 hours are 00-23 (no 24:00 end-of-day) and seconds 00-59 (no leap second).
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return 'invalid';
  if (day > daysInMonth(year, month)) return 'invalid';
  let last = 0;
  for (let g = 1; g <= 7; g++) if (m[g] !== undefined) last = g - 1;
  const precision = PRECISION_BY_GROUP[last] ?? 'year';
  const wallAsUtc = Date.UTC(year, month - 1, day, hour, minute, second, millisecond);
  // Date.UTC maps years 0-99 to 1900-1999; an HL7 year is always 4 digits as written.
  const wall = year < 100 ? new Date(wallAsUtc).setUTCFullYear(year) : wallAsUtc;

  if (m[8] !== undefined) {
    const oh = Number(m[9]);
    const om = Number(m[10]);
    if (oh > 14 || om > 59) return 'invalid';
    const offsetMinutes = (m[8] === '-' ? -1 : 1) * (oh * 60 + om);
    return { instant: wall - offsetMinutes * 60_000, precision, offsetMinutes, zoned: false };
  }

  if (timeZone === 'UTC' || timeZone === 'Etc/UTC') {
    return { instant: wall, precision, offsetMinutes: 0, zoned: true };
  }
  const { instant, offsetMinutes } = resolveLocal(wall, zoneFor(timeZone));
  // Local mean time before a zone's standard time (e.g. New York before 1883) has an offset in
  // seconds: the instant stays exact to the millisecond, the recorded offset is whole minutes.
  return { instant: Math.round(instant), precision, offsetMinutes: Math.round(offsetMinutes), zoned: true };
}

const DAY_MS = 86_400_000;

/**
 * The instant of a local wall time (given as if it were UTC ms) in `zone`, by the rule above.
 * The candidates are the offsets in force a day before and a day after (tz transitions are
 * further apart than that); each is kept if the zone really has that offset at the instant it
 * gives. Two kept: an overlap, the earlier instant wins. None kept: a gap, the offset before it
 * applies (the wall time moves forward by the gap) and the offset after it is reported.
 */
function resolveLocal(wall: number, zone: IANAZone): { instant: number; offsetMinutes: number } {
  const before = zone.offset(wall - DAY_MS);
  const after = zone.offset(wall + DAY_MS);
  const tBefore = wall - before * 60_000;
  if (before === after) {
    const o = zone.offset(tBefore);
    if (o === before) return { instant: tBefore, offsetMinutes: before };
    // Two transitions within two days (very rare): read with the offset actually in force.
    return { instant: wall - o * 60_000, offsetMinutes: o };
  }
  const tAfter = wall - after * 60_000;
  const beforeHolds = zone.offset(tBefore) === before;
  const afterHolds = zone.offset(tAfter) === after;
  if (beforeHolds && afterHolds) {
    return tBefore <= tAfter
      ? { instant: tBefore, offsetMinutes: before }
      : { instant: tAfter, offsetMinutes: after };
  }
  if (beforeHolds) return { instant: tBefore, offsetMinutes: before };
  if (afterHolds) return { instant: tAfter, offsetMinutes: after };
  return { instant: tBefore, offsetMinutes: zone.offset(tBefore) };
}

function daysInMonth(year: number, month: number): number {
  const d = new Date(Date.UTC(2000, month, 0));
  d.setUTCFullYear(year, month, 0);
  return d.getUTCDate();
}

/**
 * A birth date as an ISO 8601 partial date (YYYY, YYYY-MM, YYYY-MM-DD); a
 * time part is ignored (a birth date is a calendar date where the patient was
 * born, not an instant, so it is never moved between zones). `{date: null}`
 * when empty, 'invalid' when malformed.
 */
export function parseHl7Date(value: string): { date: string | null } | 'invalid' {
  const v = value.trim();
  if (v === '') return { date: null };
  const m = /^(\d{4})(?:(\d{2})(?:(\d{2}))?)?/.exec(v);
  // The zone does not matter for validity; UTC keeps the check free of DST gaps.
  if (!m || parseHl7DateTime(v, 'UTC') === 'invalid') return 'invalid';
  const [, y, mo, d] = m;
  if (y === undefined) return 'invalid';
  if (mo === undefined) return { date: y };
  if (d === undefined) return { date: `${y}-${mo}` };
  return { date: `${y}-${mo}-${d}` };
}
