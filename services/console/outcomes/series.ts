import type { Kpi } from './kpis.js';

/** A KPI's numbers, shaped for both the chart and its fallback table: one value per day and series. */
export interface KpiSeries {
  days: string[];
  series: { label: string; values: (number | null)[] }[];
}

export interface KpiRow {
  day: string;
  series: string | null;
  value: number | string | null;
}

/** More senders than this and the smallest are summed as "others", so a chart stays readable. */
export const MAX_SERIES = 8;
const OTHERS = 'others';

/**
 * Rows `(day, series, value)` → days ascending, count series by total
 * descending (beyond MAX_SERIES the rest summed), others by name, a missing day the
 * KPI's `missing` (0 for counts, a gap for percentiles). Pure.
 */
export function toSeries(kpi: Pick<Kpi, 'missing'>, rows: readonly KpiRow[]): KpiSeries {
  const days = [...new Set(rows.map((r) => r.day))].sort();
  const byLabel = new Map<string, Map<string, number>>();
  for (const r of rows) {
    if (r.value === null) continue;
    const label = r.series ?? 'unknown';
    const m = byLabel.get(label) ?? new Map<string, number>();
    m.set(r.day, (m.get(r.day) ?? 0) + Number(r.value));
    byLabel.set(label, m);
  }
  const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  // Counts: the biggest first (they keep their colour as the range changes less than names do); percentiles: by name.
  let labels = [...byLabel.entries()].sort((a, b) =>
    kpi.missing === 0 ? total(b[1]) - total(a[1]) || byName(a[0], b[0]) : byName(a[0], b[0]),
  );
  if (labels.length > MAX_SERIES && kpi.missing === 0) {
    const rest = new Map<string, number>();
    for (const [, m] of labels.slice(MAX_SERIES - 1))
      for (const [d, v] of m) rest.set(d, (rest.get(d) ?? 0) + v);
    labels = [...labels.slice(0, MAX_SERIES - 1), [OTHERS, rest]];
  }
  return {
    days,
    series: labels.map(([label, m]) => ({
      label,
      values: days.map((d) => m.get(d) ?? kpi.missing),
    })),
  };
}
