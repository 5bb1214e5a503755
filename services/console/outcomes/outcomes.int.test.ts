import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type Knex } from '../../../libs/db/index.js';
import { dropReadModel, resolveActiveVersion } from '../../../libs/projections/versions.js';
import { ANALYTICS_VERSION_HOOKS, analyticsProjection } from '../../../libs/read-models/analytics/model.js';
import { BILLING_VERSION_HOOKS, billingProjection } from '../../../libs/read-models/billing/model.js';
import {
  consoleTestApp,
  devSignIn,
  TEST_CONSOLE_SETTINGS,
  type ConsoleTestApp,
} from '../../../test/support/console-app.js';
import { endpoints, uniqueId } from '../../../test/support/harness.js';

interface ChartSpec {
  type: string;
  labels: string[];
  datasets: { label: string; data: (number | null)[] }[];
}

/** The chart data block of one KPI in a page, parsed. */
function chartOf(body: string, kpi: string): ChartSpec | null {
  const m = new RegExp(`<script type="application/json" id="chart-${kpi}">([^<]*)</script>`).exec(body);
  return m?.[1] ? (JSON.parse(m[1]) as ChartSpec) : null;
}

const at = (iso: string) => new Date(iso);

/**
 * The outcomes page over analytics and billing read models built the way
 * their projectors build them (every migration, the stable schema's views),
 * with fact rows inserted by hand into the serving version: each chart's
 * numbers are the views' numbers for the chosen range.
 */
