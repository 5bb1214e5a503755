import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pairSpread, quantile, spreadOf } from './lib.js';

const finite = fc.double({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true });
const samples = fc.array(finite, { minLength: 1, maxLength: 40 });

describe('median and IQR of slice pairs', () => {
  it('given five ratios, when summarised, then the median is the 3rd and the quartiles the 2nd and 4th in order', () => {
    const s = spreadOf([0.31, 0.25, 0.4, 0.28, 0.3]);
    expect(s).toMatchObject({ n: 5, median: 0.3, q1: 0.28, q3: 0.31 });
    expect(s.values).toEqual([0.31, 0.25, 0.4, 0.28, 0.3]);
  });

  it('given four values, when summarised, then the quantiles interpolate between order statistics', () => {
    expect(spreadOf([1, 2, 3, 4])).toMatchObject({ median: 2.5, q1: 1.75, q3: 3.25 });
  });

  it('given any sample, then min <= q1 <= median <= q3 <= max', () => {
    fc.assert(
      fc.property(samples, (xs) => {
        const s = spreadOf(xs);
        const sorted = [...xs].sort((a, b) => a - b);
        expect(sorted[0]).toBeLessThanOrEqual(s.q1);
        expect(s.q1).toBeLessThanOrEqual(s.median);
        expect(s.median).toBeLessThanOrEqual(s.q3);
        expect(s.q3).toBeLessThanOrEqual(sorted.at(-1) ?? Number.NaN);
      }),
    );
  });

  it('given any sample, when its order is shuffled, then median and quartiles stay the same', () => {
    fc.assert(
      fc.property(
        samples.chain((xs) => fc.tuple(fc.constant(xs), fc.shuffledSubarray(xs, { minLength: xs.length }))),
        ([xs, shuffled]) => {
          const a = spreadOf(xs);
          const b = spreadOf(shuffled);
          expect([b.median, b.q1, b.q3, b.n]).toEqual([a.median, a.q1, a.q3, a.n]);
        },
      ),
    );
  });

  it('given a constant sample, then its IQR is empty', () => {
    fc.assert(
      fc.property(finite, fc.integer({ min: 1, max: 20 }), (x, n) => {
        const s = spreadOf(Array.from({ length: n }, () => x));
        // === and not toEqual: -0 and 0 are the same figure.
        expect([s.q1, s.median, s.q3].every((q) => q === x)).toBe(true);
      }),
    );
  });

  it('given a pair whose limit slice gave 0, when summarised, then the infinite ratio is left out', () => {
    const s = pairSpread(
      [
        { hub: 10, limit: 20 },
        { hub: 10, limit: 0 },
      ],
      'higher',
    );
    expect([s.n, s.median]).toEqual([1, 0.5]);
  });

  it('given latency pairs, when summarised, then the ratio is limit over hub (higher is better)', () => {
    expect(pairSpread([{ hub: 40, limit: 10 }], 'lower').median).toBe(0.25);
  });

  it('given no values, then the quantile is NaN', () => {
    expect(quantile([], 0.5)).toBeNaN();
    expect(spreadOf([]).n).toBe(0);
  });
});
