import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVENT_CONTRACTS } from '../libs/events/index.js';
import {
  DEFAULT_IDENTITY_POLICY,
  enterprisePatientId,
  systemForHl7Authority,
} from '../libs/identity/index.js';
import type { Hl7Adapter } from '../services/adapter-hl7/app.js';
import { RawMllpClient, ackField } from './support/raw-mllp-client.js';
import { readTopic } from '../libs/hl7/raw-store.js';
import { createTestContext, eventually, type TestContext } from './support/harness.js';
import { testHl7Adapter } from './support/private-broker.js';
import { startPortalAndApi, type PortalApiProcesses } from './support/portal-api.js';
import { runHub } from './support/processes.js';

const ZONE = 'America/New_York';
const MRN = 'MRN-TZ-E2E-1';
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

interface Resource {
  resourceType: string;
  id?: string;
  period?: { start?: string };
  authoredOn?: string;
  effectiveDateTime?: string;
  issued?: string;
}
type Bundle = { entry?: { resource: Resource }[] };

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

/** A made-up order entered at 08:05 sender-local time (ORC-9), no offset. */
function order(controlId: string): string {
  return [
    `MSH|^~\\&|EHR|MERCY|HUB|HUB|20260115080500||ORM^O01^ORM_O01|${controlId}|P|2.5.1`,
    `PID|1||${MRN}^^^MERCY^MR||Zonetest^Ada||19700101|F`,
    'ORC|NW|TZ-ORD-1^MERCYORD|||||^^^^^R||20260115080500',
    'OBR|1|TZ-ORD-1^MERCYORD||2345-7^Glucose^LN||||||||||||||||||||CH',
  ].join('\r');
}

/**
 * Its result from the same sender: collected 08:30 (OBR-7), released 09:45
 * (OBR-22), one observation timed to the minute (OBX-14) and one to the day.
 */
