import { describe, expect, it } from 'vitest';
import { reportingTimeZone } from './reporting-zone.js';

describe('analytics: the reporting time zone', () => {
  it('given a site configuration with defaultTimeZone, then days are counted in it', () => {
    expect(reportingTimeZone({ defaultTimeZone: 'America/Chicago' })).toBe('America/Chicago');
  });

  it('given no defaultTimeZone (no HL7 feeds, no site file), then days are UTC days', () => {
    expect(reportingTimeZone({})).toBe('UTC');
  });
});
