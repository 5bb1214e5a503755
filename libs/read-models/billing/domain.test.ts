import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  evolveAll,
  evolveLearningMerges,
  interleave,
  snapshot,
} from '../../../test/support/read-model-testing.js';
import {
  admissionCancelled,
  admitted,
  aggregateOf,
  at,
  discharged,
  demographicsUpdated,
  dischargeCancelled,
  hospitalDay,
  merged,
  obs,
  orderCancelled,
  ordered,
  registered,
  resulted,
  rng,
  syntheticEvents,
  transferred,
} from '../../../test/support/hospital-day.js';
import { coverage } from '../../../test/support/coverage-diagnosis.js';
import { Draft } from '../../projections/store.js';
import type { ClinicalEvent } from '../../events/index.js';
import { withoutSkipped } from '../../../test/support/skipped-fields.js';
import {
  BILLING_SKIP,
  evolve,
  lineStatus,
  needs,
  periodBound,
  presence,
  type BillingTables,
} from './domain.js';

const run = (...events: ClinicalEvent[]) => evolveAll<BillingTables>(evolve, events);
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

describe('billing: coverage', () => {
  it('given a coverage, then it is kept by coverage id with payer, plan, member id and a whole-date period', () => {
    const d = run(coverage('P1', 'C1', 'in1', at(8), { periodStart: '2026', periodEnd: '2026-02' }));
    expect(d.get('coverages', 'C1')).toMatchObject({
      patient_id: 'P1',
      coverage_order: 1,
      payer_id: 'ACME01',
      payer_name: 'ACME Health',
      plan_code: 'GOLD',
      plan_display: 'ACME Gold PPO',
      plan_type: 'PPO',
      group_number: 'G-100',
      member_id: 'M-P1',
      relationship: 'SEL',
      period_start: '2026-01-01',
      period_end: '2026-02-28',
      status: 'active',
    });
  });

  it('given the same coverage restated, when the statements arrive in either order, then the later statement wins', () => {
    const first = coverage('P1', 'C1', 'in1', at(8), { memberId: 'OLD' });
    const second = coverage('P1', 'C1', 'in2', at(9), { memberId: 'NEW', status: 'cancelled' });
    for (const order of [
      [first, second],
      [second, first],
    ]) {
      expect(run(...order).get('coverages', 'C1')).toMatchObject({ member_id: 'NEW', status: 'cancelled' });
    }
  });

  it('given coverage recorded after the charges, then no account or line changes: the account finds it when read (view account_coverage)', () => {
    const facts = [
      admitted('P1', 'E1', 'inpatient', '4W', 'a1', at(8), 'ACME'),
      ordered('P1', 'O1', 'E1', 'cbc', 'stat', 'o1', at(9)),
      resulted('P1', 'R1', 'O1', 'E1', 'cbc', 'final', 'r1', at(10), v('final')),
    ];
    const cov = coverage('P1', 'C1', 'in1', at(11));
    const tables = ['accounts', 'charge_lines'] as const;
    expect(snapshot(run(...facts, cov), tables)).toBe(snapshot(run(...facts), tables));
    expect(snapshot(run(cov, ...facts), ['coverages'])).toBe(snapshot(run(...facts, cov), ['coverages']));
    // The financial class of older events stays on the account as it was.
    expect(run(...facts, cov).get('accounts', 'E1')?.payer).toBe('ACME');
  });

  it('given a coverage sent with a retired patient id after the merge, then it belongs to the survivor', () => {
    const d = evolveLearningMerges<BillingTables>(evolve, [
      merged('P3', 'P4', 'm1', at(8)),
      coverage('P4', 'C4', 'in4', at(9)),
    ]);
    expect(d.get('coverages', 'C4')?.patient_id).toBe('P3');
  });

  it('any cross-topic interleaving of a day with coverage ends in the same rows', () => {
    const events = [
      ...hospitalDay().filter((e) => e.type !== 'PatientsMerged'),
      coverage('P1', 'C1', 'in1', at(7, 30)),
      coverage('P2', 'C2', 'in2', at(9, 5), { order: 2 }),
      coverage('P1', 'C1', 'in1b', at(12), { memberId: 'M-P1-2' }),
    ];
    const streams = ['patient', 'encounter', 'order', 'result'].map((a) =>
      events.filter((e) => aggregateOf(e) === a),
    );
    const tables = ['accounts', 'charge_lines', 'coverages'] as const;
    const expected = snapshot(evolveAll<BillingTables>(evolve, events), tables);
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        expect(snapshot(evolveAll<BillingTables>(evolve, interleave(streams, rng(seed))), tables)).toBe(
          expected,
        );
      }),
      { numRuns: 100 },
    );
  });
});

