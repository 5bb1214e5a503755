import { describe, expect, it } from 'vitest';
import { at, registered } from '../../test/support/hospital-day.js';
import { linked, proposed, rejected, unlinked } from '../../test/support/identity-events.js';
import { evolveAll, snapshot } from '../../test/support/read-model-testing.js';
import { evolve as billingEvolve, type BillingTables } from '../read-models/billing/domain.js';
import { evolve as portalEvolve, type PortalTables } from '../read-models/portal/domain.js';
import { personLinkOf } from './store.js';

describe('person links: what an identity event records', () => {
  it('given PatientsLinked, then a linked row keyed by the pair, lower id first', () => {
    const e = linked('P2', 'P1', 'l1', at(8));
    expect(personLinkOf(e)).toEqual({
      pair_key: 'P1|P2',
      patient_id: 'P1',
      other_patient_id: 'P2',
      linked: true,
      event_id: e.data.meta.eventId,
    });
  });

  it('given PatientsUnlinked of the same pair, then the same key, not linked', () => {
    expect(personLinkOf(unlinked('P1', 'P2', 'u1', at(9)))).toMatchObject({
      pair_key: 'P1|P2',
      linked: false,
    });
  });

  it('given a sender that names the higher id first, then the pair key is the same', () => {
    const e = linked('P1', 'P2', 'l2', at(8));
    if (e.type !== 'PatientsLinked') throw new Error('unexpected');
    const swapped = { ...e, data: { ...e.data, patientId: 'P2', otherPatientId: 'P1' } };
    expect(personLinkOf(swapped)).toMatchObject({
      pair_key: 'P1|P2',
      patient_id: 'P1',
      other_patient_id: 'P2',
    });
  });

  it('given a proposal, a rejection or a clinical event, then nothing', () => {
    expect(personLinkOf(proposed('P1', 'P2', 'p1', at(8)))).toBeNull();
    expect(personLinkOf(rejected('P1', 'P2', 'r1', at(8)))).toBeNull();
    expect(personLinkOf(registered('P1', 'A', 'B', 'reg', at(7)))).toBeNull();
  });
});

describe('person links: the read models rewrite no row', () => {
  const reg = [registered('P1', 'Doe', 'Jane', 'r1', at(7)), registered('P2', 'Doe', 'Jnae', 'r2', at(7))];
  const decisions = [
    proposed('P1', 'P2', 'p', at(8)),
    linked('P1', 'P2', 'l', at(9)),
    unlinked('P1', 'P2', 'u', at(10)),
    rejected('P1', 'P2', 'x', at(11)),
  ];

  it('given identity decisions after registrations, when the portal evolves, then its rows are as without them', () => {
    const tables = ['patients', 'encounters'] as const;
    expect(snapshot(evolveAll<PortalTables>(portalEvolve, [...reg, ...decisions]), tables)).toBe(
      snapshot(evolveAll<PortalTables>(portalEvolve, reg), tables),
    );
  });

  it('given identity decisions, when billing evolves, then it has no row', () => {
    const d = evolveAll<BillingTables>(billingEvolve, decisions);
    expect([d.all('accounts').size, d.all('charge_lines').size, d.all('coverages').size]).toEqual([0, 0, 0]);
  });
});
