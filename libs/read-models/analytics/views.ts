import type { Knex } from 'knex';
import { ABNORMAL_FLAGS, CRITICAL_FLAGS } from '../../projections/clinical.js';

/**
 * The analytics view catalogue: the documented views analysts read (role
 * hub_analyst), as the migrations create them and the query API serves
 * them, plus the grants that make them the only objects analysts can read.
 */

/** The read-only role analysts use (directly or via `grant hub_analyst to <login>`). */
export const ANALYST_ROLE = 'hub_analyst';

/**
 * The site's reporting zone as the views read it: the one-row `settings`
 * table (migration 0305) that the projector writes at start from its
 * validated configuration. Read when a view is queried, so changing the
 * zone needs a restart, not a rebuild, and the fact tables (UTC instants)
 * are the same whatever the zone: a replay stays deterministic.
 */
export const reportingZoneSql = (s: string) =>
  `coalesce((select reporting_time_zone from ${s}.settings where id), 'UTC')`;

/**
 * A view's SQL over schema `s`. `tz` is the SQL expression of the zone days
 * are counted in: absent, the literal 'UTC' the views had before 0305 (their
 * migrations 0302–0304 are replayed as they were); given, the reporting zone,
 * and dated views end with a `time_zone` column naming it.
 */
type ViewSql = (s: string, tz?: string) => string;

const zoneOf = (tz: string | undefined) => tz ?? `'UTC'`;
const zoneColumn = (tz: string | undefined) => (tz ? `, ${tz} as time_zone` : '');

/** The migration adding the observation-level facts and diagnoses (model.ts). */
const RESULT_FACTS = '0306_result_facts_and_diagnoses';
const ABNORMAL_DOC = `HL7 table 0078 / v3-ObservationInterpretation ${ABNORMAL_FLAGS.join(', ')}`;
const CRITICAL_DOC = `a critical interpretation (${CRITICAL_FLAGS.join(', ')}: critically high, low, abnormal; table 0078 and v3-ObservationInterpretation share these codes)`;

const DAYS_DOC =
  "Days are calendar days in the site's reporting zone (column time_zone: the site configuration's defaultTimeZone, UTC when none is configured).";

/**
 * One documented view: its SQL (migrations), its documentation (`comment on
 * view`, GET /views of projector-analytics) and its columns as the query API
 * reads them (services/api/analytics-views.ts). Declared once, here, so the
 * view the projector creates and the one the API queries cannot drift.
 */
export interface AnalyticsView {
  name: string;
  doc: string;
  sql: ViewSql;
  /** The migration that creates it, when not the first views migration. */
  addedIn?: string;
  /**
   * Buckets by day (a `day` column, "dated" in the API): replaced by 0305 to
   * count days in the reporting zone.
   */
  zoned?: true;
  /** Its columns besides `day`: dimensions, measures that can be summed when regrouped, other measures. */
  columns: { dims: readonly string[]; sums: readonly string[]; others: readonly string[] };
  /** False: not served by the query API. */
  inApi?: false;
  /** Counts people: as persons (records linked as one count once), since PERSONS_MIGRATION. */
  countsPersons?: true;
}

/** The migration that made the views counting people count persons (model.ts). */
export const PERSONS_MIGRATION = '0307_count_persons';

/**
 * The person a fact's patient belongs to, for views that left join the
 * store's `persons` view as \`pe\` (libs/projections/store.ts): patients in no
 * link are their own person.
 */
const personOf = (alias: string) => `coalesce(pe.person_id, ${alias}.patient_id)`;

/**
 * The documented views: the only objects the analyst role can read. Times
 * are UTC instants; days are calendar days in the reporting zone (above).
 * Minutes/hours are fractional.
 */
