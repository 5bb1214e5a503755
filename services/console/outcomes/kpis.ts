import { reportingZoneSql } from '../../../libs/read-models/analytics/views.js';

/**
 * The outcomes page's KPIs: each one query over a documented read-model
 * view (the view's name is shown beside the chart), answering rows of
 * `(day, series, value)` for days from a bound date on. Aggregates only:
 * no row names a patient. Views without a date (v_turnaround,
 * v_length_of_stay, billing_problems) are computed per day here with the
 * view's own definition over the same relations of the stable schema, and
 * the page says so.
 *
 * Every query takes two bindings: the instant "now" (epoch ms) and the
 * number of days back from the reporting zone's today.
 */
export interface Kpi {
  name: string;
  title: string;
  /** The view the numbers come from, shown in `<code>`. */
  view: string;
  /** Which schema the view lives in. */
  model: 'analytics' | 'billing';
  /** How the view's rows become a series per day. */
  note: string;
  yTitle: string;
  chart: 'line' | 'bar';
  /** A day without a row is 0 (counts) or a gap (percentiles: nothing was measured). */
  missing: 0 | null;
  sql(schema: string): string;
}

/** The first day shown: today in the zone minus the days back (both bound). */
const since = (tz: string) => `((to_timestamp(?::bigint / 1000.0) at time zone ${tz})::date - ?::int)`;
const dayText = (col: string) => `to_char(${col}, 'YYYY-MM-DD')`;
const zone = (s: string) => reportingZoneSql(s);

/** A dated analytics view summed per day and one dimension. */
const summed =
  (view: string, series: string, measure: string) =>
  (s: string): string =>
    `select ${dayText('day')} as day, ${series}::text as series, sum(${measure})::float8 as value
       from ${s}.${view} where day >= ${since(zone(s))} group by 1, 2`;

/** Median and p90 per day of the minutes/hours an expression measures. */
const percentiles = (measure: string, dayExpr: string, from: string): string =>
  `select ${dayText('d')} as day, p.series, p.value from (
      select ${dayExpr} as d,
             percentile_cont(0.5) within group (order by ${measure}) as p50,
             percentile_cont(0.9) within group (order by ${measure}) as p90
        from ${from} group by 1) t
     cross join lateral (values ('median (p50)', round(t.p50::numeric, 1)::float8),
                               ('p90', round(t.p90::numeric, 1)::float8)) p(series, value)`;

export const KPIS: readonly Kpi[] = [
  {
    name: 'ed-wait-times',
    title: 'Emergency department: arrival to departure',
    view: 'v_ed_times',
    model: 'analytics',
    note: 'p50 and p90 minutes per arrival day, as the view has them.',
    yTitle: 'minutes',
    chart: 'line',
    missing: null,
    sql: (s) => `select ${dayText('v.day')} as day, p.series, p.value from ${s}.v_ed_times v
      cross join lateral (values ('median (p50)', v.p50_minutes::float8), ('p90', v.p90_minutes::float8)) p(series, value)
      where v.day >= ${since(zone(s))}`,
  },
  {
    name: 'result-turnaround',
    title: 'Result turnaround: order placed to first final result',
    view: 'v_turnaround',
    model: 'analytics',
    note: "The view's minutes (cancelled orders excluded), per day of the first final result in the reporting zone, all categories and priorities.",
    yTitle: 'minutes',
    chart: 'line',
    missing: null,
    sql: (s) =>
      percentiles(
        't.minutes',
        `(t.final_at at time zone ${zone(s)})::date`,
        `(select min(r.first_final_at) as final_at,
                 extract(epoch from min(r.first_final_at) - o.ordered_at) / 60 as minutes
            from ${s}.orders o join ${s}.results r on r.order_id = o.order_id
           where not o.cancelled and o.ordered_at is not null and r.first_final_at is not null
           group by o.order_id, o.ordered_at) t
         where (t.final_at at time zone ${zone(s)})::date >= ${since(zone(s))}`,
      ),
  },
  {
    name: 'census',
    title: 'Midnight census',
    view: 'v_daily_census',
    model: 'analytics',
    note: 'Persons in house at the end of each day, summed over units, per encounter class.',
    yTitle: 'persons',
    chart: 'line',
    missing: 0,
    sql: summed('v_daily_census', 'encounter_class', 'census'),
  },
  {
    name: 'length-of-stay',
    title: 'Length of stay',
    view: 'v_length_of_stay',
    model: 'analytics',
    note: "The view's hours (discharged, not cancelled encounters), per discharge day in the reporting zone, all classes.",
    yTitle: 'hours',
    chart: 'line',
    missing: null,
    sql: (s) =>
      percentiles(
        'extract(epoch from e.discharged_at - e.admitted_at) / 3600',
        `(e.discharged_at at time zone ${zone(s)})::date`,
        `${s}.encounters e where not e.cancelled and e.admitted_at is not null and e.discharged_at is not null
           and (e.discharged_at at time zone ${zone(s)})::date >= ${since(zone(s))}`,
      ),
  },
  {
    name: 'billing-problems',
    title: 'Billing-accuracy problems',
    view: 'billing_problems',
    model: 'billing',
    note: "The billing read model's open problems, per kind and the account's admission day (UTC, as billing counts days); problems of accounts without an admission time are not in the chart.",
    yTitle: 'problems',
    chart: 'bar',
    missing: 0,
    sql: (s) => `select ${dayText("(a.admitted_at at time zone 'UTC')::date")} as day, p.problem as series,
        count(*)::float8 as value
      from ${s}.billing_problems p join ${s}.accounts a on a.encounter_id = p.encounter_id
      where a.admitted_at is not null and (a.admitted_at at time zone 'UTC')::date >= ${since("'UTC'")}
      group by 1, 2`,
  },
  {
    name: 'rejected-input',
    title: 'Rejected input by sender',
    view: 'v_rejected_input',
    model: 'analytics',
    note: 'Records parked on a dead-letter topic, per day and source (sender), all topics and reasons.',
    yTitle: 'records',
    chart: 'bar',
    missing: 0,
    sql: summed('v_rejected_input', 'source', 'records'),
  },
  {
    name: 'data-quality',
    title: 'Data quality',
    view: 'v_data_quality',
    model: 'analytics',
    note: 'Duplicates suppressed, out-of-order arrivals and corrected results per day, all source systems.',
    yTitle: 'events',
    chart: 'bar',
    missing: 0,
    sql: summed('v_data_quality', 'measure', 'n'),
  },
];
