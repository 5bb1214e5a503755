import type { Encounter, Resource } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { inSenderOffsets } from './queries.js';

const encounter = (period: Encounter['period']): Encounter => ({
  resourceType: 'Encounter',
  id: 'E1',
  status: 'finished',
  class: { code: 'IMP' },
  period,
});

describe('inSenderOffsets', () => {
  it('given a stored UTC period and the New York offsets, when served, then start and end read as the sender meant', () => {
    const out = inSenderOffsets(
      encounter({ start: '2026-01-15T13:00:00.000Z', end: '2026-01-16T22:00:00.000Z' }),
      { start_offset_minutes: -300, end_offset_minutes: -300 },
    ) as Encounter;
    expect(out.period).toEqual({ start: '2026-01-15T08:00:00-05:00', end: '2026-01-16T17:00:00-05:00' });
    expect(Date.parse(out.period!.start!)).toBe(Date.UTC(2026, 0, 15, 13, 0));
  });

  it('given no offsets (rows from older events), when served, then the stored UTC value as today', () => {
    const stored = encounter({ start: '2026-01-15T13:00:00.000Z' });
    expect(inSenderOffsets(stored, { start_offset_minutes: null, end_offset_minutes: null })).toEqual(stored);
  });

  it('given a start offset only, when served, then only the start is shifted and no end appears', () => {
    const out = inSenderOffsets(encounter({ start: '2026-07-01T12:00:00.000Z' }), {
      start_offset_minutes: 120,
      end_offset_minutes: null,
    }) as Encounter;
    expect(out.period).toEqual({ start: '2026-07-01T14:00:00+02:00' });
  });

  it('given another resource type, when served, then it is untouched', () => {
    const obs: Resource = { resourceType: 'Patient', id: 'P1' };
    expect(inSenderOffsets(obs, { start_offset_minutes: -300 })).toBe(obs);
  });
});
