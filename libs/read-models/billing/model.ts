import type { Knex } from 'knex';
import type { Migration } from '../../db/index.js';
import type { Projection } from '../../projections/runner.js';
import { readModelProjection, type ReadModel } from '../../projections/store.js';
import { clinicalTopics } from '../../projections/topics.js';
import type { VersionHooks } from '../../projections/versions.js';
import { BILLING_SKIP, evolve, needs, presence, type BillingTables } from './domain.js';

export const BILLING_NAME = 'billing';

export const billingTables = {
  accounts: {
    key: 'encounter_id',
    patientColumn: 'patient_id',
    timeColumns: ['admitted_at', 'discharged_at'],
  },
  charge_lines: {
    key: 'line_id',
    patientColumn: 'patient_id',
    timeColumns: ['ordered_at', 'first_final_at'],
  },
  coverages: { key: 'coverage_id', patientColumn: 'patient_id', timeColumns: ['version_at'] },
} as const;

/**
 * An account's primary coverage: its patient's active coverage whose period
 * holds the admission day, lowest coordination-of-benefits order first
 * (none given: last), then coverage id (a stable tie break). Chosen when
 * read, so a coverage recorded after the charges covers them at once, live
 * and on replay alike. Days are UTC days: billing keeps no site zone, and
 * plan periods are whole dates. An account with no admission time yet (a
 * placeholder) is covered by any active coverage of its patient.
 */
const accountCoverageSql = (s: string) => `
  select distinct on (a.encounter_id) a.encounter_id, c.coverage_id, c.coverage_order, c.payer_id,
         c.payer_id_system, c.payer_name, c.plan_code, c.plan_display, c.plan_type, c.group_number,
         c.group_name, c.member_id, c.period_start, c.period_end
    from ${s}.accounts a
    join ${s}.coverages c on c.patient_id = a.patient_id and c.status = 'active'
   where a.admitted_at is null
      or ((c.period_start is null or c.period_start <= to_char(a.admitted_at at time zone 'UTC', 'YYYY-MM-DD'))
          and (c.period_end is null or c.period_end >= to_char(a.admitted_at at time zone 'UTC', 'YYYY-MM-DD')))
   order by a.encounter_id, c.coverage_order asc nulls last, c.coverage_id`;

/** The worklist's problems, one row each; line and code are null for a problem of a whole account. */
const billingProblemsSql = (s: string, withCoverage: boolean) => `
  select 'resulted_order_without_charge' as problem, c.line_id, c.patient_id, c.encounter_id, c.code
    from ${s}.charge_lines c where not c.placed and c.first_final_at is not null
  union all
  select 'charge_on_cancelled_encounter', c.line_id, c.patient_id, c.encounter_id, c.code
    from ${s}.charge_lines c join ${s}.accounts a on a.encounter_id = c.encounter_id
   where a.status = 'cancelled' and c.placed and not c.order_cancelled
  union all
  select 'charge_without_price', ch.line_id, ch.patient_id, ch.encounter_id, ch.code
    from ${s}.charges ch where ch.status in ('pending', 'billable') and ch.price_cents is null${
      withCoverage
        ? `
  union all
  select 'charges_without_coverage', null::text, a.patient_id, a.encounter_id, null::text
    from ${s}.accounts a
   where a.status <> 'cancelled'
     and exists (select 1 from ${s}.charges ch
                  where ch.encounter_id = a.encounter_id and ch.status in ('pending', 'billable'))
     and not exists (select 1 from ${s}.account_coverage ac where ac.encounter_id = a.encounter_id)`
        : ''
    }`;

/**
 * A realistic sample chargemaster (LOINC order codes → CPT, list price in
 * cents). It is an ordinary table: finance edits it in place, prices are
 * joined at read time, and `hub projections rebuild billing` carries the
 * edited table over to the new version.
 */