describe('billing: coverage period bounds (property)', () => {
  it('given any full ISO date, then a start and an end bound are that date', () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date('1900-01-01'), max: new Date('2199-12-31'), noInvalidDate: true }),
        (dt) => {
          const day = dt.toISOString().slice(0, 10);
          expect(periodBound(day, 'start')).toBe(day);
          expect(periodBound(`${day}T10:00:00Z`, 'end')).toBe(day);
        },
      ),
    );
  });

  it('given partial or malformed dates, then starts open a period, ends close it, and what is not a date is an open bound', () => {
    expect(periodBound('2024-02', 'end')).toBe('2024-02-29');
    expect(periodBound('2026', 'end')).toBe('2026-12-31');
    expect(periodBound('2026-07', 'start')).toBe('2026-07-01');
    for (const bad of [null, '', '20260101', '2026-13', '2026-02-30', 'soon'])
      expect(periodBound(bad, 'start'), String(bad)).toBeNull();
  });
});

describe('billing: accounts an event only needs to exist (presence)', () => {
  const same = (id: string) => id;
  const known = () => new Draft<BillingTables>(undefined, { accounts: new Set(['E1']) });
  const o = ordered('P1', 'O1', 'E1', 'cbc', 'stat', 'o1', at(8));
  const r = resulted('P1', 'R1', 'O1', 'E1', 'cbc', 'final', 'r2', at(10), v('final'));
  const c = resulted('P1', 'R1', 'O1', 'E1', 'cbc', 'corrected', 'r3', at(11), v('corrected'));
  const t = transferred('P1', 'E1', '4WEST', '5EAST', 't1', at(9));

  it('given an order, result, correction or transfer, then its account is only needed to exist, not loaded', () => {
    expect(needs(o, same)).toEqual({ charge_lines: ['O1'] });
    expect(presence(o)).toEqual({ accounts: ['E1'] });
    expect(needs(r, same)).toEqual({ charge_lines: ['O1'] });
    expect(presence(r)).toEqual({ accounts: ['E1'] });
    expect(presence(c)).toEqual({ accounts: ['E1'] });
    expect(needs(t, same)).toEqual({});
    expect(presence(t)).toEqual({ accounts: ['E1'] });
    expect(presence(ordered('P1', 'O2', null, 'cbc', 'stat', 'o2', at(8)))).toEqual({});
  });

  it.each([
    ['an order', o],
    ['a result', r],
    ['a corrected result', c],
    ['a transfer', t],
  ])('given an account only known to exist, when %s is applied, then no stub is written over it', (_, e) => {
    const d = known();
    evolve(d, e, same);
    expect(d.changes('accounts')).toEqual({ upserts: [], deletes: [] });
  });

  it.each([
    ['an order', o],
    ['a result', r],
    ['a transfer', t],
  ])('given no account, when %s is applied, then its placeholder account is made', (_, e) => {
    const d = new Draft<BillingTables>();
    evolve(d, e, same);
    expect(d.get('accounts', 'E1')).toMatchObject({ status: 'placeholder', patient_id: 'P1' });
  });
});

describe('billing: the fields its runner does not decode (BILLING_SKIP)', () => {
  const tables = ['accounts', 'charge_lines', 'coverages'] as const;

  it('property: given any synthetic log with merges and coverage, when its events lack the skipped fields (as billing decodes them), then the rows, needs and presence are the same', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_000_000 }), fc.integer({ min: 50, max: 400 }), (seed, n) => {
        // Given a log with every kind of event billing reads, and the same log as its runner decodes it
        const events = [...syntheticEvents(n, seed), ...hospitalDay(), coverage('P1', 'C1', 'cov-1', at(6))];
        const lean = events.map((e) => withoutSkipped(e, BILLING_SKIP));
        // When both are evolved, then billing sees no difference
        expect(snapshot(evolveLearningMerges<BillingTables>(evolve, lean), [...tables])).toBe(
          snapshot(evolveLearningMerges<BillingTables>(evolve, events), [...tables]),
        );
        const id = (p: string) => p;
        expect(lean.map((e) => [needs(e, id), presence(e)])).toEqual(
          events.map((e) => [needs(e, id), presence(e)]),
        );
      }),
      { numRuns: 15 },
    );
  });
});
