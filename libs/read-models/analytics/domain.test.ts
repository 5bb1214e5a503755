import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { evolveAll, interleave, snapshot } from '../../../test/support/read-model-testing.js';
import {
  admissionCancelled,
  admitted,
  aggregateOf,
  at,
  discharged,
  demographicsUpdated,
  dischargeCancelled,
  hospitalDay,
  obs,
  ordered,
  registered,
  resulted,
  rng,
  transferCancelled,
  transferred,
} from '../../../test/support/hospital-day.js';
import { evolve, type AnalyticsTables } from './domain.js';

const run = (...events: Parameters<typeof evolve>[1][]) => evolveAll<AnalyticsTables>(evolve, events);

describe('analytics: facts', () => {
  it('given an admission and a transfer, then the encounter keeps its movements in time order', () => {
    const d = run(
      admitted('P1', 'E1', 'inpatient', '4WEST', 'a1', at(8)),
      transferred('P1', 'E1', '4WEST', 'ICU', 'a2', at(14)),
    );
    expect(d.get('encounters', 'E1')?.movements).toEqual([
      { unit: '4WEST', at: at(8) },
      { unit: 'ICU', at: at(14) },
    ]);
  });

  it('given a transfer before the admission, then the same movements result', () => {
    const d = run(
      transferred('P1', 'E1', '4WEST', 'ICU', 'a2', at(14)),
      admitted('P1', 'E1', 'inpatient', '4WEST', 'a1', at(8)),
    );
    expect(d.get('encounters', 'E1')?.movements.map((m) => m.unit)).toEqual(['4WEST', 'ICU']);
  });

  it('given a cancelled transfer and a cancelled discharge, then the unit reverts and the visit is open again', () => {
    const d = run(
      admitted('P1', 'E1', 'inpatient', '4WEST', 'a1', at(8)),
      transferred('P1', 'E1', '4WEST', 'ICU', 'a2', at(14)),
      transferCancelled('P1', 'E1', '4WEST', 'a3', at(15)),
      discharged('P1', 'E1', 'a4', at(18)),
      dischargeCancelled('P1', 'E1', 'a5', at(19)),
    );
    expect(d.get('encounters', 'E1')).toMatchObject({ movements: [{ unit: '4WEST' }], discharged_at: null });
  });

  it('given a cancelled admission, then it is flagged and kept out of counts by the views', () => {
    const d = run(
      admitted('P3', 'E3', 'inpatient', '5E', 'a1', at(8)),
      admissionCancelled('P3', 'E3', 'a2', at(9)),
    );
    expect(d.get('encounters', 'E3')?.cancelled).toBe(true);
  });

  it('given preliminary, final and corrected versions, then first_final_at is the first release and the correction wins', () => {
    const d = run(
      resulted('P1', 'R1', 'O1', null, 'cbc', 'preliminary', 'r1', at(9), [
        obs('718-7', 'Hgb', 9, 'g/dL', 'L', 'preliminary'),
      ]),
      resulted('P1', 'R1', 'O1', null, 'cbc', 'final', 'r2', at(10), [
        obs('718-7', 'Hgb', 9, 'g/dL', 'L', 'final'),
      ]),
      resulted('P1', 'R1', 'O1', null, 'cbc', 'corrected', 'r3', at(11), [
        obs('718-7', 'Hgb', 12, 'g/dL', 'N', 'corrected'),
      ]),
    );
    expect(d.get('results', 'R1')).toMatchObject({
      first_final_at: at(10),
      status: 'corrected',
      corrected: true,
      observations: [{ code: '718-7', abnormal: false }],
    });
  });

  it('given an event with an earlier clinical time than one already seen on its stream, then it counts as out of order', () => {
    const d = run(discharged('P1', 'E1', 'a2', at(12)), admitted('P1', 'E1', 'inpatient', '4W', 'a1', at(8)));
    expect([...d.all('event_log').values()].map((r) => [r.event_type, r.out_of_order])).toEqual([
      ['EncounterEnded', false],
      ['EncounterStarted', true],
    ]);
  });

  it('given an order, then its category, code and priority are kept for turnaround', () => {
    expect(run(ordered('P1', 'O1', null, 'xrchest', 'stat', 'o', at(8))).get('orders', 'O1')).toMatchObject({
      category: 'imaging',
      code: '36643-5',
      priority: 'stat',
      ordered_at: at(8),
    });
  });

  it('any cross-topic interleaving of the hospital day (merges aside) ends in the same rows', () => {
    const events = hospitalDay().filter((e) => e.type !== 'PatientsMerged');
    const streams = ['patient', 'encounter', 'order', 'result'].map((a) =>
      events.filter((e) => aggregateOf(e) === a),
    );
    const tables = ['encounters', 'orders', 'results', 'event_log', 'stream_clocks'] as const;
    const expected = snapshot(evolveAll<AnalyticsTables>(evolve, events), tables);
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        expect(snapshot(evolveAll<AnalyticsTables>(evolve, interleave(streams, rng(seed))), tables)).toBe(
          expected,
        );
      }),
      { numRuns: 200 },
    );
  });
});

describe('analytics: HL7 null semantics', () => {
  it('given visits and orders, when a patient update leaves fields out or clears them, then no fact changes (this read model keeps no demographics)', () => {
    const facts = [
      registered('P1', 'Kept', 'Kim', 'r1', at(7)),
      admitted('P1', 'E1', 'inpatient', '4WEST', 'a1', at(8)),
      ordered('P1', 'O1', 'E1', 'cbc', 'stat', 'o1', at(9)),
    ];
    const update = demographicsUpdated('P1', 'u1', at(10), {
      addresses: [],
      telecom: [],
      cleared: ['addresses'],
      notSent: ['telecom.home', 'telecom.work'],
    });
    const tables = ['encounters', 'orders', 'results'] as const;
    expect(snapshot(evolveAll<AnalyticsTables>(evolve, [...facts, update]), tables)).toBe(
      snapshot(evolveAll<AnalyticsTables>(evolve, facts), tables),
    );
  });
});
