import { afterEach, describe, expect, it } from 'vitest';
import { consoleTestApp, devSignIn, type ConsoleTestApp } from '../../../test/support/console-app.js';
import { KPIS } from './kpis.js';
import { MAX_SERIES, toSeries } from './series.js';
import { outcomesBody } from './view.js';

const kpi = (name: string) => {
  const k = KPIS.find((x) => x.name === name);
  if (!k) throw new Error(name);
  return k;
};

describe('outcomes: series', () => {
  it('given rows per day and series, then days ascending, series by total, a missing count 0 and a missing percentile a gap', () => {
    const rows = [
      { day: '2026-01-02', series: 'A', value: '2' },
      { day: '2026-01-01', series: 'B', value: 5 },
      { day: '2026-01-02', series: 'B', value: 1 },
    ];
    expect(toSeries({ missing: 0 }, rows)).toEqual({
      days: ['2026-01-01', '2026-01-02'],
      series: [
        { label: 'B', values: [5, 1] },
        { label: 'A', values: [0, 2] },
      ],
    });
    expect(toSeries({ missing: null }, rows).series).toEqual([
      { label: 'A', values: [null, 2] },
      { label: 'B', values: [5, 1] },
    ]);
  });

  it('given more senders than a chart can show, then the smallest are summed as others', () => {
    const rows = Array.from({ length: MAX_SERIES + 3 }, (_, i) => ({
      day: '2026-01-01',
      series: `S${i}`,
      value: i + 1,
    }));
    const s = toSeries({ missing: 0 }, rows);
    expect(s.series).toHaveLength(MAX_SERIES);
    expect(s.series.at(-1)).toEqual({ label: 'others', values: [1 + 2 + 3 + 4] });
  });
});

describe('outcomes: page body', () => {
  it('given data for one KPI and none for another, then a section each with an h2 and the view in code; a labelled canvas, its JSON and a fallback table for data; "no data yet" otherwise', () => {
    const body = outcomesBody(
      [
        {
          kpi: kpi('rejected-input'),
          state: {
            kind: 'data',
            data: { days: ['2026-01-01'], series: [{ label: 'LAB|NORTH <x>', values: [3] }] },
          },
        },
        { kpi: kpi('census'), state: { kind: 'empty' } },
      ],
      '7d',
    ).toString();
    expect(body).toMatch(
      /<section class="chart" data-kpi="rejected-input"[^>]*>\s*<h2 id="kpi-rejected-input">Rejected input by sender<\/h2>/,
    );
    expect(body).toContain('<code>v_rejected_input</code>');
    expect(body).toMatch(
      /<canvas data-chart="chart-rejected-input" role="img" aria-label="Rejected input by sender, records per day, last 7 days: LAB\|NORTH &lt;x&gt;"/,
    );
    expect(body).toContain('<script type="application/json" id="chart-rejected-input">');
    expect(body).toContain('"datasets":[{"label":"LAB|NORTH \\u003cx>","data":[3]}]');
    expect(body).toMatch(/<th scope="row">2026-01-01<\/th>\s*<td class="num">3<\/td>/);
    expect(body).toMatch(
      /data-kpi="census"[\s\S]*<code>v_daily_census<\/code>[\s\S]*No data yet in this range/,
    );
    expect(body).not.toMatch(/data-chart="chart-census"/);
    expect(body).toMatch(/<label for="range">Time range<\/label>/);
    expect(body).toMatch(/<option value="7d" selected>/);
  });

  it('names every KPI the issue asks for, each from a view', () => {
    expect(KPIS.map((k) => [k.name, k.view])).toEqual([
      ['ed-wait-times', 'v_ed_times'],
      ['result-turnaround', 'v_turnaround'],
      ['census', 'v_daily_census'],
      ['length-of-stay', 'v_length_of_stay'],
      ['billing-problems', 'billing_problems'],
      ['rejected-input', 'v_rejected_input'],
      ['data-quality', 'v_data_quality'],
    ]);
  });
});

describe('outcomes: guard', () => {
  let t: ConsoleTestApp | null = null;
  afterEach(async () => {
    await t?.close();
    t = null;
  });

  it('given a steward without the operator role, when /outcomes is opened, then 403', async () => {
    t = await consoleTestApp();
    const { cookie } = await devSignIn(t, ['steward']);
    const res = await t.app.inject({ method: 'GET', url: '/outcomes', headers: { cookie } });
    expect(res.statusCode).toBe(403);
  });
});
