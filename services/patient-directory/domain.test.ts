import { describe, expect, it } from 'vitest';
import { patientRegistered, patientUpdated, patientsMerged } from '../../test/support/fixtures.js';
import { at, demographicsUpdated, registered } from '../../test/support/hospital-day.js';
import { Draft } from '../../libs/projections/store.js';
import { evolveAll } from '../../test/support/read-model-testing.js';
import { evolve, needs, type DirectoryTables } from './domain.js';

const given = (...events: Parameters<typeof evolve>[1][]) => {
  const d = evolveAll<DirectoryTables>(evolve, events);
  return { get: (id: string) => d.get('patients', id) };
};

describe('patient directory: evolve', () => {
  it('given nothing, when a patient is registered, then a row at version 1 holds the official name', () => {
    const rows = given(patientRegistered('P1', 'Alpha', 'm1'));
    expect(rows.get('P1')).toMatchObject({
      family: 'Alpha',
      given: ['Testy'],
      version: 1,
      merged_into: null,
    });
  });

  it('given a registered patient, when updated, then the snapshot replaces the old one and the version rises', () => {
    const rows = given(patientRegistered('P1', 'Alpha', 'm1'), patientUpdated('P1', 'Beta', 'm2'));
    expect(rows.get('P1')).toMatchObject({ family: 'Beta', version: 2 });
  });

  it('given nothing, when an update arrives before the registration, then the row is created from it', () => {
    const rows = given(patientUpdated('P1', 'Beta', 'm2'));
    expect(rows.get('P1')).toMatchObject({ family: 'Beta', version: 1 });
  });

  it('given two patients, when merged, then the retired one points at the survivor, which gains its identifiers', () => {
    const rows = given(
      patientRegistered('P1', 'Alpha', 'm1'),
      patientRegistered('P2', 'Alpha', 'm2'),
      patientsMerged('P1', 'P2', 'm3'),
    );
    expect(rows.get('P2')?.merged_into).toBe('P1');
    expect(rows.get('P1')?.identifiers.map((i) => i.value)).toEqual(['MRN-P1', 'MRN-P2']);
  });

  it('given a merge before either registration, then both rows exist and the link holds', () => {
    const rows = given(patientsMerged('P1', 'P2', 'm3'), patientRegistered('P2', 'Late', 'm1'));
    expect(rows.get('P2')).toMatchObject({ merged_into: 'P1', family: 'Late' });
    expect(rows.get('P1')?.version).toBe(1);
  });

  it('leaves the rows untouched for events of other aggregates', () => {
    const before = given(patientRegistered('P1', 'Alpha', 'm1')).get('P1');
    expect(before).toBeDefined();
    const draft = new Draft<DirectoryTables>({ patients: before ? [['P1', before]] : [] });
    const e: Parameters<typeof evolve>[1] = {
      type: 'OrderStatusChanged',
      data: {
        meta: patientRegistered('P1', 'x', 'm9').data.meta,
        patientId: 'P1',
        orderId: 'O1',
        status: 'active',
        fillerStatus: null,
        changedAt: 0,
        placerOrderNumber: null,
        fillerOrderNumber: null,
        resultStatus: null,
        notes: [],
      },
    };
    expect(needs(e)).toEqual({});
    evolve(draft, e, (id) => id);
    expect(draft.changes('patients')).toEqual({ upserts: [], deletes: [] });
    expect(draft.get('patients', 'P1')).toBe(before);
  });
});

describe('patient directory: HL7 null semantics', () => {
  const empty = { names: [], birthDate: null, administrativeGender: null };
  const reg = registered('P1', 'Kept', 'Kim', 'r1', at(7));

  it('given a registered patient, when an update leaves name, birth date and sex out, then they stay', () => {
    const rows = given(
      reg,
      demographicsUpdated('P1', 'u1', at(8), {
        ...empty,
        notSent: ['names', 'birthDate', 'administrativeGender'],
      }),
    );
    expect(rows.get('P1')).toMatchObject({
      family: 'Kept',
      given: ['Kim'],
      birth_date: '1970-05-17',
      gender: 'female',
      version: 2,
    });
  });

  it('given a registered patient, when an update clears the birth date (""), then it is null and the rest stays', () => {
    const rows = given(
      reg,
      demographicsUpdated('P1', 'u1', at(8), {
        ...empty,
        cleared: ['birthDate'],
        notSent: ['names', 'administrativeGender'],
      }),
    );
    expect(rows.get('P1')).toMatchObject({ family: 'Kept', birth_date: null, gender: 'female' });
  });

  it('given a registered patient, when an update sends new names, then they replace the old ones', () => {
    const rows = given(
      reg,
      demographicsUpdated('P1', 'u1', at(8), {
        ...empty,
        names: [{ family: 'New', given: [], prefix: null, suffix: null, use: 'official' }],
        notSent: ['birthDate', 'administrativeGender'],
      }),
    );
    expect(rows.get('P1')).toMatchObject({ family: 'New', given: [], birth_date: '1970-05-17' });
  });

  it('given an old full-snapshot update, then absent values are removed', () => {
    const rows = given(reg, demographicsUpdated('P1', 'u1', at(8), { ...empty }));
    expect(rows.get('P1')).toMatchObject({ family: null, given: [], birth_date: null, gender: null });
  });
});
