import { describe, expect, it } from 'vitest';
import { controlCharIn } from './input.js';

describe('controlCharIn', () => {
  it('given params or a query with a NUL or another control character, then the parameter is named, not quoted', () => {
    expect(controlCharIn({ type: 'Patient', id: 'abc\u0000' })).toBe('id');
    expect(controlCharIn({ q: ['ok', 'x\u001f'] })).toBe('q');
    expect(controlCharIn({ id: 'a\ud800' })).toBe('id');
    expect(controlCharIn({ 'a\u0000<b>': 'v' })).toBe('a??b?');
  });
  it('given clean input or no object, then null', () => {
    expect(controlCharIn({ id: 'abc-1.2', n: 3 })).toBeNull();
    expect(controlCharIn(undefined)).toBeNull();
    expect(controlCharIn('x\u0000')).toBeNull();
  });
});
