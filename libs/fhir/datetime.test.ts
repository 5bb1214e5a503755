import { describe, expect, it } from 'vitest';
import { parseHl7DateTime } from '../hl7/time.js';
import { renderDateTime, renderInstant } from './datetime.js';

/**
 * Rendering the hub's UTC instants as the sender sent them (FHIR R4 dateTime
 * and instant): the offset it was expressed in, and the precision it had.
 */
const NY = 'America/New_York';
const sent = (value: string, zone = NY) => {
  const t = parseHl7DateTime(value, zone);
  if (t === null || t === 'invalid') throw new Error(`test value ${value} does not parse`);
  return t;
};
/** The HL7 value rendered as a FHIR dateTime / instant, as the portal does. */
const asDateTime = (value: string, zone = NY) => renderDateTime(sent(value, zone).instant, sent(value, zone));
const asInstant = (value: string, zone = NY) => renderInstant(sent(value, zone).instant, sent(value, zone));

describe('renderDateTime: precision', () => {
  it('given a year, a month or a day, when rendered, then a date-precision dateTime without time or zone', () => {
    expect(asDateTime('2026')).toBe('2026');
    expect(asDateTime('202601')).toBe('2026-01');
    expect(asDateTime('20260115')).toBe('2026-01-15');
  });

  it('given a day sent east of UTC (its midnight is the previous UTC day), when rendered, then the sender’s date', () => {
    // 2026-01-15 00:00 in Tokyo is 2026-01-14T15:00Z.
    const t = sent('20260115', 'Asia/Tokyo');
    expect(new Date(t.instant).toISOString()).toBe('2026-01-14T15:00:00.000Z');
    expect(renderDateTime(t.instant, t)).toBe('2026-01-15');
  });

  it('given an hour or a minute, when rendered, then seconds are zero-filled (FHIR requires them) and the offset given', () => {
    expect(asDateTime('2026011508')).toBe('2026-01-15T08:00:00-05:00');
    expect(asDateTime('202601150830')).toBe('2026-01-15T08:30:00-05:00');
  });

  it('given seconds, when rendered, then no fraction; given a fraction, then milliseconds, even .000', () => {
    expect(asDateTime('20260115083015')).toBe('2026-01-15T08:30:15-05:00');
    expect(asDateTime('20260115083015.1234')).toBe('2026-01-15T08:30:15.123-05:00');
    expect(asDateTime('20260115083015.0')).toBe('2026-01-15T08:30:15.000-05:00');
  });
});

describe('renderDateTime: offsets', () => {
  it('given an explicit offset in the message, when rendered, then that offset, whatever the zone', () => {
    expect(asDateTime('202601150800+0530')).toBe('2026-01-15T08:00:00+05:30');
    expect(asDateTime('202601150800+0000')).toBe('2026-01-15T08:00:00+00:00');
  });

  it('given summer and winter times of one zone, when rendered, then each in the offset in force then', () => {
    expect(asDateTime('202607150800')).toBe('2026-07-15T08:00:00-04:00');
    expect(asDateTime('202601150800')).toBe('2026-01-15T08:00:00-05:00');
  });

  it('given the autumn overlap (01:30 twice), when rendered, then 01:30 in the earlier (summer) offset', () => {
    const t = sent('202611010130');
    expect(new Date(t.instant).toISOString()).toBe('2026-11-01T05:30:00.000Z');
    expect(renderDateTime(t.instant, t)).toBe('2026-11-01T01:30:00-04:00');
  });

  it('given the spring gap (02:30 does not exist), when rendered, then the wall time that exists at that instant, 03:30-04:00', () => {
    const t = sent('202603080230');
    expect(new Date(t.instant).toISOString()).toBe('2026-03-08T07:30:00.000Z');
    // The offset recorded is the one in force at the instant (libs/hl7/time.ts), so no rendering names a nonexistent local time.
    expect(renderDateTime(t.instant, t)).toBe('2026-03-08T03:30:00-04:00');
    expect(Date.parse(renderDateTime(t.instant, t))).toBe(t.instant);
  });

  it('given any rendering to the second or finer, when parsed back, then the same instant', () => {
    for (const v of ['202601150800', '20260715235959.5', '202611010130', '202601150800-0930']) {
      const t = sent(v);
      expect(Date.parse(renderDateTime(t.instant, t))).toBe(t.instant);
    }
  });

  it('given no source time (events recorded before sourceTimes), when rendered, then UTC as stored before', () => {
    const ms = Date.UTC(2026, 0, 15, 13, 0);
    expect(renderDateTime(ms, null)).toBe('2026-01-15T13:00:00.000Z');
    expect(renderDateTime(ms, undefined)).toBe('2026-01-15T13:00:00.000Z');
    expect(renderInstant(ms, undefined)).toBe('2026-01-15T13:00:00.000Z');
  });
});

describe('renderInstant (FHIR instant, e.g. DiagnosticReport.issued)', () => {
  it('given a value sent to the day or the minute, when rendered, then still a full time with offset', () => {
    expect(asInstant('20260115')).toBe('2026-01-15T00:00:00-05:00');
    expect(asInstant('202601150830')).toBe('2026-01-15T08:30:00-05:00');
  });

  it('given milliseconds, when rendered, then kept', () => {
    expect(asInstant('20260115083015.25')).toBe('2026-01-15T08:30:15.250-05:00');
  });
});
