import { describe, expect, it } from 'vitest';
import { identityPolicyFromSite, isRegisteredSystem } from '../../identity/index.js';
import type { Draft } from '../../projections/store.js';
import { evolveAll, snapshot } from '../../../test/support/read-model-testing.js';
import { admitted, at, ordered, registered } from '../../../test/support/hospital-day.js';
import { authorityNeeds, countAuthorities, keyedIdentifiers, memoIsRegistered } from './authorities.js';
import type { AnalyticsTables } from './domain.js';

// hospital-day.ts: MRNs under urn:oid:2.16.840.1.113883.3.999.1, visits urn:genhosp:visit, orders urn:genhosp:placer.
const policy = identityPolicyFromSite(
  {
    authorities: [{ namespaceId: 'GENHOSP', system: 'urn:oid:2.16.840.1.113883.3.999.1' }],
    enterpriseSystems: [],
  },
  {},
);
const isRegistered = (s: string) => isRegisteredSystem(s, policy);
const count = (d: Draft<AnalyticsTables>, e: Parameters<typeof countAuthorities>[1]) =>
  countAuthorities(d, e, isRegistered);

describe('analytics: unregistered authorities', () => {
  const events = [
    registered('P1', 'Test', 'Ann', 'r1', at(7)),
    admitted('P1', 'E1', 'inpatient', '4WEST', 'a1', at(8)),
    admitted('P2', 'E2', 'inpatient', '4WEST', 'a2', at(9)),
    ordered('P1', 'O1', 'E1', 'cbc', 'routine', 'o1', at(10)),
  ];

  it('given events with registered and unregistered systems, then only the unregistered are counted, by kind and sender', () => {
    const d = evolveAll<AnalyticsTables>(count, events);
    const rows = [...d.all('unregistered_authorities').values()];
    expect(rows.map((r) => r.system).sort()).toEqual(['urn:genhosp:placer', 'urn:genhosp:visit']);
    expect(d.get('unregistered_authorities', 'urn:genhosp:visit')).toEqual({
      system: 'urn:genhosp:visit',
      events: 2,
      first_seen_at: at(8) + 30_000,
      last_seen_at: at(9) + 30_000,
      kinds: ['visit number'],
      sources: ['EHR-ADT'],
    });
    expect(d.get('unregistered_authorities', 'urn:genhosp:placer')?.kinds).toEqual(['placer order number']);
  });

  it('given the same events in another order, then the same rows (a replay rebuilds them)', () => {
    expect(
      snapshot(evolveAll<AnalyticsTables>(count, [...events].reverse()), ['unregistered_authorities']),
    ).toBe(snapshot(evolveAll<AnalyticsTables>(count, events), ['unregistered_authorities']));
  });

  it('needs exactly the rows it will write; values never appear', () => {
    expect(authorityNeeds(events[0]!, isRegistered)).toEqual({});
    expect(authorityNeeds(events[1]!, isRegistered)).toEqual({
      unregistered_authorities: ['urn:genhosp:visit'],
    });
    const d = evolveAll<AnalyticsTables>(count, events);
    expect(JSON.stringify([...d.all('unregistered_authorities').values()])).not.toMatch(/MRN-P1|E1|O1/);
  });

  it('reads patient, merged, visit and order identifiers; not clinician ids', () => {
    expect(keyedIdentifiers(events[3]!).map((k) => k.kind)).toEqual(['placer order number']);
    expect(keyedIdentifiers(events[0]!).map((k) => k.kind)).toEqual(['patient identifier']);
  });
});

describe('analytics: the registered answer, memoised per system', () => {
  it('given the same systems asked again, then the configuration is asked once per system and answers the same', () => {
    const asked: string[] = [];
    const memo = memoIsRegistered((s) => {
      asked.push(s);
      return isRegistered(s);
    });
    const systems = ['urn:oid:2.16.840.1.113883.3.999.1', 'urn:genhosp:visit'];
    const first = systems.map(memo);
    const again = systems.map(memo);
    expect(first).toEqual([true, false]);
    expect(again).toEqual(first);
    expect(asked).toEqual(systems);
  });

  it('given more systems than the bound, then it starts over instead of growing, and still answers right', () => {
    const asked: string[] = [];
    const memo = memoIsRegistered((s) => (asked.push(s), s === 'a'), 2);
    expect(['a', 'b', 'c', 'a'].map(memo)).toEqual([true, false, false, true]);
    expect(asked).toEqual(['a', 'b', 'c', 'a']);
  });
});
