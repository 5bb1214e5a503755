import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVENT_CONTRACTS, type ClinicalEvent } from '../libs/events/index.js';
import { endOffsets } from '../libs/kafka/admin.js';
import { tableHashes } from '../libs/projections/inspect.js';
import { ANALYST_ROLE } from '../libs/read-models/analytics/views.js';
import { eventually } from './support/harness.js';
import { aggregateOf, at, hospitalDay, ordered } from './support/hospital-day.js';
import { PROJECTORS, startProjectorRun, type ProjectorRun } from './support/projectors.js';

type Row = Record<string, unknown>;

/**
 * The scripted hospital day through the three projector services, asserted
 * through SQL only. The same events are then published to a second set of
 * topics in the worst cross-topic order (results, then orders, then
 * encounters, then patients, each fully applied before the next), and every
 * content table must hash the same.
 */
describe('hospital day: billing, analytics and portal read models', () => {
  let live: ProjectorRun;
  let reversed: ProjectorRun;
  const events = hospitalDay();
  const poison = ordered('P2', 'O-POISON', 'E2', 'tsh', 'routine', 'orm-poison', at(17));
  // The hub's own producer refuses a NUL (libs/events text guard), so the poison
  // record is written as another producer would: encoded with U+0001, which
  // is then patched to NUL in the Avro bytes (same length).
  if (poison.type === 'OrderPlaced') poison.data.code = { ...poison.data.code, display: 'TSH\u0001' };
  async function publishWithNul(run: ProjectorRun, e: ClinicalEvent): Promise<void> {
    const topic = run.ctx.topic(EVENT_CONTRACTS[e.type].topic);
    const value = await run.ctx.codec.encode(e, topic);
    const at = value.indexOf(Buffer.from('TSH\u0001', 'latin1'));
    expect(at).toBeGreaterThan(0);
    value[at + 3] = 0;
    await run.ctx.producer.publishRaw([
      {
        topic,
        key: e.data.patientId,
        value,
        headers: { 'hub-event-type': e.type, 'hub-event-id': e.data.meta.eventId },
      },
    ]);
  }
  const after = ordered('P2', 'O-AFTER', 'E2', 'tsh', 'routine', 'orm-after', at(17, 5));

  beforeAll(async () => {
    live = await startProjectorRun('hday');
    // Sent in the sources' order, a few at a time, plus one resend of an order (same event id).
    await live.publishInOrder(events, 3);
    await live.publishInOrder([events.find((e) => e.type === 'OrderPlaced')!]);
    // A record no projector can decode, and a valid event no projector can
    // store (a NUL character, which Postgres text refuses): each is parked
    // with its reason, the partition moves on.
    await live.ctx.producer.publishRaw([
      { topic: live.ctx.topic('clinical.order.v1'), key: 'P1', value: Buffer.from('not avro') },
    ]);
    await publishWithNul(live, poison);
    await live.publishInOrder([after]);
    await live.caughtUp();

    reversed = await startProjectorRun('hdayrev');
    for (const agg of ['result', 'order', 'encounter', 'patient'] as const) {
      const part: ClinicalEvent[] = events.filter((e) => aggregateOf(e) === agg);
      if (agg === 'order') part.push(events.find((e) => e.type === 'OrderPlaced')!);
      await reversed.publishInOrder(part, 50);
      if (agg === 'order') {
        await publishWithNul(reversed, poison);
        await reversed.publishInOrder([after]);
      }
      await reversed.caughtUp();
    }
  });
  afterAll(async () => {
    await live?.cleanup();
    await reversed?.cleanup();
  });

  const q = async (sql: string): Promise<Row[]> => (await live.ctx.db.raw<{ rows: Row[] }>(sql)).rows;

  it('portal: demographics, encounters, orders and only released results, FHIR-shaped', async () => {
    const s = live.stable.portal;
    const p1 = await q(
      `select resource_type, resource_id, resource from ${s}.patient_record where patient_id = 'P1' order by 1, 2`,
    );
    expect(p1.map((r) => `${String(r['resource_type'])}/${String(r['resource_id'])}`)).toEqual([
      'DiagnosticReport/R1',
      'DiagnosticReport/R2',
      'Encounter/E1',
      'Observation/R1-1',
      'Patient/P1',
      'ServiceRequest/O1',
      'ServiceRequest/O2',
    ]);
    const byId = new Map(p1.map((r) => [r['resource_id'], r['resource'] as Row]));
    // The correction supersedes the final; the preliminary never showed.
    expect(byId.get('R1')).toMatchObject({ resourceType: 'DiagnosticReport', status: 'corrected' });
    expect(byId.get('R1-1')).toMatchObject({ valueQuantity: { value: 10.4, unit: 'g/dL' } });
    expect(byId.get('R2')).toMatchObject({
      status: 'final',
      conclusion: 'No acute cardiopulmonary process.',
    });
    expect(byId.get('E1')).toMatchObject({
      status: 'finished',
      class: { code: 'IMP' },
      subject: { reference: 'Patient/P1' },
      location: [{ status: 'completed' }, { status: 'completed', location: { display: 'ICU / 7 / B' } }],
    });
    expect(byId.get('P1')).toMatchObject({
      resourceType: 'Patient',
      active: true,
      name: [{ family: 'Alpha' }],
    });

    // Preliminary-only R12 is hidden; the order is visible. R9's order was never placed here: a stub
    // ServiceRequest (status unknown) stands in for it so that the report's basedOn resolves.
    const p2 = await q(`select resource_id from ${s}.patient_record where patient_id = 'P2' order by 1`);
    expect(p2.map((r) => r['resource_id'])).toEqual([
      'E2',
      'O-AFTER',
      'O-UNKNOWN',
      'O3',
      'O6',
      'O9',
      'P2',
      'R3',
      'R3-1',
      'R9',
      'R9-1',
    ]);
    const o6 = await q(
      `select resource->>'status' as status from ${s}.service_requests where order_id = 'O6'`,
    );
    expect(o6[0]?.['status']).toBe('revoked');

    // The cancelled admission is not shown.
    expect(await q(`select 1 from ${s}.patient_record where resource_id = 'E3'`)).toHaveLength(0);
    // Encounter before registration: the placeholder was filled.
    const p5 = await q(
      `select placeholder, resource->'name'->0->>'family' as family from ${s}.patients where patient_id = 'P5'`,
    );
    expect(p5).toEqual([{ placeholder: false, family: 'Echo' }]);
  });

  it('portal: the merge moved everything of P4 to P3, including facts sent with the retired id afterwards', async () => {
    const s = live.stable.portal;
    const p3 = await q(`select resource_id from ${s}.patient_record where patient_id = 'P3' order by 1`);
    expect(p3.map((r) => r['resource_id'])).toEqual(['E4', 'O4', 'O5', 'O7', 'P3', 'R4', 'R4-1']);
    for (const t of ['encounters', 'service_requests', 'reports', 'observations']) {
      expect(
        await q(
          `select 1 from ${s}.${t} where patient_id = 'P4' or resource->'subject'->>'reference' = 'Patient/P4'`,
        ),
      ).toHaveLength(0);
    }
    const p4 = await q(`select merged_into, resource from ${s}.patients where patient_id = 'P4'`);
    expect(p4[0]).toMatchObject({
      merged_into: 'P3',
      resource: { active: false, link: [{ type: 'replaced-by', other: { reference: 'Patient/P3' } }] },
    });
  });

  it('billing: accounts per encounter, charge lifecycle, one charge despite a correction, problems view', async () => {
    const s = live.stable.billing;
    const accounts = await q(
      `select encounter_id, patient_id, encounter_class, status, payer from ${s}.accounts order by 1`,
    );
    expect(accounts).toEqual([
      {
        encounter_id: 'E1',
        patient_id: 'P1',
        encounter_class: 'inpatient',
        status: 'discharged',
        payer: 'ACME Health',
      },
      {
        encounter_id: 'E2',
        patient_id: 'P2',
        encounter_class: 'emergency',
        status: 'discharged',
        payer: 'Medicare',
      },
      {
        encounter_id: 'E3',
        patient_id: 'P3',
        encounter_class: 'inpatient',
        status: 'cancelled',
        payer: null,
      },
      {
        encounter_id: 'E4',
        patient_id: 'P3',
        encounter_class: 'outpatient',
        status: 'discharged',
        payer: 'BlueCross',
      },
      { encounter_id: 'E5', patient_id: 'P5', encounter_class: 'inpatient', status: 'open', payer: null },
    ]);
    const charges = await q(
      `select line_id, patient_id, status, cpt, price_cents from ${s}.charges order by 1`,
    );
    expect(charges).toEqual([
      { line_id: 'O-AFTER', patient_id: 'P2', status: 'pending', cpt: '84443', price_cents: 5000 },
      { line_id: 'O-UNKNOWN', patient_id: 'P2', status: 'unordered', cpt: '80053', price_cents: 6100 },
      { line_id: 'O1', patient_id: 'P1', status: 'billable', cpt: '85027', price_cents: 4500 },
      { line_id: 'O2', patient_id: 'P1', status: 'billable', cpt: '71046', price_cents: 18000 },
      { line_id: 'O3', patient_id: 'P2', status: 'billable', cpt: '84484', price_cents: 7000 },
      { line_id: 'O4', patient_id: 'P3', status: 'billable', cpt: '83036', price_cents: 3500 },
      { line_id: 'O5', patient_id: 'P3', status: 'pending', cpt: '84443', price_cents: 5000 },
      { line_id: 'O6', patient_id: 'P2', status: 'voided', cpt: '80061', price_cents: 5500 },
      { line_id: 'O7', patient_id: 'P3', status: 'voided', cpt: '80053', price_cents: 6100 },
      { line_id: 'O8', patient_id: 'P5', status: 'pending', cpt: null, price_cents: null },
      { line_id: 'O9', patient_id: 'P2', status: 'pending', cpt: '80048', price_cents: 4000 },
    ]);
    const problems = await q(`select problem, line_id from ${s}.billing_problems order by 1, 2`);
    expect(problems).toEqual([
      { problem: 'charge_on_cancelled_encounter', line_id: 'O7' },
      { problem: 'charge_without_price', line_id: 'O8' },
      // The day records no coverage (CoverageRecorded): every account with charges is flagged (E1, E2, E4, E5).
      ...Array.from({ length: 4 }, () => ({ problem: 'charges_without_coverage', line_id: null })),
      { problem: 'resulted_order_without_charge', line_id: 'O-UNKNOWN' },
    ]);
    // The chargemaster is editable and prices are read live.
    await q(`update ${s}.chargemaster set price_cents = 9900 where code = '4548-4'`);
    expect(await q(`select price_cents from ${s}.charges where line_id = 'O4'`)).toEqual([
      { price_cents: 9900 },
    ]);
  });

  it('analytics: census, admissions, discharges, LOS, turnaround, ED, result volumes, data quality, usage', async () => {
    const s = live.stable.analytics;
    expect(
      await q(`select day::text, unit, encounter_class, admissions from ${s}.v_daily_admissions order by 2`),
    ).toEqual([
      { day: '2026-03-02', unit: '3NORTH', encounter_class: 'inpatient', admissions: 1 },
      { day: '2026-03-02', unit: '4WEST', encounter_class: 'inpatient', admissions: 1 },
      { day: '2026-03-02', unit: 'CLINIC', encounter_class: 'outpatient', admissions: 1 },
      { day: '2026-03-02', unit: 'ED', encounter_class: 'emergency', admissions: 1 },
    ]);
    expect(await q(`select day::text, unit, discharges from ${s}.v_daily_discharges order by 1, 2`)).toEqual([
      { day: '2026-03-02', unit: 'CLINIC', discharges: 1 },
      { day: '2026-03-02', unit: 'ED', discharges: 1 },
      { day: '2026-03-03', unit: 'ICU', discharges: 1 },
    ]);
    expect(await q(`select day::text, unit, census from ${s}.v_daily_census order by 1, 2`)).toEqual([
      { day: '2026-03-02', unit: '3NORTH', census: 1 },
      { day: '2026-03-02', unit: 'ICU', census: 1 },
      { day: '2026-03-03', unit: '3NORTH', census: 1 },
    ]);
    const los = await q(
      `select encounter_class, encounters, p50_hours::float as h from ${s}.v_length_of_stay order by 1`,
    );
    expect(los).toEqual([
      { encounter_class: 'emergency', encounters: 1, h: 4.5 },
      { encounter_class: 'inpatient', encounters: 1, h: 26 },
      { encounter_class: 'outpatient', encounters: 1, h: 3 },
    ]);
    const tat = await q(
      `select code, priority, orders, p50_minutes::float as m from ${s}.v_turnaround order by 1`,
    );
    expect(tat).toEqual([
      { code: '36643-5', priority: 'routine', orders: 1, m: 180 },
      { code: '4548-4', priority: 'routine', orders: 1, m: 50 },
      { code: '58410-2', priority: 'stat', orders: 1, m: 50 },
      { code: '89579-7', priority: 'stat', orders: 1, m: 55 },
    ]);
    expect(await q(`select visits, p50_minutes::float as m from ${s}.v_ed_times`)).toEqual([
      { visits: 1, m: 270 },
    ]);
    const vol = await q(
      `select code, observations, abnormal, abnormal_rate::float as rate from ${s}.v_result_volumes order by 1`,
    );
    expect(vol).toEqual([
      { code: '2160-0', observations: 1, abnormal: 1, rate: 1 },
      { code: '4548-4', observations: 1, abnormal: 1, rate: 1 },
      { code: '718-7', observations: 1, abnormal: 1, rate: 1 },
      { code: '89579-7', observations: 1, abnormal: 0, rate: 0 },
    ]);
    const dq = await q(`select measure, sum(n)::int as n from ${s}.v_data_quality group by 1 order by 1`);
    expect(dq).toEqual([
      { measure: 'duplicate_suppressed', n: 1 },
      { measure: 'out_of_order_arrival', n: 1 },
      { measure: 'result_corrected', n: 1 },
    ]);
    const usage = await q(
      `select source_system, sum(events)::int as n from ${s}.v_events_per_source_day group by 1 order by 1`,
    );
    const bySource = new Map<string, number>();
    for (const e of [...events, after])
      bySource.set(e.data.meta.source.system, (bySource.get(e.data.meta.source.system) ?? 0) + 1);
    expect(usage).toEqual(
      [...bySource]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([source_system, n]) => ({ source_system, n })),
    );
  });

  it('analytics: the hub_analyst role reads the documented views and nothing else', async () => {
    const s = live.stable.analytics;
    const asAnalyst = (sql: string) =>
      live.ctx.db.transaction(async (trx) => {
        await trx.raw(`set local role ${ANALYST_ROLE}`);
        return (await trx.raw<{ rows: Row[] }>(sql)).rows;
      });
    expect(await asAnalyst(`select count(*)::int as n from ${s}.v_daily_census`)).toEqual([{ n: 3 }]);
    await expect(asAnalyst(`select * from ${s}.encounters`)).rejects.toMatchObject({ code: '42501' });
    await expect(asAnalyst(`select * from ${live.schemaOf('analytics')}.event_log`)).rejects.toMatchObject({
      code: '42501',
    });
  });

  it("keeps the read models in Postgres and off the services' ports: a record, an account, the view catalogue (#17)", async () => {
    // What the API serves scoped and audited ($everything, /billing/accounts/{id}/charges) is in the read models...
    expect(
      await q(`select count(*)::int as n from ${live.stable.portal}.patient_record where patient_id = 'P1'`),
    ).toEqual([{ n: 7 }]);
    expect(await q(`select status from ${live.stable.billing}.accounts where encounter_id = 'E1'`)).toEqual([
      { status: 'discharged' },
    ]);
    expect(
      await q(`select line_id from ${live.stable.billing}.charges where encounter_id = 'E1' order by 1`),
    ).toEqual([{ line_id: 'O1' }, { line_id: 'O2' }]);
    expect(
      await q(
        `select 1 from information_schema.views where table_schema = '${live.stable.analytics}' and table_name = 'v_turnaround'`,
      ),
    ).toHaveLength(1);
    // ...and the projectors' own ports answer none of it, nor their operator routes without a token.
    expect((await live.services.portal.http.inject({ url: '/patients/P1/record' })).statusCode).toBe(404);
    expect((await live.services.billing.http.inject({ url: '/accounts/E1' })).statusCode).toBe(404);
    expect((await live.services.analytics.http.inject({ url: '/views' })).statusCode).toBe(401);
    for (const p of PROJECTORS)
      expect((await live.services[p].http.inject({ url: '/ready' })).statusCode).toBe(200);
  });

  it('poison records are dead-lettered by each projector with their reason, counted, and the partition continues', async () => {
    const dlq = live.ctx.extraTopics.find((t) => t.startsWith('hub.dlq.'))!;
    expect([...(await endOffsets(live.ctx.kafka, dlq)).values()].reduce((a, b) => a + b, 0n)).toBe(6n);
    // The event after the poison one on the same partition was applied; the poison one was not.
    expect(
      await q(
        `select line_id from ${live.stable.billing}.charge_lines where line_id in ('O-POISON', 'O-AFTER')`,
      ),
    ).toEqual([{ line_id: 'O-AFTER' }]);
    for (const p of PROJECTORS) {
      const m = await live.services[p].http.inject({ url: '/metrics' });
      expect(m.body).toMatch(/hub_dead_letters_total\{[^}]*reason="HUB_EVENT_UNDECODABLE"[^}]*\} 1/);
    }
    // Analysts see the parked input by source and reason.
    const rejected = await eventually(async () => {
      const r = await q(
        `select reason, sum(records)::int as n from ${live.stable.analytics}.v_rejected_input group by 1 order by 1`,
      );
      return r.length === 2 && r.every((x) => x['n'] === 3) ? r : undefined;
    });
    expect(rejected).toEqual([
      { reason: 'HUB_EVENT_UNDECODABLE', n: 3 },
      { reason: 'HUB_PROJECTION_FAILED', n: 3 },
    ]);
  });

  it('the same events in the worst cross-topic order give identical tables', async () => {
    for (const p of PROJECTORS) {
      // duplicates and dead_letters record topic positions (topic names differ
      // per run, and only the live run had a poison record); the chargemaster
      // was edited by the billing test above.
      const exclude = ['duplicates', 'chargemaster', 'dead_letters'];
      const a = await tableHashes(live.ctx.db, live.schemaOf(p), { exclude });
      const b = await tableHashes(reversed.ctx.db, reversed.schemaOf(p), { exclude });
      expect(Object.keys(a).length).toBeGreaterThan(1);
      expect(b, p).toEqual(a);
    }
  });
});
