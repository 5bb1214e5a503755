import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fhirDateTime as formatInstantWithOffset } from '../fhir/datetime.js';
import { parseHl7Date, parseHl7DateTime, type Hl7Time } from './time.js';

const NY = 'America/New_York';
const BERLIN = 'Europe/Berlin';
const utc = (iso: string) => Date.parse(iso);

function parsed(value: string, zone: string): Hl7Time {
  const t = parseHl7DateTime(value, zone);
  if (t === null || t === 'invalid') throw new Error(`expected a time for ${value}`);
  return t;
}

describe('parseHl7DateTime: zone of the sender', () => {
  it('given no offset and a sender in New York in January, when parsed, then it is local time (UTC-5)', () => {
    expect(parseHl7DateTime('202601150800', NY)).toEqual({
      instant: Date.UTC(2026, 0, 15, 13, 0),
      precision: 'minute',
      offsetMinutes: -300,
      zoned: true,
    });
  });

  it('given no offset and a sender in New York in July, when parsed, then daylight time (UTC-4) applies', () => {
    expect(parsed('20260715080000', NY)).toMatchObject({
      instant: utc('2026-07-15T12:00:00Z'),
      offsetMinutes: -240,
    });
  });

  it('given an explicit offset, when parsed, then the offset wins over the zone and is kept', () => {
    expect(parseHl7DateTime('20240301101500+0100', NY)).toEqual({
      instant: utc('2024-03-01T09:15:00Z'),
      precision: 'second',
      offsetMinutes: 60,
      zoned: false,
    });
    expect(parsed('20240301101500.123-0500', BERLIN)).toMatchObject({
      instant: utc('2024-03-01T15:15:00.123Z'),
      precision: 'millisecond',
      offsetMinutes: -300,
      zoned: false,
    });
    expect(parsed('20240301101500+0000', NY)).toMatchObject({ offsetMinutes: 0, zoned: false });
    expect(parsed('202403011015+0530', 'UTC')).toMatchObject({
      instant: utc('2024-03-01T04:45:00Z'),
      offsetMinutes: 330,
    });
  });

  it('given the zone UTC, when parsed, then wall time is UTC', () => {
    expect(parsed('20240301101500', 'UTC')).toMatchObject({
      instant: utc('2024-03-01T10:15:00Z'),
      offsetMinutes: 0,
      zoned: true,
    });
  });

  it('given a zone that is not an IANA zone, when parsed, then a configuration error', () => {
    expect(() => parseHl7DateTime('20240301', 'Mars/Olympus')).toThrow(
      expect.objectContaining({ code: 'HUB_CONFIG_INVALID' }),
    );
  });
});

describe('parseHl7DateTime: partial precision', () => {
  it.each([
    ['2026', 'year', '2026-01-01T05:00:00Z'],
    ['202602', 'month', '2026-02-01T05:00:00Z'],
    ['20260215', 'day', '2026-02-15T05:00:00Z'],
    ['2026021507', 'hour', '2026-02-15T12:00:00Z'],
    ['202602150730', 'minute', '2026-02-15T12:30:00Z'],
    ['20260215073015', 'second', '2026-02-15T12:30:15Z'],
    ['20260215073015.1', 'millisecond', '2026-02-15T12:30:15.100Z'],
    ['20260215073015.12', 'millisecond', '2026-02-15T12:30:15.120Z'],
    ['20260215073015.123', 'millisecond', '2026-02-15T12:30:15.123Z'],
    ['20260215073015.1239', 'millisecond', '2026-02-15T12:30:15.123Z'],
  ])('given %s from New York, when parsed, then precision %s at the start of the period', (v, p, iso) => {
    expect(parsed(v, NY)).toMatchObject({ precision: p, instant: utc(iso), offsetMinutes: -300 });
  });

  it('given a partial value with an offset, when parsed, then the offset applies at that precision', () => {
    expect(parsed('2026-0300', NY)).toMatchObject({
      precision: 'year',
      instant: utc('2026-01-01T03:00:00Z'),
      zoned: false,
    });
  });

  it('given surrounding spaces, when parsed, then they are ignored', () => {
    expect(parsed(' 202601150800 ', NY).instant).toBe(Date.UTC(2026, 0, 15, 13, 0));
  });
});

