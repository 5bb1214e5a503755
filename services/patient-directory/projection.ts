import type { Knex } from 'knex';
import { EVENT_CONTRACTS } from '../../libs/events/index.js';
import type { Projection } from '../../libs/projections/runner.js';
import { readModelProjection, type ReadModel, type TableSpecs } from '../../libs/projections/store.js';
import { evolve, needs, type DirectoryTables, type PatientRow } from './domain.js';

/** The one topic the directory reads (catalog name; a deployment's suffix is applied by the caller). */
export const PATIENT_TOPIC = EVENT_CONTRACTS.PatientRegistered.topic;

export const directoryTables: TableSpecs<DirectoryTables> = {
  // No patientColumn: a merge marks the retired row (merged_into) instead of moving it.
  patients: { key: 'patient_id', jsonColumns: ['identifiers'], timeColumns: ['updated_at'] },
};

export function directoryModel(topic: string = PATIENT_TOPIC): ReadModel<DirectoryTables> {
  return {
    name: 'patient-directory',
    topics: [topic],
    tables: directoryTables,
    needs,
    evolve,
    migrations: [
      {
        // Name and shape as before the directory ran on the projector kit: an
        // adopted unversioned schema (legacy.ts) has this one applied already.
        name: '0001_patients',
        async up(knex: Knex, schema: string) {
          await knex.schema.withSchema(schema).createTable('patients', (t) => {
            t.text('patient_id').primary();
            t.text('family');
            t.specificType('given', 'text[]').notNullable().defaultTo('{}');
            t.text('birth_date');
            t.text('gender');
            t.jsonb('identifiers').notNullable().defaultTo('[]');
            t.text('merged_into');
            t.integer('version').notNullable();
            t.uuid('last_event_id').notNullable();
            t.timestamp('updated_at', { useTz: true }).notNullable();
          });
        },
      },
    ],
  };
}

export function patientDirectoryProjection(topic: string = PATIENT_TOPIC): Projection {
  return readModelProjection(directoryModel(topic));
}

/** A patient's row as stored (times as epoch ms), read through `schema` (the stable schema's view in the service). */
export async function findPatient(
  db: Knex,
  schema: string,
  patientId: string,
): Promise<PatientRow | undefined> {
  const r = (await db.withSchema(schema).from('patients').where({ patient_id: patientId }).first()) as
    (Omit<PatientRow, 'updated_at'> & { updated_at: Date }) | undefined;
  return r ? { ...r, updated_at: r.updated_at.getTime() } : undefined;
}
