/**
 * FHIR dateTime/instant rendering of the hub's instants (UTC epoch ms) in
 * the offset the source expressed them in (EventMeta.sourceTimes), so that a
 * reader sees the sender's local time with its offset, e.g. an admission at
 * 08:00 in New York as 2026-01-15T08:00:00-05:00 rather than 13:00Z. Both
 * denote the same instant; only the rendering differs.
 */

/**
 * An instant as ISO 8601 in the offset it was sent in, e.g.
 * 2026-01-15T08:00:00-05:00; UTC ('Z') when the offset is unknown (events
 * recorded before offsets were kept). Milliseconds are shown only when set.
 */
export function fhirDateTime(instant: number, offsetMinutes: number | null | undefined): string {
  if (offsetMinutes === null || offsetMinutes === undefined) {
    return new Date(instant).toISOString().replace('.000Z', 'Z');
  }
  const shifted = new Date(instant + offsetMinutes * 60_000).toISOString();
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  const hh = String(Math.floor(abs / 60)).padStart(2, '0');
  const mm = String(abs % 60).padStart(2, '0');
  return `${shifted.slice(0, -1).replace(/\.000$/, '')}${sign}${hh}:${mm}`;
}
