import { describe, expect, it } from 'vitest';
import { blockingKeys } from '../../libs/identity/matching/index.js';
import { generatePopulation, truePairCount } from '../../test/support/population.js';
import {
  MemoryIndex,
  chooseLower,
  chooseUpper,
  population,
  randomPairs,
  type ScoredPair,
} from './empi-lib.js';

describe('synthetic population', () => {
  it('given one seed twice, when generated, then the records are identical', () => {
    const a = generatePopulation({ seed: 11, records: 500 });
    const b = generatePopulation({ seed: 11, records: 500 });
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
  });

  it('given two seeds, when generated, then the records differ', () => {
    const a = generatePopulation({ seed: 11, records: 200 });
    const b = generatePopulation({ seed: 12, records: 200 });
    expect(JSON.stringify(b)).not.toBe(JSON.stringify(a));
  });

  it('given a population, when generated, then it has at least the records asked, unique patient ids and repeat registrations', () => {
    const pop = generatePopulation({ seed: 5, records: 2000 });
    expect(pop.length).toBeGreaterThanOrEqual(2000);
    expect(new Set(pop.map((r) => r.patientId)).size).toBe(pop.length);
    expect(truePairCount(pop)).toBeGreaterThan(300);
    expect(new Set(pop.map((r) => r.facility))).toEqual(new Set(['a', 'b', 'c']));
  });

  it('given zero corruption rates, when generated, then the records of one person share name and birth date', () => {
    const none = {
      givenTypo: 0,
      familyTypo: 0,
      nickname: 0,
      givenInitial: 0,
      swappedNames: 0,
      hyphenatedSurname: 0,
    };
    const dates = { dobTransposed: 0, dobTypo: 0, dobYearOnly: 0, missingBirthDate: 0, cosmetic: 0 };
    const pop = generatePopulation({ seed: 3, records: 1000, rates: { ...none, ...dates } });
    const byPerson = new Map<string, string>();
    for (const r of pop) {
      const n = r.demographics.names[0];
      const sig = `${n?.given[0]}|${n?.family}|${r.demographics.birthDate}`;
      expect(byPerson.get(r.personId) ?? sig).toBe(sig);
      byPerson.set(r.personId, sig);
    }
  });
});

describe('MemoryIndex', () => {
  it('given records added, when asked by a record of the same person, then it returns them', () => {
    const p = population(21, 300);
    const index = new MemoryIndex();
    for (const r of p.records) index.add(r);
    const first = p.records[0];
    if (!first) throw new Error('empty population');
    expect(index.candidates(blockingKeys(first)).map((r) => r.patientId)).toContain(first.patientId);
  });
});

describe('randomPairs', () => {
  it('given one seed twice, when drawn, then the pairs are the same and never a record with itself', () => {
    const p = population(11, 200);
    const ids = (seed: number) =>
      [...randomPairs(p, 500, seed)].map((x) => `${x.a.patientId}|${x.b.patientId}`);
    const first = ids(3);
    expect(first).toHaveLength(500);
    expect(ids(3)).toEqual(first);
    expect(ids(4)).not.toEqual(first);
    expect(first.every((k) => k.split('|')[0] !== k.split('|')[1])).toBe(true);
  });
});

describe('threshold choice', () => {
  const pair = (score: number, same: boolean, capped = false): ScoredPair => ({ score, same, capped });
  const pairs = [
    ...Array.from({ length: 1000 }, (_, i) => pair(20 + (i % 10), true)),
    ...Array.from({ length: 50 }, () => pair(5, true)),
    ...Array.from({ length: 50 }, () => pair(5, false)),
    ...Array.from({ length: 500 }, () => pair(-10, false)),
    pair(30, false, true),
  ];

  it('given a clean high band and a mixed band, when choosing upper, then it stops above the mixed band', () => {
    const upper = chooseUpper(pairs, 0.999);
    expect(upper).toBeGreaterThan(5);
    expect(upper).toBeLessThanOrEqual(20);
  });

  it('given a recall target, when choosing lower, then enough true pairs score at or above it', () => {
    expect(chooseLower(pairs, 1050, 0.98)).toBe(5);
    expect(chooseLower(pairs, 1050, 0.9)).toBeGreaterThanOrEqual(20);
  });
});
