import { describe, expect, it } from 'vitest';
import { patientRegistered } from '../../test/support/fixtures.js';
import { HubError } from '../errors/index.js';
import { assertValidEvent, invalidPaths, isValidEvent, type EventTypeMap } from './index.js';

/**
 * The last guard before the log: every event is checked here before it is
 * encoded, so text a strict UTF-8 Avro reader cannot decode (a lone UTF-16
 * surrogate) or a read model cannot store (U+0000) never reaches a topic.
 */
describe('invalidPaths: text no reader can store', () => {
  const withFamily = (family: string) => {
    const e = patientRegistered('P1', 'Alpha', 'm1');
    const d = e.data as EventTypeMap['PatientRegistered'];
    return {
      ...d,
      demographics: { ...d.demographics, names: [{ ...d.demographics.names[0]!, family }] },
    };
  };

  it('given a name with a lone surrogate, when validated, then its path is reported (not the value)', () => {
    for (const bad of ['Sec\ud800ret', '\udc00', 'x\udbff']) {
      const paths = invalidPaths('PatientRegistered', withFamily(bad));
      expect(paths).toEqual(['demographics.names.0.family (lone surrogate or NUL in text)']);
      expect(paths.join()).not.toContain('Sec');
    }
  });

  it('given a NUL in a string, when validated, then its path is reported', () => {
    expect(invalidPaths('PatientRegistered', withFamily('a\u0000b'))).toHaveLength(1);
  });

  it('given a surrogate pair (an emoji) or any other valid text, when validated, then it passes', () => {
    expect(invalidPaths('PatientRegistered', withFamily('Ana 😀 ✓ Müller ﻿'))).toEqual([]);
  });

  it('given valid and invalid events, when checked without paths (isValidEvent, the codec guard), then it agrees with invalidPaths', () => {
    const d = withFamily('Ana');
    const cases: unknown[] = [
      d,
      withFamily('Sec\ud800ret'),
      withFamily('a\u0000b'),
      withFamily('😀'),
      { ...d, patientId: 7 },
      { ...d, demographics: { ...d.demographics, names: [] } },
      { ...d, meta: undefined },
    ];
    for (const c of cases) {
      expect(isValidEvent('PatientRegistered', c)).toBe(invalidPaths('PatientRegistered', c).length === 0);
    }
    expect(() => assertValidEvent('PatientRegistered', d)).not.toThrow();
    expect(() => assertValidEvent('PatientRegistered', { ...d, patientId: 7 })).toThrow(/at: patientId/);
  });

  it('given such an event at the codec guard, when asserted, then HUB_EVENT_INVALID is thrown', () => {
    expect(() => assertValidEvent('PatientRegistered', withFamily('\ud800'))).toThrow(HubError);
  });
});
