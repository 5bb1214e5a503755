import type { Knex } from 'knex';
import type { Projection } from '../../libs/db/projection.js';
import { readModelProjection, type ReadModel } from '../../libs/projections/store.js';
import { clinicalTopics } from '../../libs/projections/topics.js';
import { evolve, needs, type PortalTables } from './domain.js';

export const PORTAL_NAME = 'portal';

export const portalTables = {
  patients: { key: 'patient_id', jsonColumns: ['resource', 'replaces'] },
  encounters: {
    key: 'encounter_id',
    patientColumn: 'patient_id',
    subjectColumns: ['resource'],
    jsonColumns: ['resource'],
  },
  service_requests: {
    key: 'order_id',
    patientColumn: 'patient_id',
    subjectColumns: ['resource'],
    jsonColumns: ['resource'],
  },
  reports: {
    key: 'result_id',
    patientColumn: 'patient_id',
    subjectColumns: ['resource'],
    jsonColumns: ['resource'],
    timeColumns: ['version_at'],
  },
  observations: {
    key: 'observation_id',
    patientColumn: 'patient_id',
    subjectColumns: ['resource'],
    jsonColumns: ['resource'],
  },
} as const;

export function portalModel(topics: readonly string[] = clinicalTopics()): ReadModel<PortalTables> {
  return {
    name: PORTAL_NAME,
    topics,
    tables: portalTables,
    needs,
    evolve: (draft, e, resolve) => evolve(draft, e, resolve),
    migrations: [
      {
        name: '0101_portal',
        async up(knex: Knex, schema: string) {
          await knex.schema.withSchema(schema).createTable('patients', (t) => {
            t.text('patient_id').primary();
            t.text('merged_into');
            t.boolean('placeholder').notNullable();
            t.jsonb('replaces').notNullable();
            t.jsonb('resource').notNullable();
          });
          await knex.schema.withSchema(schema).createTable('encounters', (t) => {
            t.text('encounter_id').primary();
            t.text('patient_id').notNullable().index();
            t.boolean('visible').notNullable();
            t.jsonb('resource').notNullable();
          });
          await knex.schema.withSchema(schema).createTable('service_requests', (t) => {
            t.text('order_id').primary();
            t.text('patient_id').notNullable().index();
            t.jsonb('resource').notNullable();
          });
          await knex.schema.withSchema(schema).createTable('reports', (t) => {
            t.text('result_id').primary();
            t.text('patient_id').notNullable().index();
            t.text('order_id');
            t.boolean('visible').notNullable();
            t.integer('version_rank').notNullable();
            t.timestamp('version_at', { useTz: true }).notNullable();
            t.uuid('version_event').notNullable();
            t.jsonb('resource').notNullable();
          });
          await knex.schema.withSchema(schema).createTable('observations', (t) => {
            t.text('observation_id').primary();
            t.text('result_id').notNullable().index();
            t.text('patient_id').notNullable().index();
            t.jsonb('resource').notNullable();
          });
        },
      },
      {
        // What the portal serves: a patient's own visible record, merged ids
        // answered by their survivor. The tables also hold withdrawn rows
        // (entered in error, cancelled reports) so that late events cannot
        // bring them back.
        name: '0102_portal_views',
        async up(knex: Knex, schema: string) {
          await knex.raw(
            `create view ??.patient_record as
               select patient_id, 'Patient' as resource_type, patient_id as resource_id, resource
                 from ??.patients where merged_into is null
               union all
               select patient_id, 'Encounter', encounter_id, resource from ??.encounters where visible
               union all
               select patient_id, 'ServiceRequest', order_id, resource from ??.service_requests
               union all
               select patient_id, 'DiagnosticReport', result_id, resource from ??.reports where visible
               union all
               select patient_id, 'Observation', observation_id, resource from ??.observations`,
            [schema, schema, schema, schema, schema, schema],
          );
        },
      },
    ],
  };
}

export function portalProjection(topics?: readonly string[]): Projection {
  return readModelProjection(portalModel(topics));
}