export const ANALYTICS_VIEWS: readonly AnalyticsView[] = [
  {
    name: 'v_daily_admissions',
    columns: { dims: ['unit', 'encounter_class'], sums: ['admissions'], others: [] },
    doc: `Admissions (encounter starts, cancelled visits excluded) per day, admitting unit and encounter class. ${DAYS_DOC}`,
    zoned: true,
    sql: (s, tz) => `select date_trunc('day', admitted_at at time zone ${zoneOf(tz)})::date as day,
        coalesce(movements->0->>'unit', 'unknown') as unit, encounter_class, count(*)::int as admissions${zoneColumn(tz)}
      from ${s}.encounters where not cancelled and admitted_at is not null group by 1, 2, 3`,
  },
  {
    name: 'v_daily_discharges',
    columns: { dims: ['unit', 'encounter_class'], sums: ['discharges'], others: [] },
    doc: `Discharges per day, discharging unit (last movement) and encounter class. ${DAYS_DOC}`,
    zoned: true,
    sql: (s, tz) => `select date_trunc('day', discharged_at at time zone ${zoneOf(tz)})::date as day,
        coalesce(movements->(jsonb_array_length(movements) - 1)->>'unit', 'unknown') as unit,
        encounter_class, count(*)::int as discharges${zoneColumn(tz)}
      from ${s}.encounters where not cancelled and discharged_at is not null group by 1, 2, 3`,
  },
  {
    name: 'v_daily_census',
    columns: { dims: ['unit', 'encounter_class'], sums: ['census'], others: [] },
    doc: `Midnight census: patients in house at the end of each day (24:00 local), by the unit they were in then and class; records linked as one person count once. ${DAYS_DOC}`,
    zoned: true,
    countsPersons: true,
    // Days are local midnights; "(d + 1 day) at time zone" is the instant of the next local midnight (DST-aware).
    sql: (s, tz) => `with bounds as (
        select min(admitted_at) as lo, max(greatest(admitted_at, coalesce(discharged_at, admitted_at))) as hi
          from ${s}.encounters where not cancelled),
      days as (select generate_series(date_trunc('day', lo at time zone ${zoneOf(tz)}), date_trunc('day', hi at time zone ${zoneOf(tz)}), interval '1 day') as d from bounds)
      select days.d::date as day, coalesce(u.unit, 'unknown') as unit, e.encounter_class,
             count(distinct ${personOf('e')})::int as census${zoneColumn(tz)}
        from days
        join ${s}.encounters e on not e.cancelled
          and e.admitted_at < (days.d + interval '1 day') at time zone ${zoneOf(tz)}
          and (e.discharged_at is null or e.discharged_at >= (days.d + interval '1 day') at time zone ${zoneOf(tz)})
        left join ${s}.persons pe on pe.patient_id = e.patient_id
        left join lateral (
          select m->>'unit' as unit from jsonb_array_elements(e.movements) m
           where to_timestamp((m->>'at')::bigint / 1000.0) < (days.d + interval '1 day') at time zone ${zoneOf(tz)}
           order by (m->>'at')::bigint desc limit 1) u on true
       group by 1, 2, 3`,
  },
  {
    name: 'v_length_of_stay',
    columns: {
      dims: ['encounter_class'],
      sums: [],
      others: ['encounters', 'mean_hours', 'p50_hours', 'p90_hours'],
    },
    doc: 'Length of stay (hours) of discharged, not cancelled encounters by class: count, mean, median, p90.',
    sql: (s) => `select encounter_class, count(*)::int as encounters,
        round(avg(extract(epoch from discharged_at - admitted_at) / 3600)::numeric, 2) as mean_hours,
        round(percentile_cont(0.5) within group (order by extract(epoch from discharged_at - admitted_at) / 3600)::numeric, 2) as p50_hours,
        round(percentile_cont(0.9) within group (order by extract(epoch from discharged_at - admitted_at) / 3600)::numeric, 2) as p90_hours
      from ${s}.encounters where not cancelled and discharged_at is not null and admitted_at is not null group by 1`,
  },
  {
    name: 'v_turnaround',
    columns: {
      dims: ['category', 'code', 'display', 'priority'],
      sums: [],
      others: ['orders', 'p50_minutes', 'p90_minutes', 'p95_minutes'],
    },
    doc: 'Order placed → first final result (minutes), by category, order code and priority: count, p50, p90, p95. Cancelled orders excluded.',
    sql: (s) => `with t as (
        select o.category, o.code, o.display, o.priority,
               extract(epoch from min(r.first_final_at) - o.ordered_at) / 60 as minutes
          from ${s}.orders o join ${s}.results r on r.order_id = o.order_id
         where not o.cancelled and o.ordered_at is not null and r.first_final_at is not null
         group by o.order_id, o.category, o.code, o.display, o.priority, o.ordered_at)
      select category, code, max(display) as display, priority, count(*)::int as orders,
        round(percentile_cont(0.5) within group (order by minutes)::numeric, 1) as p50_minutes,
        round(percentile_cont(0.9) within group (order by minutes)::numeric, 1) as p90_minutes,
        round(percentile_cont(0.95) within group (order by minutes)::numeric, 1) as p95_minutes
      from t group by category, code, priority`,
  },
  {
    name: 'v_ed_times',
    columns: { dims: [], sums: [], others: ['visits', 'p50_minutes', 'p90_minutes'] },
    doc: `Emergency visits: arrival → departure (minutes) per arrival day: count, p50, p90. ${DAYS_DOC}`,
    zoned: true,
    sql: (
      s,
      tz,
    ) => `select date_trunc('day', admitted_at at time zone ${zoneOf(tz)})::date as day, count(*)::int as visits,
        round(percentile_cont(0.5) within group (order by extract(epoch from discharged_at - admitted_at) / 60)::numeric, 1) as p50_minutes,
        round(percentile_cont(0.9) within group (order by extract(epoch from discharged_at - admitted_at) / 60)::numeric, 1) as p90_minutes${zoneColumn(tz)}
      from ${s}.encounters where encounter_class = 'emergency' and not cancelled
        and admitted_at is not null and discharged_at is not null group by 1`,
  },
  {
    name: 'v_result_volumes',
    columns: { dims: ['code', 'display'], sums: [], others: ['observations', 'abnormal', 'abnormal_rate'] },
    doc: 'Released results (final/corrected, latest version) by observation code: observations, abnormal count and rate.',
    sql: (s) => `select o->>'code' as code, max(o->>'display') as display, count(*)::int as observations,
        count(*) filter (where (o->>'abnormal')::boolean)::int as abnormal,
        round(count(*) filter (where (o->>'abnormal')::boolean)::numeric / count(*), 4) as abnormal_rate
      from ${s}.results r, jsonb_array_elements(r.observations) o
      where r.version_rank in (2, 3) group by 1`,
  },
  {
    name: 'v_data_quality',
    columns: { dims: ['source_system', 'measure'], sums: ['n'], others: [] },
    doc: `Input quality per day (ingest time) and source system: duplicates suppressed (resends), out-of-order arrivals (clinical time earlier than an event already seen on the same patient stream), results corrected. ${DAYS_DOC}`,
    zoned: true,
    sql: (
      s,
      tz,
    ) => `select date_trunc('day', recorded_at at time zone ${zoneOf(tz)})::date as day, source_system,
          'duplicate_suppressed' as measure, count(*)::int as n${zoneColumn(tz)} from ${s}.duplicates group by 1, 2
      union all
      select date_trunc('day', recorded_at at time zone ${zoneOf(tz)})::date, source_system, 'out_of_order_arrival', count(*)::int${zoneColumn(tz)}
        from ${s}.event_log where out_of_order group by 1, 2
      union all
      select date_trunc('day', recorded_at at time zone ${zoneOf(tz)})::date, source_system, 'result_corrected', count(*)::int${zoneColumn(tz)}
        from ${s}.event_log where event_type = 'ResultCorrected' group by 1, 2`,
  },
  {
    name: 'v_events_per_source_day',
    columns: { dims: ['source_system', 'event_type'], sums: ['events'], others: [] },
    doc: `System usage: events per day (ingest time), source system and event type. ${DAYS_DOC}`,
    zoned: true,
    sql: (
      s,
      tz,
    ) => `select date_trunc('day', recorded_at at time zone ${zoneOf(tz)})::date as day, source_system, event_type,
        count(*)::int as events${zoneColumn(tz)} from ${s}.event_log group by 1, 2, 3`,
  },
  {
    name: 'v_rejected_input',
    columns: { dims: ['dlq_topic', 'source', 'reason'], sums: ['records'], others: [] },
    // Never listed by the query API (GET /analytics/views); serving it there is a decision of
    // its own (dead-letter sources and reasons): analysts read it in SQL.
    inApi: false,
    doc: `Input refused or parked on a dead-letter topic (adapters and projectors), per day, dead-letter topic, source and reason code. ${DAYS_DOC}`,
    addedIn: '0303_dead_letters',
    zoned: true,
    sql: (
      s,
      tz,
    ) => `select date_trunc('day', recorded_at at time zone ${zoneOf(tz)})::date as day, dlq_topic, source, reason,
        count(*)::int as records${zoneColumn(tz)} from ${s}.dead_letters group by 1, 2, 3, 4`,
  },
  {
    name: 'v_unregistered_authorities',
    columns: {
      dims: ['system', 'kinds', 'sources', 'first_seen', 'last_seen'],
      sums: [],
      others: ['events'],
    },
    doc: 'Data quality: identifier systems of assigning authorities the site configuration does not register (patient identifiers, visit numbers, order numbers), with the events carrying them, first and last ingest time (UTC), which identifiers and which senders. Register each in the site configuration (docs/site-configuration.md).',
    addedIn: '0304_unregistered_authorities',
    sql: (s) => `select system,
        (select string_agg(k, ', ' order by k) from jsonb_array_elements_text(kinds) k) as kinds,
        (select string_agg(x, ', ' order by x) from jsonb_array_elements_text(sources) x) as sources,
        events,
        to_char(first_seen_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') as first_seen,
        to_char(last_seen_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') as last_seen
      from ${s}.unregistered_authorities`,
  },
  {
    name: 'v_abnormal_rate_by_test',
    columns: {
      dims: ['loinc_code', 'display'],
      sums: ['observations', 'abnormal', 'critical'],
      others: ['abnormal_rate', 'critical_rate'],
    },
    doc: `Released results (final/corrected, latest version) by test (LOINC code, primary or alternate coding): observations, abnormal and critical counts and rates. Abnormal: any interpretation (every OBX-8 repetition / FHIR interpretation) in ${ABNORMAL_DOC}; critical: ${CRITICAL_DOC}. Observations without a LOINC code are in v_results_without_loinc.`,
    addedIn: RESULT_FACTS,
    sql: (
      s,
    ) => `select loinc_code, max(coalesce(loinc_display, display)) as display, count(*)::int as observations,
        count(*) filter (where abnormal)::int as abnormal,
        round(count(*) filter (where abnormal)::numeric / count(*), 4) as abnormal_rate,
        count(*) filter (where critical)::int as critical,
        round(count(*) filter (where critical)::numeric / count(*), 4) as critical_rate
      from ${s}.observations where released and loinc_code is not null group by 1`,
  },
  {
    name: 'v_critical_values',
    columns: { dims: ['code', 'display', 'flag', 'source_system'], sums: ['critical'], others: ['patients'] },
    doc: `Critical values: released observations with ${CRITICAL_DOC}, by test (LOINC code, else the sender's code), critical flag and sending system: count and distinct patients (records linked as one person count once).`,
    addedIn: RESULT_FACTS,
    countsPersons: true,
    sql: (s) => `select coalesce(loinc_code, code) as code, max(coalesce(loinc_display, display)) as display,
        critical_flag as flag, source_system, count(*)::int as critical,
        count(distinct ${personOf('o')})::int as patients
      from ${s}.observations o left join ${s}.persons pe on pe.patient_id = o.patient_id
     where released and critical group by 1, 3, 4`,
  },
  {
    name: 'v_results_without_loinc',
    columns: {
      dims: ['source_system'],
      sums: ['observations', 'without_loinc'],
      others: ['without_loinc_rate'],
    },
    doc: 'Data quality: released observations per sending system, and those whose code has no LOINC coding (neither primary nor alternate; LN in older events counts as LOINC), with the rate.',
    addedIn: RESULT_FACTS,
    sql: (s) => `select source_system, count(*)::int as observations,
        count(*) filter (where loinc_code is null)::int as without_loinc,
        round(count(*) filter (where loinc_code is null)::numeric / count(*), 4) as without_loinc_rate
      from ${s}.observations where released group by 1`,
  },
  {
    name: 'v_results_by_unit_system',
    columns: { dims: ['source_system', 'unit_system'], sums: ['observations'], others: [] },
    doc: 'Data quality: released observations per sending system by how the unit was sent: ucum (a UCUM coding, http://unitsofmeasure.org), other (a coding in another system), text (unit text only, as in events written before units were coded), none (no unit).',
    addedIn: RESULT_FACTS,
    sql: (s) => `select source_system, unit_system, count(*)::int as observations
      from ${s}.observations where released group by 1, 2`,
  },
  {
    name: 'v_encounters_by_principal_diagnosis',
    columns: {
      dims: ['encounter_class', 'code_system', 'code', 'display'],
      sums: ['encounters'],
      others: [],
    },
    doc: 'Encounters (cancelled visits excluded) by principal diagnosis and class: the diagnosis of the visit with the lowest priority (DG1-15 / Encounter.diagnosis.rank, 1 = principal), unranked ones after ranked ones and then by diagnosis id; refuted and entered-in-error diagnoses left out. Visits without a diagnosis are not counted.',
    addedIn: RESULT_FACTS,
    sql: (s) => `with principal as (
        select distinct on (encounter_id) encounter_id, code_system, code, display
          from ${s}.diagnoses
         where encounter_id is not null
           and coalesce(verification_status, '') not in ('refuted', 'entered-in-error')
         order by encounter_id, rank asc nulls last, diagnosis_id)
      select e.encounter_class, p.code_system, p.code, max(p.display) as display, count(*)::int as encounters
        from ${s}.encounters e join principal p on p.encounter_id = e.encounter_id
       where not e.cancelled group by 1, 2, 3`,
  },
];

