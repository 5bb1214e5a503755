import { describe, expect, it } from 'vitest';
import { formatTable, toJson } from './output.js';

describe('formatTable', () => {
  it('aligns columns under upper-case headers', () => {
    expect(
      formatTable([
        { a: 'x', bb: 1 },
        { a: 'long', bb: 22 },
      ]),
    ).toBe('A     BB\nx     1\nlong  22');
  });
  it('prints (none) for no rows, and bigints and objects as text', () => {
    expect(formatTable([])).toBe('(none)');
    expect(formatTable([{ lag: 5n, at: { p: 0 } }])).toBe('LAG  AT\n5    {"p":0}');
  });
});

describe('toJson', () => {
  it('writes bigints (offsets, lags) as decimal strings', () => {
    expect(toJson({ offset: 12n })).toBe('{\n  "offset": "12"\n}');
  });
});