export const CHARGEMASTER_SEED: readonly {
  code: string;
  description: string;
  category: string;
  cpt: string;
  price_cents: number;
}[] = [
  {
    code: '58410-2',
    description: 'CBC panel, automated',
    category: 'laboratory',
    cpt: '85027',
    price_cents: 4500,
  },
  {
    code: '57021-8',
    description: 'CBC with auto differential',
    category: 'laboratory',
    cpt: '85025',
    price_cents: 5200,
  },
  {
    code: '24323-8',
    description: 'Comprehensive metabolic panel',
    category: 'laboratory',
    cpt: '80053',
    price_cents: 6100,
  },
  {
    code: '51990-0',
    description: 'Basic metabolic panel',
    category: 'laboratory',
    cpt: '80048',
    price_cents: 4000,
  },
  { code: '57698-3', description: 'Lipid panel', category: 'laboratory', cpt: '80061', price_cents: 5500 },
  { code: '4548-4', description: 'Hemoglobin A1c', category: 'laboratory', cpt: '83036', price_cents: 3500 },
  { code: '3016-3', description: 'TSH', category: 'laboratory', cpt: '84443', price_cents: 5000 },
  {
    code: '89579-7',
    description: 'Troponin I, high sensitivity',
    category: 'laboratory',
    cpt: '84484',
    price_cents: 7000,
  },
  {
    code: '24356-8',
    description: 'Urinalysis, complete',
    category: 'laboratory',
    cpt: '81001',
    price_cents: 2000,
  },
  {
    code: '5902-2',
    description: 'Prothrombin time (PT)',
    category: 'laboratory',
    cpt: '85610',
    price_cents: 1800,
  },
  {
    code: '2160-0',
    description: 'Creatinine, serum',
    category: 'laboratory',
    cpt: '82565',
    price_cents: 1500,
  },
  { code: '600-7', description: 'Blood culture', category: 'laboratory', cpt: '87040', price_cents: 8500 },
  {
    code: '36643-5',
    description: 'XR chest, 2 views',
    category: 'imaging',
    cpt: '71046',
    price_cents: 18000,
  },
  {
    code: '30799-1',
    description: 'CT head without contrast',
    category: 'imaging',
    cpt: '70450',
    price_cents: 90000,
  },
  { code: '24627-2', description: 'CT chest', category: 'imaging', cpt: '71250', price_cents: 110000 },
  { code: '24558-9', description: 'US abdomen', category: 'imaging', cpt: '76700', price_cents: 42000 },
];

/** The chargemaster is edited by finance, not derived from events: a new version keeps the edits. */
export const BILLING_VERSION_HOOKS: VersionHooks = { carryOver: ['chargemaster'] };

/**
 * Accounts by person: records linked as one person (PatientsLinked, the store's `persons`
 * view) are billed as one, without moving a row, so an unlink splits them again.
 */
const PERSON_ACCOUNTS_MIGRATION: Migration = {
  name: '0204_billing_person_accounts',
  async up(knex: Knex, schema: string) {
    await knex.raw(
      `create view ??.person_accounts as
         select coalesce(pe.person_id, a.patient_id) as person_id, a.encounter_id, a.patient_id,
                a.encounter_class, a.admitted_at, a.discharged_at, a.status, a.payer
           from ??.accounts a
           left join ??.persons pe on pe.patient_id = a.patient_id`,
      [schema, schema, schema],
    );
  },
};

