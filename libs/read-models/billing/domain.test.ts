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
  orderCancelled,
  ordered,
  registered,
  resulted,
  rng,
} from '../../../test/support/hospital-day.js';
import { evolve, lineStatus, type BillingTables } from './domain.js';

const run = (...events: Parameters<typeof evolve>[1][]) => evolveAll<BillingTables>(evolve, events);
const v = (st: string) => [obs('718-7', 'Hgb', 10, 'g/dL', null, st)];

describe('billing: charge line lifecycle', () => {
  it('given an order, then its line is pending', () => {
    const d = run(ordered('P1', 'O1', 'E1', 'cbc', 'stat', 'o1', at(8)));
    expect(d.get('charge_lines', 'O1')).toMatchObject({ status: 'pending', code: '58410-2', placed: true });
  });

  it('given an order, when a preliminary then a final result arrive, then it is billable only after the final', () => {
    const o = ordered('P1', 'O1', 'E1', 'cbc', 'stat', 'o1', at(8));
    const p = resulted('P1', 'R1', 'O1', 'E1', 'cbc', 'preliminary', 'r1', at(9), v('preliminary'));
    const f = resulted('P1', 'R1', 'O1', 'E1', 'cbc', 'final', 'r2', at(10), v('final'));
    expect(run(o, p).get('charge_lines', 'O1')?.status).toBe('pending');
    expect(run(o, p, f).get('charge_lines', 'O1')).toMatchObject({
      status: 'billable',
      first_final_at: at(10),
    });
  });

  it('given a billable line, when the result is corrected, then there is still exactly one charge', () => {
    const d = run(
      ordered('P1', 'O1', 'E1', 'cbc', 'stat', 'o1', at(8)),
      resulted('P1', 'R1', 'O1', 'E1', 'cbc', 'final', 'r2', at(10), v('final')),
      resulted('P1', 'R1', 'O1', 'E1', 'cbc', 'corrected', 'r3', at(11), v('corrected')),
    );
    expect([...d.all('charge_lines').keys()]).toEqual(['O1']);
    expect(d.get('charge_lines', 'O1')).toMatchObject({ status: 'billable', first_final_at: at(10) });
  });

  it('given a result before its order, then the line waits as unordered and becomes billable when the order arrives', () => {
    const r = resulted('P1', 'R1', 'O1', 'E1', 'cbc', 'final', 'r2', at(10), v('final'));
    expect(run(r).get('charge_lines', 'O1')?.status).toBe('unordered');
    expect(
      run(r, ordered('P1', 'O1', 'E1', 'cbc', 'stat', 'o1', at(8))).get('charge_lines', 'O1')?.status,
    ).toBe('billable');
  });

  it('given a cancelled order, then its line is voided', () => {
    const d = run(
      ordered('P1', 'O1', 'E1', 'cbc', 'stat', 'o1', at(8)),
      orderCancelled('P1', 'O1', 'o2', at(9)),
    );
    expect(d.get('charge_lines', 'O1')?.status).toBe('voided');
    expect(lineStatus({ placed: true, order_cancelled: true, first_final_at: at(10) })).toBe('voided');
  });
});

describe('billing: accounts', () => {
  it('given an admission with a payer and a discharge, then the account is discharged', () => {
    const d = run(
      admitted('P1', 'E1', 'inpatient', '4W', 'a1', at(8), 'ACME'),
      discharged('P1', 'E1', 'a2', at(12)),
    );
    expect(d.get('accounts', 'E1')).toMatchObject({
      status: 'discharged',
      payer: 'ACME',
      encounter_class: 'inpatient',
      admitted_at: at(8),
      discharged_at: at(12),
    });
  });

  it('given an order before its encounter, then a placeholder account is filled by the admission', () => {
    const o = ordered('P1', 'O1', 'E1', 'cbc', 'stat', 'o1', at(8));
    expect(run(o).get('accounts', 'E1')?.status).toBe('placeholder');
    expect(run(o, admitted('P1', 'E1', 'inpatient', '4W', 'a1', at(7))).get('accounts', 'E1')?.status).toBe(
      'open',
    );
  });

  it('given a discharge that is cancelled, then the account is open again', () => {
    const d = run(
      admitted('P1', 'E1', 'inpatient', '4W', 'a1', at(8)),
      discharged('P1', 'E1', 'a2', at(12)),
      dischargeCancelled('P1', 'E1', 'a3', at(13)),
    );
    expect(d.get('accounts', 'E1')).toMatchObject({ status: 'open', discharged_at: null });
  });

  it('given a cancelled admission, then the account is cancelled', () => {
    const d = run(
      admitted('P3', 'E3', 'inpatient', '5E', 'a1', at(8)),
      admissionCancelled('P3', 'E3', 'a2', at(9)),
    );
    expect(d.get('accounts', 'E3')?.status).toBe('cancelled');
  });

  it('any cross-topic interleaving of the hospital day (merges aside) ends in the same rows', () => {
    const events = hospitalDay().filter((e) => e.type !== 'PatientsMerged');
    const streams = ['patient', 'encounter', 'order', 'result'].map((a) =>
      events.filter((e) => aggregateOf(e) === a),
    );
    const tables = ['accounts', 'charge_lines'] as const;
    const expected = snapshot(evolveAll<BillingTables>(evolve, events), tables);
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        expect(snapshot(evolveAll<BillingTables>(evolve, interleave(streams, rng(seed))), tables)).toBe(
          expected,
        );
      }),
      { numRuns: 200 },
    );
  });
});

describe('billing: HL7 null semantics', () => {
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
    const tables = ['accounts', 'charge_lines'] as const;
    expect(snapshot(evolveAll<BillingTables>(evolve, [...facts, update]), tables)).toBe(
      snapshot(evolveAll<BillingTables>(evolve, facts), tables),
    );
  });
});