/**
 * Role creation is cluster-wide and races when several schemas migrate at
 * once (parallel tests, a rebuild next to the live version): create only if
 * missing and treat "already exists" as success.
 */
export async function ensureAnalystRole(knex: Knex): Promise<void> {
  await knex.raw(`do $$ begin
      if not exists (select 1 from pg_roles where rolname = '${ANALYST_ROLE}') then
        create role ${ANALYST_ROLE} nologin;
      end if;
    exception when duplicate_object or unique_violation then null;
    end $$`);
}

/**
 * Creates the documented views a migration adds (the first views migration:
 * those without `addedIn`), with their docs, and grants them to analysts.
 */
export async function createViewsOf(
  knex: Knex,
  schema: string,
  migration: string | undefined,
): Promise<void> {
  const added = ANALYTICS_VIEWS.filter((x) => x.addedIn === migration);
  for (const v of added) {
    await knex.raw(`create view ??.?? as ${v.sql(`"${schema}"`)}`, [schema, v.name]);
    await commentOnView(knex, schema, v);
  }
  await grantViews(
    knex,
    schema,
    added.map((v) => v.name),
  );
}

/**
 * Migration 0305: every dated view counts days in the reporting zone and
 * ends with a `time_zone` column. "create or replace" (same columns,
 * time_zone appended) keeps the stable schema's views that select from
 * these working in between.
 */