describe('parseHl7DateTime: daylight-saving transitions', () => {
  it('given 02:30 on the New York spring-forward day (a skipped hour), when parsed, then moved forward by the gap', () => {
    // 02:00 EST jumps to 03:00 EDT at 07:00Z; 02:30 does not exist and reads as 02:30-05:00 = 03:30-04:00.
    expect(parsed('202603080230', NY)).toMatchObject({
      instant: utc('2026-03-08T07:30:00Z'),
      offsetMinutes: -240,
      zoned: true,
    });
    // Either side of the gap is unaffected.
    expect(parsed('202603080159', NY)).toMatchObject({
      instant: utc('2026-03-08T06:59:00Z'),
      offsetMinutes: -300,
    });
    expect(parsed('202603080300', NY)).toMatchObject({
      instant: utc('2026-03-08T07:00:00Z'),
      offsetMinutes: -240,
    });
  });

  it('given 01:30 on the New York fall-back day (an hour that occurs twice), when parsed, then the earlier occurrence', () => {
    // 01:30 EDT (05:30Z) and 01:30 EST (06:30Z) both exist; the first one is taken.
    expect(parsed('202611010130', NY)).toMatchObject({
      instant: utc('2026-11-01T05:30:00Z'),
      offsetMinutes: -240,
      zoned: true,
    });
    expect(parsed('202611010059', NY)).toMatchObject({ instant: utc('2026-11-01T04:59:00Z') });
    expect(parsed('202611010200', NY)).toMatchObject({
      instant: utc('2026-11-01T07:00:00Z'),
      offsetMinutes: -300,
    });
  });

  it('given the ambiguous hour with an explicit offset, when parsed, then the offset picks the occurrence', () => {
    expect(parsed('202611010130-0500', NY).instant).toBe(utc('2026-11-01T06:30:00Z'));
    expect(parsed('202611010130-0400', NY).instant).toBe(utc('2026-11-01T05:30:00Z'));
  });

  it('given 02:30 on the Berlin spring-forward day, when parsed, then moved forward to 03:30 CEST', () => {
    // 2026-03-29: 02:00 CET jumps to 03:00 CEST at 01:00Z.
    expect(parsed('202603290230', BERLIN)).toMatchObject({
      instant: utc('2026-03-29T01:30:00Z'),
      offsetMinutes: 120,
    });
  });

  it('given 02:30 on the Berlin fall-back day, when parsed, then the earlier (CEST) occurrence', () => {
    // 2026-10-25: 03:00 CEST falls back to 02:00 CET at 01:00Z; 02:30 is 00:30Z (CEST) or 01:30Z (CET).
    expect(parsed('202610250230', BERLIN)).toMatchObject({
      instant: utc('2026-10-25T00:30:00Z'),
      offsetMinutes: 120,
    });
  });

  it('given the same overlap, when parsed at any time of year, then the answer does not depend on today', () => {
    // luxon alone picks the overlap's offset from the current date; the rule must not.
    const a = parsed('202611010130', NY);
    const b = parsed('202611010130', NY);
    expect(a).toEqual(b);
  });
});

describe('parseHl7DateTime: invalid and empty values', () => {
  it('given an empty value, when parsed, then null', () => {
    expect(parseHl7DateTime('', NY)).toBeNull();
    expect(parseHl7DateTime('   ', NY)).toBeNull();
  });

  it.each([
    ['2024-03-01', 'ISO, not HL7'],
    ['20241301', 'month 13'],
    ['20240230', 'Feb 30'],
    ['20230229', 'Feb 29 in a common year'],
    ['20240431', 'April 31'],
    ['2024030124', 'hour 24'],
    ['202403012400', 'hour 24:00'],
    ['202403011060', 'minute 60'],
    ['20240301105960', 'second 60 (no leap seconds)'],
    ['20240301105959.12345', 'five fraction digits'],
    ['20240301+01', 'short offset'],
    ['20240301+1500', 'offset beyond +14'],
    ['20240301+0160', 'offset minutes 60'],
    ['202', 'three digits'],
    ['2024030', 'odd length'],
    ['abc', 'text'],
  ])('given %s (%s), when parsed, then invalid', (v) => {
    expect(parseHl7DateTime(v, NY)).toBe('invalid');
  });

  it('given Feb 29 in a leap year, when parsed, then valid', () => {
    expect(parsed('20240229', NY).instant).toBe(utc('2024-02-29T05:00:00Z'));
  });
});

