import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FHIR_TYPES } from './scopes.js';
import { IMPORT_SCOPE, systemAllows, systemWritesAny, type IngestAccess } from './system-scopes.js';

const KINDS = ['create', 'update', 'delete', 'read'] as const;
const LETTER = { create: 'c', update: 'u', delete: 'd', read: 'r' } as const;

describe('systemAllows', () => {
  it('given SMART v2 letters, when a write or read is asked, then exactly the granted letters allow', () => {
    const scopes = ['system/Observation.cu', 'system/Patient.rs'];
    expect(systemAllows(scopes, { kind: 'create', resourceType: 'Observation' })).toBe(true);
    expect(systemAllows(scopes, { kind: 'update', resourceType: 'Observation' })).toBe(true);
    expect(systemAllows(scopes, { kind: 'delete', resourceType: 'Observation' })).toBe(false);
    expect(systemAllows(scopes, { kind: 'read', resourceType: 'Observation' })).toBe(false);
    expect(systemAllows(scopes, { kind: 'read', resourceType: 'Patient' })).toBe(true);
    expect(systemAllows(scopes, { kind: 'create', resourceType: 'Patient' })).toBe(false);
  });

  it('given the v1 words, when asked, then write is c/u/d and read is r', () => {
    const w = ['system/*.write'];
    expect(systemAllows(w, { kind: 'update', resourceType: 'Encounter' })).toBe(true);
    expect(systemAllows(w, { kind: 'read', resourceType: 'Encounter' })).toBe(false);
    expect(systemAllows(['system/Encounter.read'], { kind: 'read', resourceType: 'Encounter' })).toBe(true);
  });

  it('given patient/ or user/ scopes, or a search-restricted v2 scope, then nothing is granted', () => {
    for (const s of ['patient/*.cud', 'user/*.cruds', 'system/Observation.cu?category=laboratory']) {
      expect(systemAllows([s], { kind: 'create', resourceType: 'Observation' })).toBe(false);
      expect(systemWritesAny([s])).toBe(false);
    }
  });

  it('given $import, then it needs create and update on every type, or the $import scope', () => {
    expect(systemAllows(['system/*.cud'], { kind: 'import' })).toBe(true);
    expect(systemAllows(['system/*.write'], { kind: 'import' })).toBe(true);
    expect(systemAllows([IMPORT_SCOPE], { kind: 'import' })).toBe(true);
    expect(
      systemAllows(
        FHIR_TYPES.map((t) => `system/${t}.cu`),
        { kind: 'import' },
      ),
    ).toBe(true);
    expect(systemAllows(['system/Observation.cud'], { kind: 'import' })).toBe(false);
    expect(systemAllows(['system/*.c'], { kind: 'import' })).toBe(false);
    expect(systemAllows(['system/*.rs'], { kind: 'import' })).toBe(false);
  });

  // Property: a grant is exactly "a system/ scope on this type or *, whose permissions hold the letter".
  it('given any set of system/ scopes, then an access is allowed iff some scope names the type (or *) with its letter', () => {
    const resource = fc.constantFrom(...FHIR_TYPES, '*');
    const letters = fc.subarray(['c', 'r', 'u', 'd', 's'], { minLength: 1 }).map((ls) => ls.join(''));
    const scope = fc.tuple(fc.constantFrom('system', 'patient', 'user'), resource, letters);
    fc.assert(
      fc.property(
        fc.array(scope, { maxLength: 5 }),
        fc.constantFrom(...KINDS),
        fc.constantFrom(...FHIR_TYPES),
        (parts, kind, type) => {
          const scopes = parts.map(([c, r, l]) => `${c}/${r}.${l}`);
          const access: IngestAccess = { kind, resourceType: type };
          const expected = parts.some(
            ([c, r, l]) => c === 'system' && (r === type || r === '*') && l.includes(LETTER[kind]),
          );
          expect(systemAllows(scopes, access)).toBe(expected);
        },
      ),
    );
  });
});
