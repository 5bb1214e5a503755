import type { Knex } from 'knex';
import type { Migration } from '../../db/index.js';
import type { DecodedRecord } from '../../kafka/consumer.js';
import type { Projection } from '../../projections/runner.js';
import { readModelProjection, type ReadModel } from '../../projections/store.js';
import { clinicalTopics } from '../../projections/topics.js';
import type { VersionHooks } from '../../projections/versions.js';
import { authorityNeeds, countAuthorities, memoIsRegistered, type IsRegistered } from './authorities.js';
import { evolve, needs, type AnalyticsTables } from './domain.js';
import {
  countPersonsInViews,
  createViewsOf,
  grantStableViews,
  PERSONS_MIGRATION,
  zoneDatedViews,
} from './views.js';

export const ANALYTICS_NAME = 'analytics';

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
  observations: {
    key: 'observation_key',
    patientColumn: 'patient_id',
    jsonColumns: ['interpretations'],
    timeColumns: ['observed_at'],
  },
  diagnoses: {
    key: 'diagnosis_id',
    patientColumn: 'patient_id',
    timeColumns: ['diagnosed_at', 'version_at'],
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

/** The fact tables, then the documented views over them (views.ts). */
const ANALYTICS_MIGRATIONS: readonly Migration[] = [
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
      // Written by projector-analytics' dead-letter tally (its dead-letters.ts), not by the projection.
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
      // One row, written by projector-analytics at start (its reporting-zone.ts) and
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
      await zoneDatedViews(knex, schema);
    },
  },
  {
    // Result-level facts the events carry since #18 (codings with alternates, UCUM
    // units, every interpretation) and diagnoses, with the KPI views over them.
    // New tables only: what the older tables hold does not change. Results and
    // diagnoses projected before this migration are not in them: rebuild
    // analytics (hub projections rebuild analytics) to read them from the log.
    name: '0306_result_facts_and_diagnoses',
    async up(knex: Knex, schema: string) {
      await knex.schema.withSchema(schema).createTable('observations', (t) => {
        t.text('observation_key').primary();
        t.text('result_id').notNullable().index();
        t.text('patient_id').notNullable().index();
        t.text('source_system').notNullable();
        t.text('category').notNullable();
        t.boolean('released').notNullable();
        t.text('observation_id');
        t.text('sub_id');
        t.text('code').notNullable();
        t.text('code_system').notNullable();
        t.text('display');
        t.text('loinc_code').index();
        t.text('loinc_display');
        t.text('value_type').notNullable();
        t.text('unit');
        t.text('unit_code');
        t.text('unit_system').notNullable();
        t.jsonb('interpretations').notNullable();
        t.boolean('abnormal').notNullable();
        t.boolean('critical').notNullable();
        t.text('critical_flag');
        t.timestamp('observed_at', { useTz: true });
      });
      await knex.schema.withSchema(schema).createTable('diagnoses', (t) => {
        t.text('diagnosis_id').primary();
        t.text('patient_id').notNullable().index();
        t.text('encounter_id').index();
        t.text('code').notNullable();
        t.text('code_system').notNullable();
        t.text('display');
        t.text('category').notNullable();
        t.text('diagnosis_type');
        t.integer('rank');
        t.text('clinical_status');
        t.text('verification_status');
        t.timestamp('diagnosed_at', { useTz: true });
        t.timestamp('version_at', { useTz: true }).notNullable();
        t.text('version_event').notNullable();
      });
      await createViewsOf(knex, schema, '0306_result_facts_and_diagnoses');
    },
  },
  {
    // Records linked as one person (PatientsLinked; the store's `persons` view) count once
    // where a view counts people (census, critical values' patients). Views only: an unlink
    // counts them apart again at the next read.
    name: PERSONS_MIGRATION,
    async up(knex: Knex, schema: string) {
      await countPersonsInViews(knex, schema);
    },
  },
];

/**
 * `isRegistered` says which identifier systems the site configuration
 * registers (libs/identity isRegisteredSystem); the others are counted as
 * unregistered authorities. Default: none is registered.
 */
export function analyticsModel(
  topics: readonly string[] = clinicalTopics(),
  configured: IsRegistered = () => false,
): ReadModel<AnalyticsTables> {
  const isRegistered = memoIsRegistered(configured);
  return {
    name: ANALYTICS_NAME,
    topics,
    tables: analyticsTables,
    needs: (e, resolve) => {
      const own = needs(e, resolve);
      // Most events carry no unregistered authority: their own needs, not a merged copy.
      const authorities = authorityNeeds(e, isRegistered);
      return authorities.unregistered_authorities ? { ...own, ...authorities } : own;
    },
    evolve: (draft, e, resolve) => {
      evolve(draft, e, resolve);
      countAuthorities(draft, e, isRegistered);
    },
    duplicates: recordDuplicates,
    migrations: ANALYTICS_MIGRATIONS,
  };
}

export function analyticsProjection(topics?: readonly string[], isRegistered?: IsRegistered): Projection {
  return readModelProjection(analyticsModel(topics, isRegistered));
}

/**
 * Grants on the stable views; the dead-letter tally and the reporting zone
 * (written by the live projector, not derived from the log) carried to a
 * new version, so a rebuild neither loses them nor needs the configuration.
 */
export const ANALYTICS_VERSION_HOOKS: VersionHooks = {
  afterSwitch: (trx, stable, relations) => grantStableViews(trx, stable, relations),
  carryOver: ['dead_letters', 'settings'],
};
