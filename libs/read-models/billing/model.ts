import type { Knex } from 'knex';
import type { Projection } from '../../projections/runner.js';
import { readModelProjection, type ReadModel } from '../../projections/store.js';
import { clinicalTopics } from '../../projections/topics.js';
import type { VersionHooks } from '../../projections/versions.js';
import { evolve, needs, type BillingTables } from './domain.js';

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
} as const;

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

export function billingModel(topics: readonly string[] = clinicalTopics()): ReadModel<BillingTables> {
  return {
    name: BILLING_NAME,
    topics,
    tables: billingTables,
    needs,
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
          await knex.raw(
            `create view ??.billing_problems as
               select 'resulted_order_without_charge' as problem, c.line_id, c.patient_id, c.encounter_id, c.code
                 from ??.charge_lines c where not c.placed and c.first_final_at is not null
               union all
               select 'charge_on_cancelled_encounter', c.line_id, c.patient_id, c.encounter_id, c.code
                 from ??.charge_lines c join ??.accounts a on a.encounter_id = c.encounter_id
                where a.status = 'cancelled' and c.placed and not c.order_cancelled
               union all
               select 'charge_without_price', ch.line_id, ch.patient_id, ch.encounter_id, ch.code
                 from ??.charges ch where ch.status in ('pending', 'billable') and ch.price_cents is null`,
            [schema, schema, schema, schema, schema],
          );
        },
      },
    ],
  };
}

export function billingProjection(topics?: readonly string[]): Projection {
  return readModelProjection(billingModel(topics));
}
