import { html, jsonScript, type Html } from '../html.js';
import type { Kpi } from './kpis.js';
import type { KpiSeries } from './series.js';

/** The time ranges offered, as days back from the reporting zone's today (24 h: yesterday and today). */
export const RANGES = {
  '24h': { label: 'Last 24 hours', daysBack: 1 },
  '7d': { label: 'Last 7 days', daysBack: 6 },
  '30d': { label: 'Last 30 days', daysBack: 29 },
} as const;
export type RangeKey = keyof typeof RANGES;

/** What a KPI section shows: its numbers, or why there are none (no PHI: a code and a fixed text). */
export type KpiState =
  { kind: 'data'; data: KpiSeries } | { kind: 'empty' } | { kind: 'unavailable'; why: string };

const fmt = (v: number | null): string => (v === null ? '—' : Number.isInteger(v) ? String(v) : v.toFixed(1));

function fallbackTable(kpi: Kpi, d: KpiSeries): Html {
  return html`<details>
    <summary>The numbers</summary>
    <table data-testid="kpi-table">
      <caption>
        ${kpi.title} (${kpi.yTitle}) per day
      </caption>
      <thead>
        <tr>
          <th scope="col">Day</th>
          ${d.series.map((s) => html`<th scope="col" class="num">${s.label}</th>`)}
        </tr>
      </thead>
      <tbody>
        ${d.days.map(
          (day, i) =>
            html`<tr data-day="${day}">
              <th scope="row">${day}</th>
              ${d.series.map((s) => html`<td class="num">${fmt(s.values[i] ?? null)}</td>`)}
            </tr>`,
        )}
      </tbody>
    </table>
  </details>`;
}

function chart(kpi: Kpi, d: KpiSeries, range: RangeKey): Html {
  const id = `chart-${kpi.name}`;
  const label = `${kpi.title}, ${kpi.yTitle} per day, ${RANGES[range].label.toLowerCase()}: ${d.series
    .map((s) => s.label)
    .join(', ')}`;
  return html`<div class="canvas">
      <canvas data-chart="${id}" role="img" aria-label="${label}"></canvas>
    </div>
    ${jsonScript(id, {
      type: kpi.chart,
      labels: d.days,
      datasets: d.series.map((s) => ({ label: s.label, data: s.values })),
      yTitle: kpi.yTitle,
    })}
    ${fallbackTable(kpi, d)}`;
}

function kpiSection(kpi: Kpi, state: KpiState, range: RangeKey): Html {
  const body =
    state.kind === 'data'
      ? chart(kpi, state.data, range)
      : state.kind === 'empty'
        ? html`<p class="no-data" data-testid="no-data">No data yet in this range.</p>`
        : html`<p class="no-data" data-testid="no-data">No data yet: ${state.why}</p>`;
  return html`<section class="chart" data-kpi="${kpi.name}" aria-labelledby="kpi-${kpi.name}">
    <h2 id="kpi-${kpi.name}">${kpi.title}</h2>
    <p class="muted">From <code>${kpi.view}</code>: ${kpi.note}</p>
    ${body}
  </section>`;
}

function rangeForm(range: RangeKey): Html {
  return html`<form method="get" action="/outcomes" class="inline">
    <div>
      <label for="range">Time range</label>
      <select id="range" name="range">
        ${(Object.keys(RANGES) as RangeKey[]).map(
          (k) => html`<option value="${k}" ${k === range ? html`selected` : ''}>${RANGES[k].label}</option>`,
        )}
      </select>
    </div>
    <button type="submit">Show</button>
  </form>`;
}

/** The page body: the range selector, then one section per KPI. */
export function outcomesBody(sections: readonly { kpi: Kpi; state: KpiState }[], range: RangeKey): Html {
  return html`${rangeForm(range)}
    <p class="muted">
      Days are the analytics reporting zone's calendar days (billing: UTC). Aggregates only: no patient is
      named.
    </p>
    <div class="charts">${sections.map((s) => kpiSection(s.kpi, s.state, range))}</div>`;
}
