import { describe, expect, it } from 'vitest';
import { compareRatios } from './compare.js';
import { hl7Message } from './hl7.js';
import { summariseProfile } from './profile.js';
import { spreadOf, type ScenarioResult } from './lib.js';

describe('hl7 benchmark mix', () => {
  it('given 20 consecutive messages, when generated, then it is 8 ADT, 7 ORU, 4 ORM and 1 content error', () => {
    const kinds = Array.from({ length: 20 }, (_, n) => hl7Message('R', n).kind);
    const count = (k: string) => kinds.filter((x) => x === k).length;
    expect([count('adt'), count('oru'), count('orm'), count('bad')]).toEqual([8, 7, 4, 1]);
    expect(hl7Message('R', 19).expect).toBe('AE');
  });

  it('given an ORU, when generated, then it carries five OBX segments and a unique control id', () => {
    const m = hl7Message('R', 8);
    expect(m.kind).toBe('oru');
    expect(m.text.split('\r').filter((s) => s.startsWith('OBX|'))).toHaveLength(5);
    expect(m.text).toContain('|R-8|');
  });
});

describe('CPU profile summary', () => {
  it('given samples on three nodes, when summarised, then self time is attributed per function and per area', () => {
    const frame = (functionName: string, url: string) => ({ functionName, url, lineNumber: 0 });
    const s = summariseProfile({
      nodes: [
        { id: 1, callFrame: frame('(idle)', '') },
        { id: 2, callFrame: frame('parse', 'file:///x/node_modules/@medplum/core/dist/index.mjs') },
        { id: 3, callFrame: frame('mapHl7Message', 'file:///work/main/libs/hl7/map.ts') },
      ],
      samples: [1, 2, 2, 3],
      timeDeltas: [1000, 2000, 3000, 4000],
    });
    expect(s.total).toBe(10);
    expect(s.areas.map((a) => [a.name, a.selfMs])).toEqual([
      ['@medplum/core', 5],
      ['libs/hl7', 4],
      ['(idle)', 1],
    ]);
    expect(s.functions[0]?.share).toBeCloseTo(0.5);
  });
});

describe('ratio comparison between runs', () => {
  const run = (hub: number): { results: ScenarioResult[] } => ({
    results: [
      {
        scenario: 's',
        setup: '',
        figures: [
          { name: 'hub', value: hub, unit: 'x/s', better: 'higher', limit: 'lim' },
          { name: 'lim', value: 100, unit: 'x/s', better: 'higher' },
        ],
      },
    ],
  });

  it('given the same limit and hub figures 50 and 40, when compared, then the ratios differ by 20%', () => {
    const [r] = compareRatios(run(50), run(40));
    expect(r?.a).toBeCloseTo(0.5);
    expect(r?.b).toBeCloseTo(0.4);
    expect(r?.diff).toBeCloseTo(0.2);
    expect(r?.apart).toBe(false);
  });

  it('given ratios with slice pairs whose IQRs do not overlap, when compared, then the medians are compared and the row is flagged', () => {
    const withPairs = (values: number[]): { results: ScenarioResult[] } => {
      const r = run(50);
      const hub = r.results[0]?.figures[0];
      if (hub) hub.ratioSpread = spreadOf(values);
      return r;
    };
    const [r] = compareRatios(
      withPairs([0.3, 0.31, 0.32, 0.33, 0.34]),
      withPairs([0.2, 0.21, 0.22, 0.23, 0.9]),
    );
    expect(r?.a).toBeCloseTo(0.32);
    expect(r?.b).toBeCloseTo(0.22);
    expect(r?.aIqr).toEqual([0.31, 0.33]);
    expect(r?.apart).toBe(true);
  });
});
