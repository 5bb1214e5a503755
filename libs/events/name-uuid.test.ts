import fc from 'fast-check';
import { v5 as uuidv5 } from 'uuid';
import { describe, expect, it } from 'vitest';
import { nameUuid } from './name-uuid.js';

describe('nameUuid', () => {
  it('gives the uuid package v5 value for any name and namespace', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'grapheme' })), fc.uuid(), (name, ns) => {
        expect(nameUuid(name, ns)).toBe(uuidv5(name, ns));
      }),
      { numRuns: 2000 },
    );
  });

  it('matches the RFC 9562 example (DNS namespace, www.example.com)', () => {
    expect(nameUuid('www.example.com', '6ba7b810-9dad-11d1-80b4-00c04fd430c8')).toBe(
      '2ed6657d-e927-568b-95e1-2665a8aea6a2',
    );
  });

  it('refuses a namespace that is not a UUID', () => {
    expect(() => nameUuid('x', 'not-a-uuid')).toThrow(TypeError);
  });
});
