import type { Knex } from 'knex';
import type { Projection } from '../../libs/db/projection.js';
import type { DecodedRecord } from '../../libs/kafka/consumer.js';
import { readModelProjection, type ReadModel } from '../../libs/projections/store.js';
import { clinicalTopics } from '../../libs/projections/topics.js';
import { authorityNeeds, countAuthorities, type IsRegistered } from './authorities.js';
import { evolve, needs, type AnalyticsTables } from './domain.js';

export const ANALYTICS_NAME = 'analytics';
/** The read-only role analysts use (directly or via `grant hub_analyst to <login>`). */
export const ANALYST_ROLE = 'hub_analyst';

export const analyticsTables = {
  encounters: {
    key: 'encounter_id',
    patientColumn: 'patient_id',
    jsonColumns: ['movements'],
    timeColumns: ['admitted_at', 'discharged_at'],
  },
  orders: { key: 'order_id', patientColumn: 'patient_id', timeColumns: ['ordered_at'] },
  results: {
    key: 'result_id',
    patientColumn: 'patient_id',
    jsonColumns: ['observations'],
    timeColumns: ['first_final_at', 'version_at'],
  },
  // One row per applied event, never rewritten.
  event_log: { key: 'event_id', timeColumns: ['occurred_at', 'recorded_at'], appendOnly: true },
  stream_clocks: { key: 'stream', timeColumns: ['max_occurred_at'] },
  unregistered_authorities: {
    key: 'system',
    jsonColumns: ['kinds', 'sources'],
    timeColumns: ['first_seen_at', 'last_seen_at'],
  },
} as const;

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

const DAYS_DOC =
  "Days are calendar days in the site's reporting zone (column time_zone: the site configuration's defaultTimeZone, UTC when none is configured).";

/**
 * The documented views: the only objects the analyst role can read. Times
 * are UTC instants; days are calendar days in the reporting zone (above).
 * Minutes/hours are fractional.
 */
