import { describe, expect, it } from 'vitest';
import { classOf, isAbnormal, isReleasedStatus, resultRank, supersedes, undonePart } from './clinical.js';

describe('clinical rules shared by the read models', () => {
  it('ranks report versions: cancelled > corrected > final > preliminary', () => {
    expect(['preliminary', 'final', 'corrected', 'cancelled'].map(resultRank)).toEqual([1, 2, 3, 4]);
    expect(isReleasedStatus('final') && isReleasedStatus('corrected')).toBe(true);
    expect(isReleasedStatus('preliminary') || isReleasedStatus('cancelled')).toBe(false);
  });

  it('decides supersession the same way whatever the arrival order', () => {
    const a = { rank: 2, at: 10, eventId: 'a' };
    const b = { rank: 2, at: 10, eventId: 'b' };
    const c = { rank: 3, at: 5, eventId: 'c' };
    expect(supersedes(b, a)).toBe(true);
    expect(supersedes(a, b)).toBe(false);
    expect(supersedes(c, b)).toBe(true);
    expect(supersedes(a, null)).toBe(true);
  });

  it('reads HL7 abnormal flags', () => {
    const o = (code: string | null) =>
      ({ interpretation: code ? { system: 'HL7-0078', code, display: null } : null }) as Parameters<
        typeof isAbnormal
      >[0];
    expect([o('H'), o('LL'), o('N'), o(null)].map(isAbnormal)).toEqual([true, true, false, false]);
  });

  it('maps HL7 PV1-2 and FHIR v3-ActCode classes to one vocabulary', () => {
    expect(
      ['I', 'IMP', 'E', 'EMER', 'O', 'AMB'].map((code) =>
        classOf({ system: 's', code, display: null, version: null, alternates: [], text: null }),
      ),
    ).toEqual(['inpatient', 'inpatient', 'emergency', 'emergency', 'outpatient', 'outpatient']);
  });

  it('knows what an undo event takes back', () => {
    expect(undonePart({ type: 'EncounterCancelled', data: { cancelledEventType: null } })).toBe('visit');
    expect(undonePart({ type: 'EncounterCancelled', data: { cancelledEventType: 'A12' } })).toBe('transfer');
    expect(undonePart({ type: 'EncounterCancelled', data: { cancelledEventType: 'discharge' } })).toBe(
      'discharge',
    );
    expect(undonePart({ type: 'EncounterTransferCancelled' })).toBe('transfer');
    expect(undonePart({ type: 'EncounterDischargeCancelled' })).toBe('discharge');
  });
});