function result(controlId: string): string {
  return [
    `MSH|^~\\&|EHR|MERCY|HUB|HUB|20260115094500||ORU^R01^ORU_R01|${controlId}|P|2.5.1`,
    `PID|1||${MRN}^^^MERCY^MR||Zonetest^Ada||19700101|F`,
    'ORC|RE|TZ-ORD-1^MERCYORD|TZ-FIL-1^MERCYLIS',
    'OBR|1|TZ-ORD-1^MERCYORD|TZ-FIL-1^MERCYLIS|2345-7^Glucose^LN|||202601150830|||||||||||||||202601150945||CH|F',
    'OBX|1|NM|2345-7^Glucose^LN||98|mg/dL^mg/dL^UCUM|70-99|N|||F|||202601150830',
    'OBX|2|NM|2339-0^Glucose [Mass/volume] in Blood^LN||101|mg/dL^mg/dL^UCUM|70-99|N|||F|||20260115',
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
    const tok = runHub(
      ['auth', 'token', '--ttl', '600', '--scope', 'user/*.rs', '--sub', 'tz-e2e'],
      services.env,
    );
    expect(tok.status, tok.stderr).toBe(0);
    token = tok.stdout.trim();
  }, 180_000);

  let token: string;
  const get = async (path: string) => {
    const res = await fetch(`http://127.0.0.1:${services.port}${path}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    return { status: res.status, body: (await res.json()) as Bundle };
  };
  const send = async (message: string) => {
    const client = await RawMllpClient.connect(mllpPort);
    await client.send(message);
    const ack = await client.nextAck(60_000);
    client.close();
    return ackField(ack, 'MSA', 1);
  };

  afterAll(async () => {
    await adapter?.stop();
    await services?.stop();
    await ctx?.cleanup();
  });

  it('an 08:00 local admission from a UTC-05:00 sender is 13:00Z on the event and 08:00-05:00 in Encounter.period.start', async () => {
    // Given a sender in New York, when it sends an A01 with PV1-44 = 202601150800 (no offset)
    expect(await send(admission('TZ-1'))).toBe('AA');

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
    const encounter = await eventually(
      async () => {
        const r = await get(`/fhir/Encounter?patient=${patientId}`);
        const e = r.body.entry?.[0]?.resource;
        return r.status === 200 && e ? e : undefined;
      },
      { what: 'the Encounter served by the API', timeoutMs: 90_000 },
    );
    expect(encounter.period?.start).toBe('2026-01-15T08:00:00-05:00');
    expect(Date.parse(encounter.period!.start!)).toBe(Date.UTC(2026, 0, 15, 13, 0));

    // The same through Patient/$everything
    const all = await get(`/fhir/Patient/${patientId}/$everything`);
    expect(all.status).toBe(200);
    const enc = all.body.entry?.find((x) => x.resource.resourceType === 'Encounter')?.resource;
    expect(enc?.period?.start).toBe('2026-01-15T08:00:00-05:00');

    // And a date search in UTC terms still finds it (the stored value stays UTC)
    const found = await get(
      `/fhir/Encounter?patient=${patientId}&date=ge2026-01-15T12:30:00Z&date=lt2026-01-15T13:30:00Z`,
    );
    expect(found.status).toBe(200);
    expect(found.body.entry?.length).toBe(1);
  }, 240_000);

  it('an order and its result from the same New York sender show authoredOn, effective and issued times in -05:00', async () => {
    // Given the New York sender, when it sends an order entered at 08:05 and its result
    // collected at 08:30 and released at 09:45, all without offsets
    expect(await send(order('TZ-2'))).toBe('AA');
    expect(await send(result('TZ-3'))).toBe('AA');

    // Then the API serves ServiceRequest.authoredOn in the sender's offset
    const request = await eventually(
      async () => {
        const r = await get(`/fhir/ServiceRequest?patient=${patientId}`);
        return r.status === 200 ? r.body.entry?.[0]?.resource : undefined;
      },
      { what: 'the ServiceRequest served by the API', timeoutMs: 90_000 },
    );
    expect(request.authoredOn).toBe('2026-01-15T08:05:00-05:00');

    // And DiagnosticReport.effectiveDateTime (dateTime) and issued (instant) likewise
    const report = await eventually(
      async () => {
        const r = await get(`/fhir/DiagnosticReport?patient=${patientId}`);
        return r.status === 200 ? r.body.entry?.[0]?.resource : undefined;
      },
      { what: 'the DiagnosticReport served by the API', timeoutMs: 90_000 },
    );
    expect(report.effectiveDateTime).toBe('2026-01-15T08:30:00-05:00');
    expect(report.issued).toBe('2026-01-15T09:45:00-05:00');

    // And each Observation.effectiveDateTime as sent: to the minute in -05:00, or the date alone
    const observations = await get(`/fhir/Observation?patient=${patientId}`);
    expect(observations.status).toBe(200);
    const effective = (observations.body.entry ?? []).map((e) => e.resource.effectiveDateTime).sort();
    expect(effective).toEqual(['2026-01-15', '2026-01-15T08:30:00-05:00']);

    // And date search compares instants: 13:05Z is the order's 08:05-05:00
    const byInstant = await get(
      `/fhir/ServiceRequest?patient=${patientId}&date=ge2026-01-15T13:05:00Z&date=lt2026-01-15T13:06:00Z`,
    );
    expect(byInstant.body.entry?.map((e) => e.resource.authoredOn)).toEqual(['2026-01-15T08:05:00-05:00']);
    const before = await get(`/fhir/DiagnosticReport?patient=${patientId}&date=lt2026-01-15T13:30:00Z`);
    expect(before.body.entry ?? []).toHaveLength(0);
    const after = await get(`/fhir/DiagnosticReport?patient=${patientId}&date=ge2026-01-15T13:30:00Z`);
    expect(after.body.entry ?? []).toHaveLength(1);
  }, 240_000);
});
