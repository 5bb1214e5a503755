import { describe, expect, it } from 'vitest';
import { patientRegistered, patientUpdated, patientsMerged } from '../../test/support/fixtures.js';
import { at, demographicsUpdated, merged, registered } from '../../test/support/hospital-day.js';
import { Draft, rootOf } from '../../libs/projections/store.js';
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

  it("given a retired patient's registration on another partition than the merge, then every interleaving gives the same rows (rebalance storm)", () => {
    // The survivor's events and the merge share S's partition, so their order is the log's;
    // R's registration is on R's partition and may be applied before, between or after them.
    const survivorSide = [registered('S', 'Same', 'Sam', 'ms', at(7)), merged('S', 'R', 'mm', at(10))];
    const retired = registered('R', 'Same', 'Sam', 'mr', at(8));
    const builds = [0, 1, 2].map((k) => {
      const events = [...survivorSide];
      events.splice(k, 0, retired);
      const rows = given(...events);
      return [rows.get('S'), rows.get('R')];
    });
    expect(builds[1]).toEqual(builds[0]);
    expect(builds[2]).toEqual(builds[0]);
    expect(builds[0]?.[1]).toMatchObject({ merged_into: 'S', version: 2, updated_at: at(10) });
  });

  it('given a chain of merges on three partitions, then every interleaving gives the same rows (rebalance storm)', () => {
    // C ← B is on C's partition, B ← A on B's; the store records a batch's links before it
    // evolves the batch, so `resolve` knows every merge applied so far, the current one too.
    const partitions = [
      [registered('A', 'Chain', 'Ann', 'ra', at(7))],
      [registered('B', 'Chain', 'Ann', 'rb', at(7, 5)), merged('B', 'A', 'mba', at(9))],
      [registered('C', 'Chain', 'Ann', 'rc', at(7, 10)), merged('C', 'B', 'mcb', at(10))],
    ];
    const build = (order: number[]) => {
      const queues = partitions.map((p) => [...p]);
      const links = new Map<string, string>();
      const d = new Draft<DirectoryTables>();
      for (const k of order) {
        const e = queues[k]!.shift()!;
        if (e.type === 'PatientsMerged') links.set(e.data.mergedPatientId, e.data.patientId);
        evolve(d, e, (id) => rootOf(links, id));
      }
      return ['A', 'B', 'C'].map((id) => d.get('patients', id));
    };
    const first = build([0, 1, 1, 2, 2]);
    expect(first[2]?.identifiers.map((i) => i.value)).toEqual(['MRN-C', 'MRN-B', 'MRN-A']);
    for (const order of [
      [2, 2, 1, 1, 0],
      [1, 2, 2, 1, 0],
      [2, 1, 2, 0, 1],
      [0, 2, 2, 1, 1],
    ])
      expect(build(order)).toEqual(first);
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