export const ANALYTICS_VIEWS: readonly {
  name: string;
  doc: string;
  sql: ViewSql;
  /** The migration that creates it, when not the first views migration. */
  addedIn?: string;
  /** Buckets by day: replaced by 0305 to count days in the reporting zone. */
  zoned?: true;
}[] = [
  {
    name: 'v_daily_admissions',
    doc: `Admissions (encounter starts, cancelled visits excluded) per day, admitting unit and encounter class. ${DAYS_DOC}`,
    zoned: true,
    sql: (s, tz) => `select date_trunc('day', admitted_at at time zone ${zoneOf(tz)})::date as day,
        coalesce(movements->0->>'unit', 'unknown') as unit, encounter_class, count(*)::int as admissions${zoneColumn(tz)}
      from ${s}.encounters where not cancelled and admitted_at is not null group by 1, 2, 3`,
  },
  {
    name: 'v_daily_discharges',
    doc: `Discharges per day, discharging unit (last movement) and encounter class. ${DAYS_DOC}`,
    zoned: true,
    sql: (s, tz) => `select date_trunc('day', discharged_at at time zone ${zoneOf(tz)})::date as day,
        coalesce(movements->(jsonb_array_length(movements) - 1)->>'unit', 'unknown') as unit,
        encounter_class, count(*)::int as discharges${zoneColumn(tz)}
      from ${s}.encounters where not cancelled and discharged_at is not null group by 1, 2, 3`,
  },
  {
    name: 'v_daily_census',
    doc: `Midnight census: patients in house at the end of each day (24:00 local), by the unit they were in then and class. ${DAYS_DOC}`,
    zoned: true,
    // Days are local midnights; "(d + 1 day) at time zone" is the instant of the next local midnight (DST-aware).
    sql: (s, tz) => `with bounds as (
        select min(admitted_at) as lo, max(greatest(admitted_at, coalesce(discharged_at, admitted_at))) as hi
          from ${s}.encounters where not cancelled),
      days as (select generate_series(date_trunc('day', lo at time zone ${zoneOf(tz)}), date_trunc('day', hi at time zone ${zoneOf(tz)}), interval '1 day') as d from bounds)
      select days.d::date as day, coalesce(u.unit, 'unknown') as unit, e.encounter_class, count(*)::int as census${zoneColumn(tz)}
        from days
        join ${s}.encounters e on not e.cancelled
          and e.admitted_at < (days.d + interval '1 day') at time zone ${zoneOf(tz)}
          and (e.discharged_at is null or e.discharged_at >= (days.d + interval '1 day') at time zone ${zoneOf(tz)})
        left join lateral (
          select m->>'unit' as unit from jsonb_array_elements(e.movements) m
           where to_timestamp((m->>'at')::bigint / 1000.0) < (days.d + interval '1 day') at time zone ${zoneOf(tz)}
           order by (m->>'at')::bigint desc limit 1) u on true
       group by 1, 2, 3`,
  },
  {
    name: 'v_length_of_stay',
    doc: 'Length of stay (hours) of discharged, not cancelled encounters by class: count, mean, median, p90.',
    sql: (s) => `select encounter_class, count(*)::int as encounters,
        round(avg(extract(epoch from discharged_at - admitted_at) / 3600)::numeric, 2) as mean_hours,
        round(percentile_cont(0.5) within group (order by extract(epoch from discharged_at - admitted_at) / 3600)::numeric, 2) as p50_hours,
        round(percentile_cont(0.9) within group (order by extract(epoch from discharged_at - admitted_at) / 3600)::numeric, 2) as p90_hours
      from ${s}.encounters where not cancelled and discharged_at is not null and admitted_at is not null group by 1`,
  },
  {
    name: 'v_turnaround',
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
    doc: 'Released results (final/corrected, latest version) by observation code: observations, abnormal count and rate.',
    sql: (s) => `select o->>'code' as code, max(o->>'display') as display, count(*)::int as observations,
        count(*) filter (where (o->>'abnormal')::boolean)::int as abnormal,
        round(count(*) filter (where (o->>'abnormal')::boolean)::numeric / count(*), 4) as abnormal_rate
      from ${s}.results r, jsonb_array_elements(r.observations) o
      where r.version_rank in (2, 3) group by 1`,
  },
  {
    name: 'v_data_quality',
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
async function createViewsOf(knex: Knex, schema: string, migration: string | undefined): Promise<void> {
  const added = ANALYTICS_VIEWS.filter((x) => x.addedIn === migration);
  for (const v of added) {
    await knex.raw(`create view ??.?? as ${v.sql(`"${schema}"`)}`, [schema, v.name]);
    await knex.raw(`comment on view ??.?? is ${knex.raw('?', [v.doc]).toQuery()}`, [schema, v.name]);
  }
  await grantViews(
    knex,
    schema,
    added.map((v) => v.name),
  );
}

/** Grants the analyst role usage of a schema and select on the given views only. */
export async function grantViews(knex: Knex, schema: string, views: readonly string[]): Promise<void> {
  await ensureAnalystRole(knex);
  await knex.raw(`grant usage on schema ?? to ${ANALYST_ROLE}`, [schema]);
  for (const v of views) await knex.raw(`grant select on ??.?? to ${ANALYST_ROLE}`, [schema, v]);
}

async function recordDuplicates(trx: Knex.Transaction, schema: string, records: readonly DecodedRecord[]) {
  await trx
    .withSchema(schema)
    .into('duplicates')
    .insert(
      records.map((r) => ({
        position: `${r.topic}|${r.partition}|${r.offset}`,
        event_id: r.event.data.meta.eventId,
        event_type: r.event.type,
        source_system: r.event.data.meta.source.system,
        recorded_at: new Date(r.event.data.meta.recordedAt),
      })),
    )
    .onConflict('position')
    .ignore();
}

/**
 * `isRegistered` says which identifier systems the site configuration
 * registers (libs/identity isRegisteredSystem); the others are counted as
 * unregistered authorities. Default: none is registered.
 */
export function analyticsModel(
  topics: readonly string[] = clinicalTopics(),
  isRegistered: IsRegistered = () => false,
): ReadModel<AnalyticsTables> {
  return {
    name: ANALYTICS_NAME,
    topics,
    tables: analyticsTables,
    needs: (e, resolve) => ({ ...needs(e, resolve), ...authorityNeeds(e, isRegistered) }),
    evolve: (draft, e, resolve) => {
      evolve(draft, e, resolve);
      countAuthorities(draft, e, isRegistered);
    },
    duplicates: recordDuplicates,
    migrations: [
      {
        name: '0301_analytics',
        async up(knex: Knex, schema: string) {
          await knex.schema.withSchema(schema).createTable('encounters', (t) => {
            t.text('encounter_id').primary();
            t.text('patient_id').notNullable().index();
            t.text('encounter_class').notNullable();
            t.text('service');
            t.timestamp('admitted_at', { useTz: true }).index();
            t.timestamp('discharged_at', { useTz: true });
            t.boolean('cancelled').notNullable();
            t.jsonb('movements').notNullable();
          });
          await knex.schema.withSchema(schema).createTable('orders', (t) => {
            t.text('order_id').primary();
            t.text('patient_id').notNullable().index();
            t.text('code');
            t.text('display');
            t.text('category');
            t.text('priority');
            t.timestamp('ordered_at', { useTz: true });
            t.boolean('cancelled').notNullable();
          });
          await knex.schema.withSchema(schema).createTable('results', (t) => {
            t.text('result_id').primary();
            t.text('patient_id').notNullable().index();
            t.text('order_id').index();
            t.text('code').notNullable();
            t.text('display');
            t.text('category').notNullable();
            t.text('status').notNullable();
            t.timestamp('first_final_at', { useTz: true });
            t.integer('version_rank').notNullable();
            t.timestamp('version_at', { useTz: true }).notNullable();
            t.uuid('version_event').notNullable();
            t.boolean('corrected').notNullable();
            t.jsonb('observations').notNullable();
          });
          await knex.schema.withSchema(schema).createTable('event_log', (t) => {
            t.uuid('event_id').primary();
            t.text('aggregate').notNullable();
            t.text('event_type').notNullable();
            t.text('source_system').notNullable();
            t.timestamp('occurred_at', { useTz: true }).notNullable();
            t.timestamp('recorded_at', { useTz: true }).notNullable().index();
            t.boolean('out_of_order').notNullable();
          });
          await knex.schema.withSchema(schema).createTable('stream_clocks', (t) => {
            t.text('stream').primary();
            t.timestamp('max_occurred_at', { useTz: true }).notNullable();
          });
          await knex.schema.withSchema(schema).createTable('duplicates', (t) => {
            t.text('position').primary();
            t.uuid('event_id').notNullable();
            t.text('event_type').notNullable();
            t.text('source_system').notNullable();
            t.timestamp('recorded_at', { useTz: true }).notNullable();
          });
        },
      },
      {
        name: '0302_analytics_views',
        async up(knex: Knex, schema: string) {
          await createViewsOf(knex, schema, undefined);
        },
      },
      {
        name: '0303_dead_letters',
        async up(knex: Knex, schema: string) {
          // Written by the dead-letter tally (dead-letters.ts), not by the projection.
          await knex.schema.withSchema(schema).createTable('dead_letters', (t) => {
            t.text('position').primary();
            t.text('dlq_topic').notNullable();
            t.text('source').notNullable();
            t.text('reason').notNullable();
            t.timestamp('recorded_at', { useTz: true }).notNullable();
          });
          await createViewsOf(knex, schema, '0303_dead_letters');
        },
      },
      {
        name: '0304_unregistered_authorities',
        async up(knex: Knex, schema: string) {
          // Written by the projection (authorities.ts): rebuilt from the log by a replay.
          await knex.schema.withSchema(schema).createTable('unregistered_authorities', (t) => {
            t.text('system').primary();
            t.integer('events').notNullable();
            t.timestamp('first_seen_at', { useTz: true }).notNullable();
            t.timestamp('last_seen_at', { useTz: true }).notNullable();
            t.jsonb('kinds').notNullable();
            t.jsonb('sources').notNullable();
          });
          await createViewsOf(knex, schema, '0304_unregistered_authorities');
        },
      },
      {
        name: '0305_reporting_time_zone',
        async up(knex: Knex, schema: string) {
          // One row, written by the projector at start (reporting-zone.ts) and
          // carried over by a rebuild (ANALYTICS_VERSION_HOOKS): configuration,
          // not derived from the log. Not granted to analysts; the dated views
          // show it as their time_zone column.
          await knex.raw(
            `create table ??.settings (
               id boolean primary key default true check (id),
               reporting_time_zone text not null default 'UTC')`,
            [schema],
          );
          await knex.raw('insert into ??.settings default values', [schema]);
          // "create or replace" (same columns, time_zone appended) keeps the
          // stable schema's views that select from these working in between.
          const zoned = ANALYTICS_VIEWS.filter((x) => x.zoned);
          for (const v of zoned) {
            const sql = v.sql(`"${schema}"`, reportingZoneSql(`"${schema}"`));
            await knex.raw(`create or replace view ??.?? as ${sql}`, [schema, v.name]);
            await knex.raw(`comment on view ??.?? is ${knex.raw('?', [v.doc]).toQuery()}`, [schema, v.name]);
          }
          await grantViews(
            knex,
            schema,
            zoned.map((v) => v.name),
          );
        },
      },
    ],
  };
}

export function analyticsProjection(topics?: readonly string[], isRegistered?: IsRegistered): Projection {
  return readModelProjection(analyticsModel(topics, isRegistered));
}