export async function zoneDatedViews(knex: Knex, schema: string): Promise<void> {
  const zoned = ANALYTICS_VIEWS.filter((x) => x.zoned);
  for (const v of zoned) {
    const sql = v.sql(`"${schema}"`, reportingZoneSql(`"${schema}"`));
    await knex.raw(`create or replace view ??.?? as ${sql}`, [schema, v.name]);
    await commentOnView(knex, schema, v);
  }
  await grantViews(
    knex,
    schema,
    zoned.map((v) => v.name),
  );
}

/**
 * PERSONS_MIGRATION: the views that count people count persons. "create or
 * replace" (same columns) keeps the stable views over them working.
 */
export async function countPersonsInViews(knex: Knex, schema: string): Promise<void> {
  const views = ANALYTICS_VIEWS.filter((x) => x.countsPersons);
  for (const v of views) {
    const s = `"${schema}"`;
    await knex.raw(`create or replace view ??.?? as ${v.sql(s, v.zoned ? reportingZoneSql(s) : undefined)}`, [
      schema,
      v.name,
    ]);
    await commentOnView(knex, schema, v);
  }
  await grantViews(
    knex,
    schema,
    views.map((v) => v.name),
  );
}

async function commentOnView(knex: Knex, schema: string, v: AnalyticsView): Promise<void> {
  await knex.raw(`comment on view ??.?? is ${knex.raw('?', [v.doc]).toQuery()}`, [schema, v.name]);
}

/** Grants the analyst role usage of a schema and select on the given views only. */
export async function grantViews(knex: Knex, schema: string, views: readonly string[]): Promise<void> {
  await ensureAnalystRole(knex);
  await knex.raw(`grant usage on schema ?? to ${ANALYST_ROLE}`, [schema]);
  for (const v of views) await knex.raw(`grant select on ??.?? to ${ANALYST_ROLE}`, [schema, v]);
}

/**
 * Analysts see the documented views of the stable schema, never its tables.
 * Only those the active version has (`relations`): a version made by an
 * older release lacks the views added since, until its migrations run.
 */
export async function grantStableViews(
  trx: Knex,
  stable: string,
  relations: readonly string[],
): Promise<void> {
  const present = new Set(relations);
  const views = ANALYTICS_VIEWS.filter((v) => present.has(v.name));
  await grantViews(
    trx,
    stable,
    views.map((v) => v.name),
  );
  for (const v of views) await commentOnView(trx, stable, v);
}
