import { describe, expect, it } from 'vitest';
import { Draft } from './store.js';

interface Tables {
  patients: { id: string; name: string };
}

describe('Draft: rows loaded whole and rows only known to exist', () => {
  it('given a key only known present, then it exists but reading it throws (the evolve must not take it for absent)', () => {
    const d = new Draft<Tables>(
      { patients: [['P1', { id: 'P1', name: 'a' }]] },
      { patients: new Set(['P2']) },
    );
    expect(d.has('patients', 'P1')).toBe(true);
    expect(d.has('patients', 'P2')).toBe(true);
    expect(d.has('patients', 'P3')).toBe(false);
    expect(d.get('patients', 'P1')).toEqual({ id: 'P1', name: 'a' });
    expect(d.get('patients', 'P3')).toBeUndefined();
    expect(() => d.get('patients', 'P2')).toThrow(/only its presence was loaded/);
  });

  it('given a present key put or deleted in the batch, then the draft answers from the batch', () => {
    const d = new Draft<Tables>(undefined, { patients: new Set(['P2', 'P3']) });
    d.put('patients', 'P2', { id: 'P2', name: 'b' });
    d.delete('patients', 'P3');
    expect(d.get('patients', 'P2')).toEqual({ id: 'P2', name: 'b' });
    expect(d.has('patients', 'P3')).toBe(false);
    expect(d.get('patients', 'P3')).toBeUndefined();
    expect(d.changes('patients')).toEqual({ upserts: [{ id: 'P2', name: 'b' }], deletes: ['P3'] });
  });
});
