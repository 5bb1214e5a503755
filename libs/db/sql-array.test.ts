import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sqlArray } from './index.js';

/** The spelling node-pg gives a JS array of strings: every element quoted, `"` and `\` escaped. */
const reference = (values: readonly string[]) =>
  `{${values.map((v) => `"${v.replace(/["\\]/g, '\\$&')}"`).join(',')}}`;

describe('sqlArray', () => {
  it('property: given any strings (ids, quotes, backslashes, braces, commas), then the reference spelling', () => {
    const text = fc.oneof(
      fc.string(),
      fc.constantFrom('P1', 'a"b', 'back\\slash', '{,}', 'NULL', '', 'x y', 'ü'),
    );
    fc.assert(
      fc.property(fc.array(text), (values) => {
        // Given an array and the same values as a Set's iteration, when spelled
        // Then both read as node-pg would write them
        expect(sqlArray(values)).toBe(reference(values));
        expect(sqlArray(new Set(values))).toBe(reference([...new Set(values)]));
      }),
    );
  });

  it('given no values, then the empty array', () => {
    expect(sqlArray([])).toBe('{}');
  });
});