describe('console outcomes (Postgres)', () => {
  let db: Knex;
  let t: ConsoleTestApp;
  const analytics = uniqueId('console_an').toLowerCase();
  const billing = uniqueId('console_bi').toLowerCase();

  async function facts(schema: string): Promise<void> {
    const enc = (id: string, cls: string, from: string, to: string) => ({
      encounter_id: id,
      patient_id: `P-${id}`,
      encounter_class: cls,
      admitted_at: at(from),
      discharged_at: at(to),
      cancelled: false,
      movements: JSON.stringify([]),
    });
    await db
      .withSchema(schema)
      .into('encounters')
      .insert([
        enc('e1', 'emergency', '2026-01-19T08:00:00Z', '2026-01-19T10:00:00Z'),
        enc('e2', 'emergency', '2026-01-19T09:00:00Z', '2026-01-19T09:30:00Z'),
        enc('e3', 'inpatient', '2026-01-17T10:00:00Z', '2026-01-19T10:00:00Z'),
        enc('e4', 'emergency', '2026-01-01T08:00:00Z', '2026-01-01T09:00:00Z'),
      ]);
    const dl = (n: number, source: string, day: string) => ({
      position: `dlq/0/${n}`,
      dlq_topic: 'hub.dlq.hl7',
      source,
      reason: 'parse-error',
      recorded_at: at(`${day}T12:00:00Z`),
    });
    await db
      .withSchema(schema)
      .into('dead_letters')
      .insert([
        dl(1, 'LAB|NORTH', '2026-01-19'),
        dl(2, 'LAB|NORTH', '2026-01-19'),
        dl(3, 'LAB|NORTH', '2026-01-19'),
        dl(4, 'ADT|SOUTH', '2026-01-18'),
      ]);
    await db
      .withSchema(schema)
      .into('orders')
      .insert({
        order_id: 'o1',
        patient_id: 'P-e1',
        code: '58410-2',
        category: 'laboratory',
        ordered_at: at('2026-01-19T08:00:00Z'),
        cancelled: false,
      });
    await db
      .withSchema(schema)
      .into('results')
      .insert({
        result_id: 'r1',
        patient_id: 'P-e1',
        order_id: 'o1',
        code: '58410-2',
        category: 'laboratory',
        status: 'final',
        first_final_at: at('2026-01-19T08:45:00Z'),
        version_rank: 2,
        version_at: at('2026-01-19T08:45:00Z'),
        version_event: randomUUID(),
        corrected: false,
        observations: JSON.stringify([]),
      });
    await db
      .withSchema(schema)
      .into('duplicates')
      .insert(
        [1, 2].map((n) => ({
          position: `t/0/${n}`,
          event_id: randomUUID(),
          event_type: 'ResultFinalised',
          source_system: 'LAB',
          recorded_at: at('2026-01-19T07:00:00Z'),
        })),
      );
  }

  beforeAll(async () => {
    db = createDb(endpoints().databaseUrl);
    await facts(
      await resolveActiveVersion(db, analytics, analyticsProjection(['t']), ANALYTICS_VERSION_HOOKS),
    );
    const bv = await resolveActiveVersion(db, billing, billingProjection(['t']), BILLING_VERSION_HOOKS);
    await db
      .withSchema(bv)
      .into('accounts')
      .insert({
        encounter_id: 'b1',
        patient_id: 'P-b1',
        encounter_class: 'inpatient',
        admitted_at: at('2026-01-18T06:00:00Z'),
        status: 'open',
      });
    await db
      .withSchema(bv)
      .into('charge_lines')
      .insert({
        line_id: 'l1',
        patient_id: 'P-b1',
        order_id: 'ob1',
        encounter_id: 'b1',
        code: '58410-2',
        code_system: 'http://loinc.org',
        category: 'laboratory',
        placed: false,
        order_cancelled: false,
        first_final_at: at('2026-01-18T09:00:00Z'),
        status: 'resulted',
      });
    t = await consoleTestApp({
      ctx: {
        db,
        now: () => Date.parse('2026-01-19T18:00:00Z'),
        settings: {
          ...TEST_CONSOLE_SETTINGS,
          analyticsSchema: analytics,
          billingSchema: billing,
        },
      },
    });
  }, 120_000);

  afterAll(async () => {
    await t.close();
    await dropReadModel(db, analytics);
    await dropReadModel(db, billing);
    await db.destroy();
  });

  async function outcomes(range: string, app: ConsoleTestApp = t): Promise<string> {
    const { cookie } = await devSignIn(app, ['operator']);
    const res = await app.app.inject({ method: 'GET', url: `/outcomes?range=${range}`, headers: { cookie } });
    expect(res.statusCode).toBe(200);
    return res.body;
  }

  it('given facts in the read models, when the last 7 days are shown, then each chart has the views numbers for those days', async () => {
    const body = await outcomes('7d');
    expect(chartOf(body, 'ed-wait-times')).toMatchObject({
      labels: ['2026-01-19'],
      datasets: [
        { label: 'median (p50)', data: [75] },
        { label: 'p90', data: [111] },
      ],
    });
    expect(chartOf(body, 'rejected-input')).toMatchObject({
      type: 'bar',
      labels: ['2026-01-18', '2026-01-19'],
      datasets: [
        { label: 'LAB|NORTH', data: [0, 3] },
        { label: 'ADT|SOUTH', data: [1, 0] },
      ],
    });
    expect(body).toMatch(
      /<th scope="row">2026-01-19<\/th>\s*<td class="num">3<\/td>\s*<td class="num">0<\/td>/,
    );
    expect(chartOf(body, 'census')).toMatchObject({
      labels: ['2026-01-17', '2026-01-18'],
      datasets: [{ label: 'inpatient', data: [1, 1] }],
    });
    expect(chartOf(body, 'result-turnaround')).toMatchObject({
      labels: ['2026-01-19'],
      datasets: [
        { label: 'median (p50)', data: [45] },
        { label: 'p90', data: [45] },
      ],
    });
    expect(chartOf(body, 'length-of-stay')).toMatchObject({
      labels: ['2026-01-19'],
      datasets: [
        { label: 'median (p50)', data: [2] },
        { label: 'p90', data: [38.8] },
      ],
    });
    expect(chartOf(body, 'data-quality')).toMatchObject({
      datasets: [{ label: 'duplicate_suppressed', data: [2] }],
    });
    expect(chartOf(body, 'billing-problems')).toMatchObject({
      labels: ['2026-01-18'],
      datasets: [{ label: 'resulted_order_without_charge', data: [1] }],
    });
    for (const view of [
      'v_ed_times',
      'v_turnaround',
      'v_daily_census',
      'v_length_of_stay',
      'billing_problems',
      'v_rejected_input',
      'v_data_quality',
    ])
      expect(body).toContain(`<code>${view}</code>`);
    expect(body).toMatch(/<canvas data-chart="chart-census" role="img" aria-label="Midnight census[^"]+"/);
  });

  it('given the range, when it is 24 hours or 30 days, then only those days are charted', async () => {
    const day = await outcomes('24h');
    expect(chartOf(day, 'rejected-input')?.labels).toEqual(['2026-01-18', '2026-01-19']);
    expect(chartOf(day, 'census')?.labels).toEqual(['2026-01-18']);
    const month = await outcomes('30d');
    expect(chartOf(month, 'ed-wait-times')?.labels).toEqual(['2026-01-01', '2026-01-19']);
  });

  it('given a read model that is not there, then its KPIs say "no data yet" and the page still renders', async () => {
    const t2 = await consoleTestApp({
      ctx: {
        db,
        settings: {
          ...TEST_CONSOLE_SETTINGS,
          analyticsSchema: uniqueId('nothing').toLowerCase(),
          billingSchema: uniqueId('nothing').toLowerCase(),
        },
      },
    });
    try {
      const body = await outcomes('7d', t2);
      expect(body.match(/data-testid="no-data">No data yet/g)).toHaveLength(7);
      expect(body).not.toContain('<canvas');
    } finally {
      await t2.close();
    }
  });
});
