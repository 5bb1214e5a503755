import { describe, expect, it } from 'vitest';
import type { Explanation, RecordDisplay, ReviewItem } from '../libs/identity/store.js';
import { buildProgram } from './hub.js';
import { decisionText, explainText, reviewRow } from './identity.js';

const display = (family: string, mrn: string): RecordDisplay => ({
  names: [{ family, given: ['Marta', 'J'], prefix: null, suffix: null, use: 'official' }],
  birthDate: '1984-03-12',
  sex: 'female',
  identifiers: [{ system: 'urn:mercy', value: mrn, type: 'MR' }],
  address: null,
  phone: null,
});
const pair = {
  pairKey: 'A|B',
  patientId: 'A',
  otherPatientId: 'B',
  state: 'proposed' as const,
  score: 19,
  weightsVersion: 'fs-1',
  evidence: [{ field: 'family', level: 'jw-high', weight: 4 }],
  rules: ['sex-conflict'],
  decidedBy: 'identity-matcher',
  reason: 'score between the thresholds',
  basis: 'auto' as const,
  eventId: 'e1',
  updatedAt: '2026-12-06T08:00:00.000Z',
};

describe('hub identity output', () => {
  it('given a proposed pair, when shown on the worklist, then each field is record | other record', () => {
    const item: ReviewItem = {
      pair,
      record: display('Kowalski', 'M-1'),
      otherRecord: display('Kowalsky', 'S-9'),
    };
    expect(reviewRow(item)).toEqual({
      score: '19.00',
      patient: 'A',
      other: 'B',
      name: 'Kowalski, Marta J | Kowalsky, Marta J',
      birthDate: '1984-03-12 | 1984-03-12',
      sex: 'female | female',
      identifiers: 'M-1@urn:mercy (MR) | S-9@urn:mercy (MR)',
      rules: 'sex-conflict',
    });
  });

  it('given a record with a link and an unlink, when explained, then its person, pairs and both decisions are listed', () => {
    const e: Explanation = {
      patientId: 'B',
      display: display('Kowalsky', 'S-9'),
      source: { system: 'EHR', facility: 'STJUDE' },
      active: false,
      mergedInto: 'C',
      person: ['B'],
      pairs: [{ ...pair, state: 'unlinked', basis: 'steward', decidedBy: 'ops', reason: 'two people' }],
      history: [
        {
          ...pair,
          type: 'PatientsLinked',
          decidedBy: 'ann',
          reason: 'same',
          decidedAt: '2026-12-06T08:01:00.000Z',
        },
        {
          ...pair,
          type: 'PatientsUnlinked',
          decidedBy: 'ops',
          reason: 'two people',
          decidedAt: '2026-12-06T08:02:00.000Z',
        },
      ],
    };
    const text = explainText(e);
    expect(text).toContain('record       B (retired: merged into C)');
    expect(text).toContain('source       EHR/STJUDE');
    // The other record of each pair, seen from B.
    expect(text).toMatch(/^A\s+unlinked\s+steward/m);
    expect(text).toMatch(/PatientsLinked\s+A\s+19\.00\s+fs-1\s+ann\s+same/);
    expect(text).toMatch(/PatientsUnlinked\s+A .* ops\s+two people/);
    expect(text).toContain('family:jw-high(4.0)');
  });

  it('given a decision done or still pending, when printed, then done names the event and pending says it stays queued', () => {
    const base = {
      kind: 'link' as const,
      commandId: 'c1',
      patientId: 'A',
      otherPatientId: 'B',
      decidedBy: 'ann',
      error: null,
    };
    expect(decisionText({ ...base, status: 'done', eventId: 'e9' })).toBe('linked: A B (event e9, by ann)');
    const pending = decisionText({ ...base, status: 'pending', eventId: null });
    expect(pending).toContain('queued: link A B (command c1) is pending');
    expect(pending).toContain('hub identity explain A');
  });

  it('given the hub program, when its commands are listed, then identity has review, explain, link, unlink and reject', () => {
    const identity = buildProgram().commands.find((c) => c.name() === 'identity');
    expect(identity?.commands.map((c) => c.name()).sort()).toEqual([
      'explain',
      'link',
      'reject',
      'review',
      'unlink',
    ]);
    const link = identity?.commands.find((c) => c.name() === 'link');
    expect(link?.options.find((o) => o.long === '--reason')?.mandatory).toBe(true);
  });
});
