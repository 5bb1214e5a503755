import type { Knex } from 'knex';
import type { Projection } from '../../libs/db/projection.js';
import { TOPIC_CATALOG } from '../../libs/events/index.js';
import { evolve, touchedPatients, type PatientRow, type Rows } from './domain.js';

export const PATIENT_TOPIC = TOPIC_CATALOG.find((t) => t.aggregate === 'patient')!.name;

interface DbRow {
  patient_id: string;
  family: string | null;
  given: string[];
  birth_date: string | null;
  gender: string | null;
  identifiers: PatientRow['identifiers'];
  merged_into: string | null;
  version: number;
  last_event_id: string;
  updated_at: Date;
}

function toRow(r: DbRow): PatientRow {
  return {
    patientId: r.patient_id,
    family: r.family,
    given: r.given,
    birthDate: r.birth_date,
    gender: r.gender,
    identifiers: r.identifiers,
    mergedInto: r.merged_into,
    version: r.version,
    lastEventId: r.last_event_id,
    updatedAt: r.updated_at.getTime(),
  };
}

export function patientDirectoryProjection(topic: string = PATIENT_TOPIC): Projection {
  return {
    name: 'patient-directory',
    topics: [topic],
    migrations: [
      {
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
    async apply(trx, schema, records) {
      const ids = [...new Set(records.flatMap((r) => touchedPatients(r.event)))];
      const current = (await trx
        .withSchema(schema)
        .from('patients')
        .whereIn('patient_id', ids)
        .forUpdate()
        .select('*')) as DbRow[];
      let rows: Rows = new Map(current.map((r) => [r.patient_id, toRow(r)]));
      const before = rows;
      for (const r of records) rows = evolve(rows, r.event);
      const changed = [...rows.values()].filter((r) => before.get(r.patientId) !== r);
      if (changed.length === 0) return;
      // One multi-row upsert per batch, not one statement per event.
      await trx
        .withSchema(schema)
        .into('patients')
        .insert(
          changed.map((r) => ({
            patient_id: r.patientId,
            family: r.family,
            given: r.given,
            birth_date: r.birthDate,
            gender: r.gender,
            identifiers: JSON.stringify(r.identifiers),
            merged_into: r.mergedInto,
            version: r.version,
            last_event_id: r.lastEventId,
            updated_at: new Date(r.updatedAt),
          })),
        )
        .onConflict('patient_id')
        .merge();
    },
  };
}

export async function findPatient(
  db: Knex,
  schema: string,
  patientId: string,
): Promise<PatientRow | undefined> {
  const r = (await db.withSchema(schema).from('patients').where({ patient_id: patientId }).first()) as
    DbRow | undefined;
  return r ? toRow(r) : undefined;
}
