import { describe, expect, it } from 'vitest';
import { patientRegistered, patientUpdated, patientsMerged } from '../../test/support/fixtures.js';
import { evolve, type Rows } from './domain.js';

const given = (...events: Parameters<typeof evolve>[1][]): Rows =>
  events.reduce<Rows>((rows, e) => evolve(rows, e), new Map());

describe('patient directory: evolve', () => {
  it('given nothing, when a patient is registered, then a row at version 1 holds the official name', () => {
    const rows = given(patientRegistered('P1', 'Alpha', 'm1'));
    expect(rows.get('P1')).toMatchObject({ family: 'Alpha', given: ['Testy'], version: 1, mergedInto: null });
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
    expect(rows.get('P2')?.mergedInto).toBe('P1');
    expect(rows.get('P1')?.identifiers.map((i) => i.value)).toEqual(['MRN-P1', 'MRN-P2']);
  });

  it('given a merge before either registration, then both rows exist and the link holds', () => {
    const rows = given(patientsMerged('P1', 'P2', 'm3'), patientRegistered('P2', 'Late', 'm1'));
    expect(rows.get('P2')).toMatchObject({ mergedInto: 'P1', family: 'Late' });
    expect(rows.get('P1')?.version).toBe(1);
  });

  it('leaves the rows untouched for events of other aggregates', () => {
    const before = given(patientRegistered('P1', 'Alpha', 'm1'));
    const after = evolve(before, {
      type: 'OrderStatusChanged',
      data: {
        meta: patientRegistered('P1', 'x', 'm9').data.meta,
        patientId: 'P1',
        orderId: 'O1',
        status: 'active',
        fillerStatus: null,
        changedAt: 0,
      },
    });
    expect(after).toBe(before);
  });
});
