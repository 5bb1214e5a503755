import type { Knex } from 'knex';
import { EVENT_CONTRACTS } from '../../libs/events/index.js';
import type { Projection } from '../../libs/projections/runner.js';
import { assertSqlIdentifier } from '../../libs/db/index.js';
import {
  personSql,
  readModelProjection,
  type ReadModel,
  type TableSpecs,
} from '../../libs/projections/store.js';
import { evolve, needs, type DirectoryTables, type PatientRow } from './domain.js';

/** The patient topic (catalog name; a deployment's suffix is applied by the caller). */
export const PATIENT_TOPIC = EVENT_CONTRACTS.PatientRegistered.topic;

/** The identity topic: links between records of one person (PatientsLinked / PatientsUnlinked). */
export const IDENTITY_TOPIC = EVENT_CONTRACTS.PatientsLinked.topic;

/** The topics the directory reads: patients, and the links that make records one person. */
export const DIRECTORY_TOPICS: readonly string[] = [PATIENT_TOPIC, IDENTITY_TOPIC];

export const directoryTables: TableSpecs<DirectoryTables> = {
  // No patientColumn: a merge marks the retired row (merged_into) instead of moving it.
  patients: { key: 'patient_id', jsonColumns: ['identifiers'], timeColumns: ['updated_at'] },
};

/** `topics`: one name (the patient topic alone, as before links) or the list (default DIRECTORY_TOPICS). */
export function directoryModel(
  topics: string | readonly string[] = DIRECTORY_TOPICS,
): ReadModel<DirectoryTables> {
  return {
    name: 'patient-directory',
    topics: typeof topics === 'string' ? [topics] : topics,
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
      {
        // Each record with the person it belongs to (records linked as one person by
        // PatientsLinked; the store's `persons` view), for lookups that return the person's
        // records. A view: an unlink splits them again at the next read.
        name: '0002_patient_persons',
        async up(knex: Knex, schema: string) {
          await knex.raw(
            `create view ??.patient_persons as
               select coalesce(pe.person_id, p.patient_id) as person_id, p.*
                 from ??.patients p left join ??.persons pe on pe.patient_id = p.patient_id`,
            [schema, schema, schema],
          );
        },
      },
    ],
  };
}

export function patientDirectoryProjection(
  topics: string | readonly string[] = DIRECTORY_TOPICS,
): Projection {
  return readModelProjection(directoryModel(topics));
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

type StoredRow = Omit<PatientRow, 'updated_at'> & { updated_at: Date };

/**
 * The records of the person an identifier names (system and value), read
 * through `schema`: every record not merged away of every person one of
 * whose records holds the identifier (a survivor holds its retired records'
 * identifiers), each with its person (as the view `patient_persons` says,
 * walked from each record found rather than over every link: store.ts
 * personSql); none when no record holds it.
 */
export async function findPersonByIdentifier(
  db: Knex,
  schema: string,
  identifier: { system: string; value: string },
): Promise<(PatientRow & { person_id: string })[]> {
  const holds = JSON.stringify([{ system: identifier.system, value: identifier.value }]);
  const hits = await db
    .withSchema(schema)
    .from('patients')
    .whereRaw('identifiers @> ?::jsonb', [holds])
    .whereNull('merged_into')
    .pluck<string[]>('patient_id');
  const personOf = new Map<string, string>();
  for (const hit of hits) {
    if (personOf.has(hit)) continue;
    const r = await db.raw<{ rows: { patient_id: string }[] }>(
      personSql(`"${assertSqlIdentifier(schema)}"`),
      [hit],
    );
    // Sorted: the first is the smallest id, the person's id.
    const ids = r.rows.map((x) => x.patient_id);
    for (const id of ids) personOf.set(id, ids[0] ?? hit);
  }
  const rows = (await db
    .withSchema(schema)
    .from('patients')
    .whereIn('patient_id', [...personOf.keys()])
    .whereNull('merged_into')
    .orderBy('patient_id')
    .select('*')) as StoredRow[];
  return rows.map((r) => ({
    ...r,
    person_id: personOf.get(r.patient_id) ?? r.patient_id,
    updated_at: r.updated_at.getTime(),
  }));
}
