import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectStatus, statusText } from '../../../cli/ops.js';
import { identityPolicyFromSite, isRegisteredSystem } from '../../identity/index.js';
import { parseSiteConfig } from '../../site-config/index.js';
import { admitted, at, ordered, registered } from '../../../test/support/hospital-day.js';
import { startProjectorRun, type ProjectorRun } from '../../../test/support/projectors.js';

/**
 * Unregistered authorities through the real projection: events on real
 * topics, the analytics projector with the site's registered authorities,
 * the documented view in Postgres, and `hub status` reading it.
 */
describe('analytics: unregistered authorities (real projection)', () => {
  let run: ProjectorRun;
  // hospital-day.ts: MRNs under urn:oid:2.16.840.1.113883.3.999.1 (registered here),
  // visit numbers under urn:genhosp:visit and placer numbers under urn:genhosp:placer (not).
  const site = parseSiteConfig(`
defaultTimeZone: UTC
authorities:
  - namespaceId: GENHOSP
    universalId: 2.16.840.1.113883.3.999.1
    universalIdType: ISO
    system: urn:oid:2.16.840.1.113883.3.999.1
`);
  const policy = identityPolicyFromSite(site, {});

  beforeAll(async () => {
    run = await startProjectorRun('unregauth', ['analytics'], {
      analytics: { isRegistered: (s) => isRegisteredSystem(s, policy) },
    });
  });
  afterAll(async () => {
    await run?.cleanup();
  });

  it('given events with registered and unregistered authorities, then the view lists the unregistered with counts, and hub status says what to do', async () => {
    await run.publishInOrder([
      registered('P1', 'Test', 'Ann', 'r1', at(7)),
      admitted('P1', 'E1', 'inpatient', '4WEST', 'a1', at(8)),
      admitted('P2', 'E2', 'emergency', 'ED', 'a2', at(9)),
      ordered('P1', 'O1', 'E1', 'cbc', 'routine', 'o1', at(10)),
    ]);
    await run.caughtUp();

    const rows = (
      await run.ctx.db.raw<{ rows: Record<string, unknown>[] }>(
        `select system, kinds, sources, events, first_seen, last_seen
           from "${run.stable.analytics}".v_unregistered_authorities order by system`,
      )
    ).rows;
    expect(rows).toEqual([
      {
        system: 'urn:genhosp:placer',
        kinds: 'placer order number',
        sources: 'EHR-ADT',
        events: 1,
        first_seen: new Date(at(10) + 30_000).toISOString().replace('.000Z', 'Z'),
        last_seen: new Date(at(10) + 30_000).toISOString().replace('.000Z', 'Z'),
      },
      {
        system: 'urn:genhosp:visit',
        kinds: 'visit number',
        sources: 'EHR-ADT',
        events: 2,
        first_seen: new Date(at(8) + 30_000).toISOString().replace('.000Z', 'Z'),
        last_seen: new Date(at(9) + 30_000).toISOString().replace('.000Z', 'Z'),
      },
    ]);

    const status = await collectStatus({
      env: {
        ...process.env,
        KAFKA_BROKERS: run.ctx.ep.kafkaBrokers.join(','),
        SCHEMA_REGISTRY_URL: run.ctx.ep.registryUrl,
        DATABASE_URL: run.ctx.ep.databaseUrl,
        HUB_TOPIC_SUFFIX: run.ctx.id,
        ANALYTICS_SCHEMA: run.stable.analytics,
      },
      schemaLike: 'no_such_schema',
      sourceSample: 1,
      defaultServices: [],
    });
    expect(status.unregisteredAuthorities.map((a) => [a.system, a.events])).toEqual([
      ['urn:genhosp:visit', 2],
      ['urn:genhosp:placer', 1],
    ]);
    expect(status.problems).toContainEqual(
      expect.stringMatching(
        /^unregistered authority urn:genhosp:visit: 2 event\(s\) \(visit number; from EHR-ADT; last .*\): add it to `authorities` in the site configuration \(HUB_SITE_CONFIG\) and restart/,
      ),
    );
    const text = statusText(status);
    expect(text).toContain('== unregistered authorities');
    expect(text).toMatch(/urn:genhosp:visit\s+2\s+visit number\s+EHR-ADT/);
  });
});
