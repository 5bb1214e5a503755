import { describe, expect, it } from 'vitest';
import { dateValueRange, parseDateParams, parsePatientRef, parseTokenParam } from './search.js';

describe('FHIR date parameters', () => {
  it('given partial dates, when parsed, then they cover their whole year, month or day', () => {
    expect(dateValueRange('2026')).toEqual({
      start: new Date('2026-01-01T00:00:00Z'),
      end: new Date('2027-01-01T00:00:00Z'),
    });
    expect(dateValueRange('2026-02').end).toEqual(new Date('2026-03-01T00:00:00Z'));
    expect(dateValueRange('2026-03-02').end).toEqual(new Date('2026-03-03T00:00:00Z'));
  });
  it('given prefixes, when several are given, then they are ANDed into one range', () => {
    expect(parseDateParams(['ge2026-03-02', 'lt2026-03-04'])).toEqual({
      from: '2026-03-02T00:00:00.000Z',
      to: '2026-03-04T00:00:00.000Z',
    });
    expect(parseDateParams(['2026-03-02'])).toEqual({
      from: '2026-03-02T00:00:00.000Z',
      to: '2026-03-03T00:00:00.000Z',
    });
    expect(parseDateParams(['gt2026-03-02'])).toEqual({ from: '2026-03-03T00:00:00.000Z', to: null });
    expect(parseDateParams(['le2026-03-02'])).toEqual({ from: null, to: '2026-03-03T00:00:00.000Z' });
    expect(parseDateParams([])).toEqual({ from: null, to: null });
  });
  it('given a dateTime, when parsed, then it is an instant range', () => {
    expect(parseDateParams(['ge2026-03-02T10:30:00Z']).from).toBe('2026-03-02T10:30:00.000Z');
  });
  it('given nonsense or unsupported prefixes, when parsed, then the input is refused', () => {
    expect(() => parseDateParams(['yesterday'])).toThrow(/date/);
    expect(() => parseDateParams(['2026-13'])).toThrow(/month/);
    expect(() => parseDateParams(['2026-02-30'])).toThrow(/day/);
    expect(() => parseDateParams(['ne2026-01-01'])).toThrow(/not supported/);
  });
});

describe('token and reference parameters', () => {
  it('given system|code alternatives, when parsed, then each becomes a filter', () => {
    expect(parseTokenParam('http://loinc.org|718-7,4548-4')).toEqual([
      { system: 'http://loinc.org', code: '718-7' },
      { system: null, code: '4548-4' },
    ]);
    expect(parseTokenParam('http://loinc.org|')).toEqual([{ system: 'http://loinc.org', code: null }]);
  });
  it('given a patient reference, when parsed, then the id is returned; odd characters are refused', () => {
    expect(parsePatientRef('Patient/P1')).toBe('P1');
    expect(parsePatientRef('P1')).toBe('P1');
    expect(() => parsePatientRef("P1' or 1=1")).toThrow();
  });
});
