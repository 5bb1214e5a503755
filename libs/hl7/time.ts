/**
 * HL7 v2 date/time (TS/DTM): YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ].
 *
 * Timezone rule: a value with an offset is converted to UTC with it; a value
 * without one is taken as UTC. HL7 says "local time of the sender", but the
 * hub cannot know the sender's zone and a silent host-zone guess would make
 * the same message map differently on different machines. Senders whose
 * clocks are not UTC should send offsets (or the adapter's deployment can
 * normalise upstream); this is documented in mapping.md.
 */

const TS =
  /^(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,4}))?)?)?)?)?)?(?:([+-])(\d{2})(\d{2}))?$/;

export type ParsedTime = number | null | 'invalid';

/** UTC epoch ms; null when empty; 'invalid' when malformed or out of range. */
export function parseHl7Timestamp(value: string): ParsedTime {
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
  const frac = m[7] === undefined ? 0 : Math.round(Number(`0.${m[7]}`) * 1000);
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return 'invalid';
  if (day > daysInMonth(year, month)) return 'invalid';
  let offsetMin = 0;
  if (m[8] !== undefined) {
    const oh = Number(m[9]);
    const om = Number(m[10]);
    if (oh > 14 || om > 59) return 'invalid';
    offsetMin = (m[8] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const utc = Date.UTC(year, month - 1, day, hour, minute, second, frac) - offsetMin * 60_000;
  return Number.isFinite(utc) ? utc : 'invalid';
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/**
 * A birth date as an ISO 8601 partial date (YYYY, YYYY-MM, YYYY-MM-DD); a
 * time part is ignored (a birth date is not an instant). `{date: null}` when
 * empty, 'invalid' when malformed.
 */
export function parseHl7Date(value: string): { date: string | null } | 'invalid' {
  const v = value.trim();
  if (v === '') return { date: null };
  const m = /^(\d{4})(?:(\d{2})(?:(\d{2}))?)?/.exec(v);
  if (!m || parseHl7Timestamp(v) === 'invalid') return 'invalid';
  const [, y, mo, d] = m;
  if (y === undefined) return 'invalid';
  if (mo === undefined) return { date: y };
  if (d === undefined) return { date: `${y}-${mo}` };
  return { date: `${y}-${mo}-${d}` };
}
