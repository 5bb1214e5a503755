import { describe, expect, it } from 'vitest';
import { normaliseRows, planView, toCsv } from './analytics-views.js';

describe('analytics view plans', () => {
  it('given no grouping, when planned, then the view is read at its own grain with a date range', () => {
    const p = planView('analytics', { view: 'v_daily_admissions', from: '2026-03-01', to: '2026-03-31' });
    expect(p.columns).toEqual(['day', 'unit', 'encounter_class', 'admissions']);
    expect(p.sql).toContain('"analytics"."v_daily_admissions" where day >= ?::date and day <= ?::date');
    expect(p.bindings).toEqual(['2026-03-01', '2026-03-31']);
  });
  it('given a grouping and an interval, when planned, then summable measures are summed', () => {
    const p = planView('analytics', { view: 'v_daily_admissions', groupBy: 'unit', interval: 'month' });
    expect(p.columns).toEqual(['day', 'unit', 'admissions']);
    expect(p.sql).toContain(`date_trunc('month', day)`);
    expect(p.sql).toContain('sum("admissions")::bigint');
    expect(p.sql).toContain('group by 1, "unit"');
  });
  it('given interval all, when planned, then there is no date column', () => {
    const p = planView('analytics', {
      view: 'v_events_per_source_day',
      groupBy: 'source_system',
      interval: 'all',
    });
    expect(p.columns).toEqual(['source_system', 'events']);
  });
  it('given a percentile view, when regrouped, then it is refused', () => {
    expect(() => planView('analytics', { view: 'v_turnaround', groupBy: 'code' })).toThrow(
      /cannot be regrouped/,
    );
    expect(() => planView('analytics', { view: 'v_turnaround', from: '2026-01-01' })).toThrow(/no date/);
  });
  it('given a dimension the view does not have, when planned, then it is refused (no SQL from input)', () => {
    expect(() => planView('analytics', { view: 'v_daily_admissions', groupBy: 'patient_id' })).toThrow(
      /groupBy/,
    );
    expect(() => planView('analytics', { view: 'pg_user' })).toThrow(/no such/);
  });
  it('given database rows, when normalised, then measures are numbers and only planned columns remain', () => {
    const p = planView('analytics', { view: 'v_length_of_stay' });
    expect(
      normaliseRows(p, [
        {
          encounter_class: 'inpatient',
          encounters: 3,
          mean_hours: '12.50',
          p50_hours: '10.00',
          p90_hours: null,
          extra: 'x',
        },
      ]),
    ).toEqual([
      { encounter_class: 'inpatient', encounters: 3, mean_hours: 12.5, p50_hours: 10, p90_hours: null },
    ]);
  });
});

describe('analytics view plans: result-level KPIs', () => {
  it('given critical values regrouped by test, then counts are summed and distinct patients (not summable) are left out', () => {
    const p = planView('analytics', { view: 'v_critical_values', groupBy: 'code' });
    expect(p.columns).toEqual(['code', 'critical']);
    expect(p.sql).toContain('sum("critical")::bigint');
    expect(() => planView('analytics', { view: 'v_results_without_loinc', from: '2026-01-01' })).toThrow(
      /no date/,
    );
  });
});

describe('CSV', () => {
  it('given awkward values, when rendered, then they are quoted and formulas neutralised', () => {
    const csv = toCsv(
      ['a', 'b', 'c'],
      [
        { a: 'x,y', b: '=SUM(A1)', c: -3 },
        { a: 'say "hi"', b: null, c: 1.5 },
      ],
    );
    expect(csv).toBe('a,b,c\r\n"x,y",\'=SUM(A1),-3\r\n"say ""hi""",,1.5\r\n');
  });
});
