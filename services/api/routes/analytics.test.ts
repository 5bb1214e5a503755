import { describe, expect, it } from 'vitest';
import { fakeApiPerTest } from '../../../test/support/api.js';
import type { ViewPlan } from '../analytics-views.js';

const startApi = fakeApiPerTest();

describe('analytics routes', () => {
  it('given a view, when asked as JSON or CSV, then the planned columns come back, measures as numbers', async () => {
    const plans: ViewPlan[] = [];
    const api = await startApi(
      {
        analytics: {
          rows: (plan) => {
            plans.push(plan);
            return Promise.resolve([{ encounter_class: 'IMP', admissions: '3' }]);
          },
        },
      },
      { analyticsSchema: 'an_stable' },
    );
    const r = await api.get(
      '/analytics/views/v_daily_admissions?groupBy=encounter_class&interval=all',
      'analytics',
    );
    expect(r.statusCode).toBe(200);
    expect(JSON.parse(r.body)).toEqual({
      view: 'v_daily_admissions',
      columns: ['encounter_class', 'admissions'],
      rows: [{ encounter_class: 'IMP', admissions: 3 }],
    });
    expect(plans[0]!.sql).toContain('"an_stable"');
    const csv = await api.get(
      '/analytics/views/v_daily_admissions?groupBy=encounter_class&interval=all&format=csv',
      'analytics',
    );
    expect(csv.headers['content-type']).toContain('text/csv');
    expect(csv.body).toBe('encounter_class,admissions\r\nIMP,3\r\n');
    // Aggregates: audited, naming no patient.
    expect(api.audits).toHaveLength(2);
    expect(api.audits.every((a) => a.entity?.length === 1)).toBe(true);
  });

  it('given the catalogue, when listed, then every view with its dimensions and measures', async () => {
    const api = await startApi();
    const views = JSON.parse((await api.get('/analytics/views', 'analytics')).body) as { name: string }[];
    expect(views.map((v) => v.name)).toEqual(
      expect.arrayContaining([
        'v_daily_admissions',
        'v_abnormal_rate_by_test',
        'v_critical_values',
        'v_results_without_loinc',
        'v_results_by_unit_system',
        'v_encounters_by_principal_diagnosis',
      ]),
    );
  });

  it('given a regrouping a view cannot sum, an unknown view or another token, then 400, 400, 403 before any read', async () => {
    const api = await startApi();
    expect((await api.get('/analytics/views/v_turnaround?groupBy=code', 'analytics')).statusCode).toBe(400);
    expect((await api.get('/analytics/views/not_a_view', 'analytics')).statusCode).toBe(400);
    for (const kind of ['patient', 'staff', 'billing'] as const) {
      expect((await api.get('/analytics/views/v_daily_admissions', kind)).statusCode, kind).toBe(403);
    }
    expect((await api.get('/analytics/views')).statusCode).toBe(401);
  });
});