export function billingModel(
  topics: readonly string[] = clinicalTopics(),
): ReadModel<BillingTables, typeof BILLING_SKIP> {
  return {
    name: BILLING_NAME,
    topics,
    tables: billingTables,
    skip: BILLING_SKIP,
    needs,
    presence,
    evolve: (draft, e, resolve) => evolve(draft, e, resolve),
    migrations: [
      {
        name: '0201_billing',
        async up(knex: Knex, schema: string) {
          await knex.schema.withSchema(schema).createTable('accounts', (t) => {
            t.text('encounter_id').primary();
            t.text('patient_id').notNullable().index();
            t.text('encounter_class');
            t.timestamp('admitted_at', { useTz: true });
            t.timestamp('discharged_at', { useTz: true });
            t.text('status').notNullable();
            t.text('payer');
          });
          await knex.schema.withSchema(schema).createTable('charge_lines', (t) => {
            t.text('line_id').primary();
            t.text('patient_id').notNullable().index();
            t.text('order_id');
            t.text('encounter_id').index();
            t.text('code').notNullable();
            t.text('code_system').notNullable();
            t.text('description');
            t.text('category').notNullable();
            t.text('priority');
            t.timestamp('ordered_at', { useTz: true });
            t.boolean('placed').notNullable();
            t.boolean('order_cancelled').notNullable();
            t.timestamp('first_final_at', { useTz: true });
            t.text('final_result_id');
            t.text('status').notNullable();
          });
          await knex.schema.withSchema(schema).createTable('chargemaster', (t) => {
            t.text('code').primary();
            t.text('description').notNullable();
            t.text('category').notNullable();
            t.text('cpt');
            t.integer('price_cents');
            t.boolean('active').notNullable().defaultTo(true);
          });
          await knex
            .withSchema(schema)
            .into('chargemaster')
            .insert([...CHARGEMASTER_SEED]);
        },
      },
      {
        name: '0202_billing_views',
        async up(knex: Knex, schema: string) {
          await knex.raw(
            `create view ??.charges as
               select c.line_id, c.patient_id, c.order_id, c.encounter_id, c.code, c.description, c.category,
                      c.priority, c.ordered_at, c.first_final_at, c.final_result_id,
                      a.status as account_status, a.payer, cm.cpt, cm.price_cents,
                      case when c.status = 'voided' or a.status = 'cancelled' then 'voided' else c.status end as status
                 from ??.charge_lines c
                 left join ??.accounts a on a.encounter_id = c.encounter_id
                 left join ??.chargemaster cm on cm.code = c.code and cm.active`,
            [schema, schema, schema, schema],
          );
          // One row per problem a billing analyst must look at.
          await knex.raw(`create view ??.billing_problems as ${billingProblemsSql(`"${schema}"`, false)}`, [
            schema,
          ]);
        },
      },
      {
        // Coverage (CoverageRecorded, HL7 IN1/IN2, FHIR Coverage) and the worklist's
        // "charges without coverage". Coverage recorded before this migration was not
        // kept: rebuild billing (hub projections rebuild billing) to read it from the log.
        name: '0203_billing_coverage',
        async up(knex: Knex, schema: string) {
          await knex.schema.withSchema(schema).createTable('coverages', (t) => {
            t.text('coverage_id').primary();
            t.text('patient_id').notNullable().index();
            t.integer('coverage_order');
            t.text('payer_id');
            t.text('payer_id_system');
            t.text('payer_name');
            t.text('plan_code');
            t.text('plan_display');
            t.text('plan_type');
            t.text('group_number');
            t.text('group_name');
            t.text('member_id');
            t.text('relationship');
            // Whole ISO dates as text (they sort as dates); node-pg would turn a date into a local-midnight Date.
            t.text('period_start');
            t.text('period_end');
            t.text('status').notNullable();
            t.text('encounter_id');
            t.timestamp('version_at', { useTz: true }).notNullable();
            t.text('version_event').notNullable();
          });
          await knex.raw(`create view ??.account_coverage as ${accountCoverageSql(`"${schema}"`)}`, [schema]);
          // Same columns, one more kind of row: "create or replace" keeps the stable view on it working.
          await knex.raw(
            `create or replace view ??.billing_problems as ${billingProblemsSql(`"${schema}"`, true)}`,
            [schema],
          );
        },
      },
      PERSON_ACCOUNTS_MIGRATION,
    ],
  };
}

export function billingProjection(topics?: readonly string[]): Projection {
  return readModelProjection(billingModel(topics));
}
