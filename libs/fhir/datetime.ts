/**
 * FHIR dateTime/instant rendering of the hub's instants (UTC epoch ms) as the
 * source expressed them (EventMeta.sourceTimes): in the sender's offset and
 * to the precision it sent, e.g. an admission at 08:00 in New York as
 * 2026-01-15T08:00:00-05:00 rather than 13:00Z, a specimen collected "on
 * 2026-01-15" as 2026-01-15 rather than a midnight. The instant denoted is
 * the same; only the rendering differs. The one place for this rule.
 *
 * FHIR R4 (datatypes): a `dateTime` is YYYY, YYYY-MM, YYYY-MM-DD or a time
 * with seconds (zero-filled when not sent: hours and minutes alone are not
 * allowed) and a zone; an `instant` is always full, to the second at least.
 */

/** How an instant was sent: the precision (SourceTime.precision) and the UTC offset it was expressed in. */
export interface SentAs {
  precision: string;
  offsetMinutes: number;
}

/** `±hh:mm` for minutes east of UTC (0 as +00:00: the sender named that offset). */
function offsetText(offsetMinutes: number): string {
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  return `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

/** The wall-clock time at that offset, `YYYY-MM-DDThh:mm:ss.sss` (no zone). */
function wallClock(instant: number, offsetMinutes: number): string {
  return new Date(instant + offsetMinutes * 60_000).toISOString().slice(0, -1);
}

/** As stored before offsets were kept: UTC, as Date.toISOString writes it. */
const utc = (instant: number): string => new Date(instant).toISOString();

/**
 * An `instant` element (e.g. DiagnosticReport.issued) in the offset it was
 * sent in: always to the second, milliseconds when they were sent. Without
 * `sent` (events recorded before sourceTimes existed, or a field the source
 * gave no time for): UTC as before.
 */
export function renderInstant(instant: number, sent: SentAs | null | undefined): string {
  if (!sent) return utc(instant);
  const wall = wallClock(instant, sent.offsetMinutes);
  return `${sent.precision === 'millisecond' ? wall : wall.slice(0, 19)}${offsetText(sent.offsetMinutes)}`;
}

/**
 * A `dateTime` element (e.g. Encounter.period.start, Observation.effectiveDateTime)
 * as sent: a year, month or day is the sender's calendar date at its offset
 * (2026-01-15, no time and no zone, as FHIR writes a date-precision dateTime);
 * anything finer is rendered as {@link renderInstant}.
 */
export function renderDateTime(instant: number, sent: SentAs | null | undefined): string {
  if (!sent) return utc(instant);
  const wall = wallClock(instant, sent.offsetMinutes);
  switch (sent.precision) {
    case 'year':
      return wall.slice(0, 4);
    case 'month':
      return wall.slice(0, 7);
    case 'day':
      return wall.slice(0, 10);
    default:
      return renderInstant(instant, sent);
  }
}

/**
 * An instant as ISO 8601 in the offset it was sent in, e.g.
 * 2026-01-15T08:00:00-05:00; UTC ('Z') when the offset is unknown.
 * Milliseconds are shown only when set. Kept for rows that recorded an
 * offset without a precision (portal encounters projected before precision
 * was kept, see services/projector-portal migration 0111).
 */
export function fhirDateTime(instant: number, offsetMinutes: number | null | undefined): string {
  if (offsetMinutes === null || offsetMinutes === undefined) return utc(instant).replace('.000Z', 'Z');
  const precision = instant % 1000 === 0 ? 'second' : 'millisecond';
  return renderInstant(instant, { precision, offsetMinutes });
}