describe('parseHl7DateTime: properties', () => {
  const wall = fc.record({
    year: fc.integer({ min: 1900, max: 2100 }),
    month: fc.integer({ min: 1, max: 12 }),
    day: fc.integer({ min: 1, max: 28 }),
    hour: fc.integer({ min: 0, max: 23 }),
    minute: fc.integer({ min: 0, max: 59 }),
    second: fc.integer({ min: 0, max: 59 }),
    ms: fc.integer({ min: 0, max: 999 }),
  });
  const p = (n: number, w: number) => String(n).padStart(w, '0');
  type Wall = Record<'year' | 'month' | 'day' | 'hour' | 'minute' | 'second' | 'ms', number>;
  const hl7 = (w: Wall) =>
    `${p(w.year, 4)}${p(w.month, 2)}${p(w.day, 2)}${p(w.hour, 2)}${p(w.minute, 2)}${p(w.second, 2)}.${p(w.ms, 3)}`;
  const offset = fc.integer({ min: -12 * 60, max: 14 * 60 });
  const zone = fc.constantFrom(NY, BERLIN, 'UTC', 'Asia/Kolkata', 'Australia/Lord_Howe', 'America/St_Johns');

  it('given any wall time and explicit offset, when parsed and formatted in that offset, then the same wall time and offset come back', () => {
    fc.assert(
      fc.property(wall, offset, zone, (w, off, z) => {
        const sign = off < 0 ? '-' : '+';
        const text = `${hl7(w)}${sign}${p(Math.floor(Math.abs(off) / 60), 2)}${p(Math.abs(off) % 60, 2)}`;
        const t = parsed(text, z);
        expect(t.offsetMinutes).toBe(off);
        expect(formatInstantWithOffset(t.instant, t.offsetMinutes)).toBe(
          `${p(w.year, 4)}-${p(w.month, 2)}-${p(w.day, 2)}T${p(w.hour, 2)}:${p(w.minute, 2)}:${p(w.second, 2)}${w.ms === 0 ? '' : `.${p(w.ms, 3)}`}${sign}${p(Math.floor(Math.abs(off) / 60), 2)}:${p(Math.abs(off) % 60, 2)}`,
        );
      }),
    );
  });

  it('given any zone and an instant, when its local wall time is parsed in that zone, then the instant comes back unless it is the later occurrence of an overlap', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: Date.UTC(1970, 0, 1), max: Date.UTC(2100, 0, 1) }),
        zone,
        (instant, z) => {
          const local = new Intl.DateTimeFormat('en-CA', {
            timeZone: z,
            hourCycle: 'h23',
            year: 'numeric',
            month: '2-digit',
            day: '2-digit',
            hour: '2-digit',
            minute: '2-digit',
            second: '2-digit',
            fractionalSecondDigits: 3,
          }).formatToParts(new Date(instant));
          const get = (type: string) => local.find((x) => x.type === type)?.value ?? '';
          const text = `${get('year')}${get('month')}${get('day')}${get('hour')}${get('minute')}${get('second')}.${get('fractionalSecond')}`;
          const t = parsed(text, z);
          // Same instant, or (an overlap) the earlier of the two: never later, at most the overlap's length earlier.
          expect(t.instant).toBeLessThanOrEqual(instant);
          expect(instant - t.instant).toBeLessThanOrEqual(60 * 60_000);
          // And the recorded offset renders the same wall time that was sent.
          expect(formatInstantWithOffset(t.instant, t.offsetMinutes).slice(0, 19)).toBe(
            `${get('year')}-${get('month')}-${get('day')}T${get('hour')}:${get('minute')}:${get('second')}`,
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it('given any string, when parsed, then a time, null or invalid, never an exception', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 30 }), (s) => {
        const t = parseHl7DateTime(s, NY);
        expect(t === null || t === 'invalid' || Number.isFinite(t.instant)).toBe(true);
      }),
    );
  });
});

describe('parseHl7Date (birth dates stay dates)', () => {
  it('given birth dates of any precision, when parsed, then a partial ISO date without time', () => {
    expect(parseHl7Date('19800215')).toEqual({ date: '1980-02-15' });
    expect(parseHl7Date('198002')).toEqual({ date: '1980-02' });
    expect(parseHl7Date('1980')).toEqual({ date: '1980' });
    expect(parseHl7Date('198002151230')).toEqual({ date: '1980-02-15' });
  });

  it('given a birth time late in the day with an offset, when parsed, then the calendar date as sent, not moved to UTC', () => {
    expect(parseHl7Date('198002152330-0500')).toEqual({ date: '1980-02-15' });
  });

  it('given malformed dates, when parsed, then invalid; empty is no date', () => {
    expect(parseHl7Date('19801345')).toBe('invalid');
    expect(parseHl7Date('19810229')).toBe('invalid');
    expect(parseHl7Date('')).toEqual({ date: null });
  });
});

describe('fhirDateTime (rendering in the sent offset)', () => {
  it('given an instant and the offset it was sent in, when formatted, then ISO 8601 in that offset', () => {
    expect(formatInstantWithOffset(Date.UTC(2026, 0, 15, 13, 0), -300)).toBe('2026-01-15T08:00:00-05:00');
    expect(formatInstantWithOffset(Date.UTC(2026, 0, 15, 13, 0), 330)).toBe('2026-01-15T18:30:00+05:30');
    expect(formatInstantWithOffset(Date.UTC(2026, 0, 15, 13, 0, 0, 5), 0)).toBe(
      '2026-01-15T13:00:00.005+00:00',
    );
  });

  it('given no offset (events recorded before offsets were kept), when formatted, then UTC with Z', () => {
    expect(formatInstantWithOffset(Date.UTC(2026, 0, 15, 13, 0), null)).toBe('2026-01-15T13:00:00Z');
  });
});
