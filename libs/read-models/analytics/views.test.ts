import { describe, expect, it } from 'vitest';
import { analyticsModel } from './model.js';
import { ANALYTICS_VIEWS, reportingZoneSql } from './views.js';

describe('analytics views: days in the reporting time zone', () => {
  it('given the dated views, when built with the reporting zone, then every day bucket reads it and a time_zone column names it', () => {
    const zone = reportingZoneSql('"analytics_v1"');
    const zoned = ANALYTICS_VIEWS.filter((v) => v.zoned);
    expect(zoned.map((v) => v.name)).toEqual([
      'v_daily_admissions',
      'v_daily_discharges',
      'v_daily_census',
      'v_ed_times',
      'v_data_quality',
      'v_events_per_source_day',
      'v_rejected_input',
    ]);
    for (const v of zoned) {
      const sql = v.sql('"analytics_v1"', zone);
      expect(sql, v.name).not.toContain(`'UTC')::date`);
      expect(sql, v.name).not.toMatch(/at time zone 'UTC'/);
      expect(sql, v.name).toContain(`at time zone ${zone}`);
      expect(sql, v.name).toContain(`${zone} as time_zone`);
      expect(v.doc, v.name).toMatch(/reporting zone \(column time_zone/);
    }
  });

  it('given the views without a zone (as migrations 0302–0304 create them), then they are the UTC views without a time_zone column', () => {
    for (const v of ANALYTICS_VIEWS.filter((x) => x.zoned)) {
      const sql = v.sql('"analytics_v1"');
      expect(sql, v.name).toMatch(/at time zone 'UTC'/);
      expect(sql, v.name).not.toContain('time_zone');
      expect(sql, v.name).not.toContain('settings');
    }
  });

  it('given a view without days, then it does not depend on the zone', () => {
    for (const v of ANALYTICS_VIEWS.filter((x) => !x.zoned)) {
      expect(v.sql('"s"', reportingZoneSql('"s"')), v.name).toBe(v.sql('"s"'));
      expect(v.sql('"s"'), v.name).not.toContain('date_trunc');
    }
  });

  it('the zone expression reads the one settings row and falls back to UTC when it is missing', () => {
    expect(reportingZoneSql('"a"')).toBe(
      `coalesce((select reporting_time_zone from "a".settings where id), 'UTC')`,
    );
  });
});

describe('analytics views: one catalogue for the migrations and the query API', () => {
  it('given each view, then the columns it declares for the API are ones its SQL selects, and only dated views have a day', () => {
    for (const v of ANALYTICS_VIEWS) {
      const sql = v.sql('"s"', reportingZoneSql('"s"'));
      const { dims, sums, others } = v.columns;
      for (const c of [...dims, ...sums, ...others])
        expect(sql, `${v.name}.${c}`).toMatch(new RegExp(`\\b${c}\\b`));
      expect(/\bas day\b/.test(sql), v.name).toBe(v.zoned === true);
    }
  });

  it('given the catalogue, then view names are unique', () => {
    const names = ANALYTICS_VIEWS.map((v) => v.name);
    expect(new Set(names).size).toBe(names.length);
  });
});

describe('analytics views: result-level KPIs and principal diagnoses (#18)', () => {
  const added = ANALYTICS_VIEWS.filter((v) => v.addedIn === '0306_result_facts_and_diagnoses');

  it('given the migration that adds observation facts and diagnoses, then it creates the five views from its own tables, all served by the API', () => {
    expect(added.map((v) => v.name)).toEqual([
      'v_abnormal_rate_by_test',
      'v_critical_values',
      'v_results_without_loinc',
      'v_results_by_unit_system',
      'v_encounters_by_principal_diagnosis',
    ]);
    expect(analyticsModel().migrations.map((m) => m.name)).toContain('0306_result_facts_and_diagnoses');
    for (const v of added) {
      expect(v.inApi, v.name).toBeUndefined();
      expect(v.zoned, v.name).toBeUndefined();
      expect(v.sql('"s"'), v.name).toMatch(/"s"\.(observations|diagnoses)\b/);
      // Aggregates only: no patient or result id leaves a view.
      const { dims, sums, others } = v.columns;
      expect(
        [...dims, ...sums, ...others].some((c) => /patient_id|result_id/.test(c)),
        v.name,
      ).toBe(false);
    }
  });

  it('given the result views, then they count released versions only, and their docs say which interpretation codes count', () => {
    for (const v of added.filter((x) => x.name !== 'v_encounters_by_principal_diagnosis'))
      expect(v.sql('"s"'), v.name).toMatch(/where released\b/);
    const critical = added.find((v) => v.name === 'v_critical_values')!;
    expect(critical.doc).toContain('HH, LL, AA');
    expect(added.find((v) => v.name === 'v_abnormal_rate_by_test')!.doc).toContain('A, AA, H, HH, L, LL');
  });
});
