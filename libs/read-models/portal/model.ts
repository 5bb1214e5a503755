import type { Encounter } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import type { Migration } from '../../db/index.js';
import { fhirDateTime } from '../../fhir/datetime.js';
import type { Projection } from '../../projections/runner.js';
import { readModelProjection, type ReadModel } from '../../projections/store.js';
import { clinicalTopics } from '../../projections/topics.js';
import { CLINICAL_MIGRATIONS, CLINICAL_TABLES } from './clinical-model.js';
import { evolve, needs, presence, type PortalTables } from './domain.js';

export const PORTAL_NAME = 'portal';

export const portalTables = {
  patients: { key: 'patient_id', jsonColumns: ['resource', 'replaces', 'demographics'] },
  encounters: {
    key: 'encounter_id',
    patientColumn: 'patient_id',
    subjectColumns: ['resource'],
    jsonColumns: ['resource'],
    timeColumns: ['date_at'],
  },
  service_requests: {
    key: 'order_id',
    patientColumn: 'patient_id',
    subjectColumns: ['resource'],
    jsonColumns: ['resource'],
    timeColumns: ['date_at'],
  },
  reports: {
    key: 'result_id',
    patientColumn: 'patient_id',
    subjectColumns: ['resource'],
    jsonColumns: ['resource'],
    timeColumns: ['version_at', 'date_at'],
  },
  observations: {
    key: 'observation_id',
    patientColumn: 'patient_id',
    subjectColumns: ['resource'],
    jsonColumns: ['resource'],
    timeColumns: ['date_at'],
  },
  // Content-addressed: one row per sha256, for every patient whose reports present it.
  attachments: { key: 'sha256' },
  ...CLINICAL_TABLES,
} as const;

/** The resource tables, then the view the portal serves and what later versions added. */
const PORTAL_MIGRATIONS: readonly Migration[] = [
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
  {
    // HL7 null semantics: an update that leaves a field out keeps the stored value, so the
    // demographics behind the resource are kept to apply the next update to. Rows projected
    // before this column have none: rebuild the portal (hub projections rebuild portal).
    name: '0103_portal_patient_demographics',
    async up(knex: Knex, schema: string) {
      await knex.schema.withSchema(schema).alterTable('patients', (t) => {
        t.jsonb('demographics');
      });
    },
  },
  {
    // The UTC offset the sender expressed the encounter's start and end in
    // (EventMeta.sourceTimes), so the API serves them as the sender meant
    // (08:00-05:00, not 13:00Z). Null for rows projected before: served as UTC.
    // Superseded by 0111 (times rendered into the resource); no longer written.
    name: '0104_portal_encounter_offsets',
    async up(knex: Knex, schema: string) {
      await knex.schema.withSchema(schema).alterTable('encounters', (t) => {
        t.integer('start_offset_minutes');
        t.integer('end_offset_minutes');
      });
    },
  },
  {
    // Attachments (PDF reports sent as HL7 ED) by content, and the index
    // the API finds the reports presenting one by (who may read it).
    name: '0110_portal_attachments',
    async up(knex: Knex, schema: string) {
      await knex.schema.withSchema(schema).createTable('attachments', (t) => {
        t.text('sha256').primary();
        t.text('content_type').notNullable();
        t.integer('size').notNullable();
        t.text('sha1').notNullable();
        t.binary('data').notNullable();
      });
      // PDFs and images are compressed already: no second try at compressing them.
      await knex.raw('alter table ??.attachments alter column data set storage external', [schema]);
      await knex.raw(
        `create index reports_presented_form on ??.reports using gin ((resource->'presentedForm') jsonb_path_ops)`,
        [schema],
      );
    },
  },
  {
    // Every time in a resource is now rendered as the source sent it
    // (offset and precision), so the resource's strings no longer sort
    // as instants: `date_at` holds the instant search and ordering use,
    // filled from the UTC strings rows hold so far. Encounters projected
    // with 0104 offsets get them rendered into the resource, as the API
    // served them; other times of older rows stay UTC until a rebuild
    // (hub projections rebuild portal) renders them from the events.
    name: '0111_portal_sender_times',
    async up(knex: Knex, schema: string) {
      for (const [table, path] of DATE_PATHS) {
        await knex.schema.withSchema(schema).alterTable(table, (t) => {
          t.timestamp('date_at', { useTz: true });
          t.index(['patient_id', 'date_at']);
        });
        await knex.raw(`update ??.?? set date_at = (resource #>> ?)::timestamptz`, [
          schema,
          table,
          `{${path.join(',')}}`,
        ]);
      }
      await renderEncounterOffsets(knex, schema);
    },
  },
  ...CLINICAL_MIGRATIONS,
  {
    // 0111's (patient_id, date_at) indexes serve every lookup by patient_id
    // (a B-tree's leading column: the API's reads, a merge's moves), so the
    // patient_id indexes of 0101 were one index more to write per row for
    // nothing. Measured in docs/benchmarks.md (issue 23, sixth session).
    name: '0121_portal_drop_redundant_patient_indexes',
    async up(knex: Knex, schema: string) {
      for (const [table] of DATE_PATHS)
        await knex.raw('drop index if exists ??.??', [schema, `${table}_patient_id_index`]);
    },
  },
];

export function portalModel(topics: readonly string[] = clinicalTopics()): ReadModel<PortalTables> {
  return {
    name: PORTAL_NAME,
    topics,
    tables: portalTables,
    needs,
    presence,
    evolve: (draft, e, resolve) => evolve(draft, e, resolve),
    migrations: PORTAL_MIGRATIONS,
  };
}

/** The element each table's FHIR `date` search parameter is about. */
const DATE_PATHS: readonly [string, readonly string[]][] = [
  ['encounters', ['period', 'start']],
  ['service_requests', ['authoredOn']],
  ['reports', ['effectiveDateTime']],
  ['observations', ['effectiveDateTime']],
];

interface OffsetRow {
  encounter_id: string;
  resource: Encounter;
  start_offset_minutes: number | null;
  end_offset_minutes: number | null;
}

/** Encounter.period in the 0104 offsets, rendered into the resource (precision was not kept: as served). */
async function renderEncounterOffsets(knex: Knex, schema: string): Promise<void> {
  const rows = await knex
    .withSchema(schema)
    .from('encounters')
    .whereNotNull('start_offset_minutes')
    .orWhereNotNull('end_offset_minutes')
    .select<OffsetRow[]>('encounter_id', 'resource', 'start_offset_minutes', 'end_offset_minutes');
  const render = (v: string | undefined, offset: number | null): string | undefined =>
    v === undefined || offset === null || Number.isNaN(Date.parse(v))
      ? v
      : fhirDateTime(Date.parse(v), offset);
  for (const r of rows) {
    if (!r.resource.period) continue;
    const { start, end } = r.resource.period;
    const period = {
      ...r.resource.period,
      ...(start !== undefined ? { start: render(start, r.start_offset_minutes) } : {}),
      ...(end !== undefined ? { end: render(end, r.end_offset_minutes) } : {}),
    };
    await knex
      .withSchema(schema)
      .from('encounters')
      .where({ encounter_id: r.encounter_id })
      .update({ resource: JSON.stringify({ ...r.resource, period }) });
  }
}

export function portalProjection(topics?: readonly string[]): Projection {
  return readModelProjection(portalModel(topics));
}
