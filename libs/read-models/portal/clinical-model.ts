import type { Knex } from 'knex';
import type { Migration } from '../../db/index.js';

/**
 * The tables of the portal's clinical facts (clinical.ts) and their migration: registered by
 * model.ts beside the visit and result tables.
 *
 * Merges: `patient_id` follows the survivor like every portal table, and so does the element of
 * the resource naming the patient (Condition.subject, AllergyIntolerance.patient,
 * Coverage.beneficiary: libs/projections/store.ts `subjectElement`).
 */
export const CLINICAL_TABLES = {
  allergies: {
    key: 'allergy_id',
    patientColumn: 'patient_id',
    subjectColumns: ['resource'],
    subjectElement: 'patient',
    jsonColumns: ['resource'],
    timeColumns: ['date_at'],
  },
  conditions: {
    key: 'condition_id',
    patientColumn: 'patient_id',
    subjectColumns: ['resource'],
    jsonColumns: ['resource'],
    timeColumns: ['date_at'],
  },
  coverages: {
    key: 'coverage_id',
    patientColumn: 'patient_id',
    subjectColumns: ['resource'],
    subjectElement: 'beneficiary',
    jsonColumns: ['resource'],
    timeColumns: ['date_at'],
  },
} as const;

/**
 * What the portal serves of a patient's record (view patient_record): per type, its table, key
 * and the condition a served row meets (a patient not merged away; visible, not withdrawn).
 */
const RECORD: readonly (readonly [type: string, table: string, key: string, visible: string | null])[] = [
  ['Patient', 'patients', 'patient_id', 'merged_into is null'],
  ['Encounter', 'encounters', 'encounter_id', 'visible'],
  ['ServiceRequest', 'service_requests', 'order_id', null],
  ['DiagnosticReport', 'reports', 'result_id', 'visible'],
  ['Observation', 'observations', 'observation_id', null],
  ['AllergyIntolerance', 'allergies', 'allergy_id', 'visible'],
  ['Condition', 'conditions', 'condition_id', 'visible'],
  ['Coverage', 'coverages', 'coverage_id', 'visible'],
];

export const CLINICAL_MIGRATIONS: readonly Migration[] = [
  {
    // Allergies, conditions and coverage (events added for #18: AllergyRecorded,
    // DiagnosisRecorded, CoverageRecorded), and the view serving them with the rest of the
    // patient's record ($everything, reads by id). Withdrawn rows (entered in error) are kept,
    // not served, like cancelled visits.
    name: '0120_portal_clinical',
    async up(knex: Knex, schema: string) {
      const table = (name: string, key: string, extra?: (t: Knex.CreateTableBuilder) => void) =>
        knex.schema.withSchema(schema).createTable(name, (t) => {
          t.text(key).primary();
          t.text('patient_id').notNullable();
          t.boolean('visible').notNullable();
          t.jsonb('resource').notNullable();
          t.timestamp('date_at', { useTz: true });
          t.index(['patient_id', 'date_at']);
          extra?.(t);
        });
      await table('allergies', 'allergy_id');
      await table('conditions', 'condition_id', (t) => t.text('encounter_id'));
      await table('coverages', 'coverage_id');
      const branches = RECORD.map(([type, table, key, visible]) =>
        knex
          .raw(`select patient_id, ?::text as resource_type, ?? as resource_id, resource from ??.??`, [
            type,
            key,
            schema,
            table,
          ])
          .toQuery()
          .concat(visible ? ` where ${visible}` : ''),
      );
      await knex.raw(`create or replace view ??.patient_record as ${branches.join(' union all ')}`, [schema]);
    },
  },
];
