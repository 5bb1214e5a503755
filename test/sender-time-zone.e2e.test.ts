import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVENT_CONTRACTS } from '../libs/events/index.js';
import {
  DEFAULT_IDENTITY_POLICY,
  enterprisePatientId,
  systemForHl7Authority,
} from '../libs/identity/index.js';
import type { Hl7Adapter } from '../services/adapter-hl7/app.js';
import { RawMllpClient, ackField } from '../services/adapter-hl7/raw-client.js';
import { readTopic } from '../services/adapter-hl7/raw-store.js';
import { createTestContext, eventually, type TestContext } from './support/harness.js';
import { testHl7Adapter } from './support/private-broker.js';
import { startPortalAndApi, type PortalApiProcesses } from './support/portal-api.js';
import { runHub } from './support/processes.js';

const ZONE = 'America/New_York';
const MRN = 'MRN-TZ-E2E-1';

/** A made-up admission at 08:00 sender-local time, no offset anywhere in the message. */
function admission(controlId: string): string {
  const pv1: string[] = ['PV1', '1', 'I', 'W1^101^A^MERCY'];
  pv1[10] = 'MED';
  pv1[19] = `V-${controlId}^^^MERCY^VN`;
  pv1[44] = '202601150800';
  return [
    `MSH|^~\\&|EHR|MERCY|HUB|HUB|20260115081500||ADT^A01^ADT_A01|${controlId}|P|2.5.1`,
    'EVN|A01|20260115081500',
    `PID|1||${MRN}^^^MERCY^MR||Zonetest^Ada||19700101|F`,
    Array.from(pv1, (f) => f ?? '').join('|'),
  ].join('\r');
}

/**
 * HL7 v2 times without an offset are the sender's local time: an admission
 * at 08:00 from a sender in New York (UTC-05:00 in January) is 13:00Z on the
 * event and 08:00-05:00 in the portal's FHIR Encounter.period.start, through
 * the real HL7 adapter (MLLP socket, sender zone as the site configuration
 * gives it), Kafka, the portal projector and the API (their own processes).
 */
describe('sender time zone end to end: MLLP -> Kafka -> portal -> API', () => {
  let ctx: TestContext;
  let adapter: Hl7Adapter;
  let mllpPort: number;
  let services: PortalApiProcesses;

  beforeAll(async () => {
    ctx = await createTestContext('tze2e');
    adapter = testHl7Adapter(ctx, ctx.producer, {
      controlIdPrefix: 'TZACK',
      // As the site configuration resolves it for this sender (MSH-3 EHR, MSH-4 MERCY).
      timeZoneFor: (app, facility) => (app === 'EHR' && facility === 'MERCY' ? ZONE : 'UTC'),
    });
    mllpPort = (await adapter.start()).port;
    services = await startPortalAndApi(ctx);
  }, 180_000);

  afterAll(async () => {
    await adapter?.stop();
    await services?.stop();
    await ctx?.cleanup();
  });

  it('an 08:00 local admission from a UTC-05:00 sender is 13:00Z on the event and 08:00-05:00 in Encounter.period.start', async () => {
    // Given a sender in New York, when it sends an A01 with PV1-44 = 202601150800 (no offset)
    const client = await RawMllpClient.connect(mllpPort);
    await client.send(admission('TZ-1'));
    const ack = await client.nextAck(60_000);
    client.close();
    expect(ackField(ack, 'MSA', 1)).toBe('AA');

    // Then the event on the log holds 13:00Z, with the precision and offset the sender meant
    const topic = ctx.topic(EVENT_CONTRACTS.EncounterStarted.topic);
    const records = await readTopic(ctx.kafka, topic);
    const started = [];
    for (const r of records) {
      const e = await ctx.codec.decode(r.value);
      if (e.type === 'EncounterStarted' && e.data.meta.source.messageId === 'TZ-1') started.push(e.data);
    }
    expect(started).toHaveLength(1);
    expect(started[0]!.admittedAt).toBe(Date.UTC(2026, 0, 15, 13, 0));
    expect(new Date(started[0]!.admittedAt!).toISOString()).toBe('2026-01-15T13:00:00.000Z');
    expect(started[0]!.meta.sourceTimes).toContainEqual({
      field: 'admittedAt',
      precision: 'minute',
      offsetMinutes: -300,
      zoned: true,
    });

    // And the portal's FHIR Encounter, read through the API, starts at 08:00-05:00
    const patientId = enterprisePatientId(
      [
        {
          system: systemForHl7Authority({ namespaceId: 'MERCY' }, DEFAULT_IDENTITY_POLICY),
          value: MRN,
          type: 'MR',
        },
      ],
      DEFAULT_IDENTITY_POLICY,
    );
    expect(patientId).toBeDefined();
    const tok = runHub(
      ['auth', 'token', '--ttl', '300', '--scope', 'user/*.rs', '--sub', 'tz-e2e'],
      services.env,
    );
    expect(tok.status, tok.stderr).toBe(0);
    const token = tok.stdout.trim();
    const get = async (path: string) => {
      const res = await fetch(`http://127.0.0.1:${services.port}${path}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    type Bundle = { entry?: { resource: { resourceType: string; period?: { start?: string } } }[] };
    const encounter = await eventually(
      async () => {
        const r = await get(`/fhir/Encounter?patient=${patientId}`);
        const e = (r.body as Bundle).entry?.[0]?.resource;
        return r.status === 200 && e ? e : undefined;
      },
      { what: 'the Encounter served by the API', timeoutMs: 90_000 },
    );
    expect(encounter.period?.start).toBe('2026-01-15T08:00:00-05:00');
    expect(Date.parse(encounter.period!.start!)).toBe(Date.UTC(2026, 0, 15, 13, 0));

    // The same through Patient/$everything
    const all = await get(`/fhir/Patient/${patientId}/$everything`);
    expect(all.status).toBe(200);
    const enc = (all.body as Bundle).entry?.find((x) => x.resource.resourceType === 'Encounter')?.resource;
    expect(enc?.period?.start).toBe('2026-01-15T08:00:00-05:00');

    // And a date search in UTC terms still finds it (the stored value stays UTC)
    const found = await get(
      `/fhir/Encounter?patient=${patientId}&date=ge2026-01-15T12:30:00Z&date=lt2026-01-15T13:30:00Z`,
    );
    expect(found.status).toBe(200);
    expect((found.body as Bundle).entry?.length).toBe(1);
  }, 240_000);
});
