import type { Identifier, Patient, PatientLink, Resource } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import type { FhirType } from '../../../libs/auth/scopes.js';
import { assertSqlIdentifier } from '../../../libs/db/index.js';
import { personSql } from '../../../libs/projections/store.js';
import { timedRead } from '../db.js';
import type { PatientContextState } from '../patient-context.js';
import { SEARCH_PARAMS, type DateRange, type SearchType, type TokenFilter } from '../search.js';

/**
 * Reads of the portal read model (services/projector-portal), through its
 * stable schema's views. Visibility rules live in the model: encounters
 * entered in error and unreleased reports have `visible = false`, and
 * observations exist only for released reports.
 */
interface SearchTable {
  table: string;
  /** Extra condition every row must meet (released, not withdrawn). */
  visible: string | null;
}

/**
 * Resources are stored as the portal serves them, times rendered in the
 * sender's offset and precision (libs/read-models/portal/resources.ts); those
 * strings do not sort as instants, so `date` search and ordering use each
 * row's `date_at` (UTC timestamptz of the element the parameter is about:
 * Encounter.period.start, ServiceRequest.authoredOn, effectiveDateTime,
 * recordedDate, Coverage.period.start).
 */
const DATE_COLUMN = 'date_at';

/** The table behind each searchable type (its parameters: search.ts SEARCH_PARAMS). */
export const SEARCH_TABLES: Record<SearchType, SearchTable> = {
  Encounter: { table: 'encounters', visible: 'visible' },
  Observation: { table: 'observations', visible: null },
  DiagnosticReport: { table: 'reports', visible: 'visible' },
  ServiceRequest: { table: 'service_requests', visible: null },
  AllergyIntolerance: { table: 'allergies', visible: 'visible' },
  Condition: { table: 'conditions', visible: 'visible' },
  Coverage: { table: 'coverages', visible: 'visible' },
};

export interface SearchFilters {
  patientId: string;
  date: DateRange;
  codes: TokenFilter[];
  /** `status` codes, or `clinical-status` codes where the type has that instead (SEARCH_PARAMS). */
  statuses: string[];
  /** `encounter`: the encounter id. */
  encounterId?: string;
  categories?: TokenFilter[];
}

export interface Page {
  total: number;
  resources: Resource[];
}

/** A served resource and the patient whose record it is in (who may read it, whom the audit names). */
export interface Owned {
  patientId: string;
  resource: Resource;
}

export interface PortalReader {
  /** A patient's own resource; linked as one person with other records, presented as such (asPerson). */
  patient(id: string): Promise<Resource | null>;
  /**
   * The records of the person a patient id belongs to (records linked by the
   * master patient index, the read model's `persons` view), sorted; just the
   * id when it is linked to none. Searches and $everything read all of them.
   */
  person(id: string): Promise<string[]>;
  /** Whether a patient is known here, and not merged into another (a token's patient context). */
  patientContext(id: string): Promise<PatientContextState>;
  /** A visible resource of another type than Patient by id, with its patient; null when none is served. */
  read(type: SearchType, id: string): Promise<Owned | null>;
  search(type: SearchType, f: SearchFilters, count: number, offset: number): Promise<Page>;
  everything(patientId: string, types: readonly FhirType[], count: number, offset: number): Promise<Page>;
}

/** The code system of AllergyIntolerance.category (a `code` element: its system is implied). */
const ALLERGY_CATEGORY_SYSTEM = 'http://hl7.org/fhir/allergy-intolerance-category';

/** A token as a Coding to look for with jsonb containment. */
const codingOf = (t: TokenFilter) => ({
  ...(t.system ? { system: t.system } : {}),
  ...(t.code ? { code: t.code } : {}),
});

/**
 * Adds the filters of one search beyond patient and visibility to q (knex builders are
 * mutable); SEARCH_PARAMS says which apply to the type.
 */
function addFilters(q: Knex.QueryBuilder, type: SearchType, f: SearchFilters): void {
  const p = SEARCH_PARAMS[type];
  if (f.date.from) void q.whereRaw(`${DATE_COLUMN} >= ?::timestamptz`, [f.date.from]);
  if (f.date.to) void q.whereRaw(`${DATE_COLUMN} < ?::timestamptz`, [f.date.to]);
  if (f.statuses.length > 0 && p.status === 'clinical-status') {
    void q.whereRaw(
      `exists (select 1 from jsonb_array_elements(coalesce(resource->'clinicalStatus'->'coding', '[]'::jsonb)) c where c->>'code' = any(?))`,
      [f.statuses],
    );
  } else if (f.statuses.length > 0) {
    void q.whereRaw(`resource->>'status' = any(?)`, [f.statuses]);
  }
  if (f.codes.length > 0 && p.code) {
    const codes = f.codes;
    void q.where((w) => {
      for (const c of codes) {
        void w.orWhereRaw(`resource->'code'->'coding' @> ?::jsonb`, [JSON.stringify([codingOf(c)])]);
      }
    });
  }
  if (f.encounterId !== undefined && p.encounter) {
    void q.whereRaw(`resource->'encounter'->>'reference' = ?`, [`Encounter/${f.encounterId}`]);
  }
  const categories = f.categories ?? [];
  if (categories.length > 0 && p.category) {
    void q.where((w) => {
      for (const c of categories) {
        // AllergyIntolerance.category is a list of codes; elsewhere CodeableConcepts.
        if (type === 'AllergyIntolerance') {
          const known = !c.system || c.system === ALLERGY_CATEGORY_SYSTEM;
          if (c.code && known)
            void w.orWhereRaw(`resource->'category' @> ?::jsonb`, [JSON.stringify([c.code])]);
          else void w.orWhereRaw('false');
        } else {
          void w.orWhereRaw(`resource->'category' @> ?::jsonb`, [
            JSON.stringify([{ coding: [codingOf(c)] }]),
          ]);
        }
      }
    });
  }
}

const identifierKey = (i: Identifier) =>
  `${i.system ?? ''}|${i.value ?? ''}|${i.type?.coding?.[0]?.code ?? ''}`;

/**
 * A record as the portal shows it when other records are linked to it as
 * one person (a link is not a merge: no row was rewritten, so an unlink
 * shows it alone again): its own resource with the others' identifiers
 * after its own (both MRNs; each once) and a `seealso` link to each other
 * record (FHIR Patient.link: "a record of the same person, not replaced").
 */
export function asPerson(own: Patient, others: readonly Patient[]): Patient {
  if (others.length === 0) return own;
  const seen = new Set((own.identifier ?? []).map(identifierKey));
  const identifier = [...(own.identifier ?? [])];
  for (const i of others.flatMap((o) => o.identifier ?? [])) {
    const k = identifierKey(i);
    if (!seen.has(k)) {
      seen.add(k);
      identifier.push(i);
    }
  }
  const link: PatientLink[] = [
    ...(own.link ?? []),
    ...others.map((o): PatientLink => ({ other: { reference: `Patient/${o.id ?? ''}` }, type: 'seealso' })),
  ];
  return { ...own, ...(identifier.length > 0 ? { identifier } : {}), link };
}

/** Every Patient of `resources` presented with the other records of its person among `records`. */
function presentPatients(resources: Resource[], records: readonly Patient[]): Resource[] {
  if (records.length < 2) return resources;
  return resources.map((r) =>
    r.resourceType === 'Patient'
      ? asPerson(
          r,
          records.filter((o) => o.id !== r.id),
        )
      : r,
  );
}

type Run = <T>(q: Knex.QueryBuilder | Knex.Raw) => Promise<T>;

/**
 * The records of a patient's person, sorted (PortalReader.person), walked
 * from that patient (libs/projections/store.ts personSql, the `persons`
 * view's answer for one patient). A record merged away is alone: it is
 * served as it is, replaced-by its survivor.
 */
async function personOf(db: Knex, schema: string, run: Run, id: string): Promise<string[]> {
  const r = await run<{ rows: { patient_id: string }[] }>(
    db.raw(personSql(`"${assertSqlIdentifier(schema)}"`), [id]),
  );
  const ids = r.rows.map((x) => x.patient_id);
  return ids.includes(id) ? ids : [id];
}

/** The Patient resources of records not merged away. */
async function patientRecords(
  db: Knex,
  schema: string,
  run: Run,
  ids: readonly string[],
): Promise<Patient[]> {
  const rows = await run<{ resource: Patient }[]>(
    db
      .withSchema(schema)
      .from('patients')
      .whereIn('patient_id', [...ids])
      .whereNull('merged_into')
      .orderBy('patient_id')
      .select('resource'),
  );
  return rows.map((r) => r.resource);
}

export function createPortalReader(db: Knex, schema: string, timeoutMs: number): PortalReader {
  const run: Run = <T>(q: Knex.QueryBuilder | Knex.Raw): Promise<T> => timedRead<T>(q, timeoutMs);
  const person = (id: string) => personOf(db, schema, run, id);
  const records = (ids: readonly string[]) => patientRecords(db, schema, run, ids);
  return {
    person,
    async patient(id) {
      const rows = await run<{ resource: Patient; merged_into: string | null }[]>(
        db
          .withSchema(schema)
          .from('patients')
          .where({ patient_id: id })
          .select('resource', 'merged_into')
          .limit(1),
      );
      const row = rows[0];
      // A record merged away is served as it is (replaced-by): the person is its survivor's.
      if (!row || row.merged_into !== null) return row?.resource ?? null;
      const ids = await person(id);
      if (ids.length < 2) return row.resource;
      const others = await records(ids.filter((x) => x !== id));
      return asPerson(row.resource, others);
    },
    async patientContext(id) {
      // A placeholder row (results before the registration) is a patient of the hub too.
      const rows = await run<{ merged_into: string | null }[]>(
        db.withSchema(schema).from('patients').where({ patient_id: id }).select('merged_into').limit(1),
      );
      const row = rows[0];
      return row === undefined ? 'unknown' : row.merged_into === null ? 'active' : 'merged';
    },
    async read(type, id) {
      // The view serves what the portal shows: visible rows, of patients not merged away.
      const rows = await run<{ patient_id: string; resource: Resource }[]>(
        db
          .withSchema(schema)
          .from('patient_record')
          .where({ resource_type: type, resource_id: id })
          .select('patient_id', 'resource')
          .limit(1),
      );
      const r = rows[0];
      return r ? { patientId: r.patient_id, resource: r.resource } : null;
    },
    async search(type, f, count, offset) {
      const t = SEARCH_TABLES[type];
      const q = db
        .withSchema(schema)
        .from(t.table)
        .whereIn('patient_id', await person(f.patientId));
      if (t.visible) void q.whereRaw(`"${t.visible}"`);
      addFilters(q, type, f);
      const rows = await run<{ resource: Resource; total: string }[]>(
        q
          .select('resource', db.raw('count(*) over () as total'))
          .orderByRaw(`${DATE_COLUMN} desc nulls last, resource->>'id'`)
          .limit(count)
          .offset(offset),
      );
      let total = rows[0] ? Number(rows[0].total) : 0;
      if (rows.length === 0 && offset > 0) {
        const c = await run<{ n: string }[]>(q.clone().clearSelect().clearOrder().count({ n: '*' }));
        total = Number(c[0]?.n ?? 0);
      }
      return { total, resources: rows.map((r) => r.resource) };
    },
    async everything(patientId, types, count, offset) {
      const ids = await person(patientId);
      const rows = await run<{ resource: Resource; total: string }[]>(
        db
          .withSchema(schema)
          .from('patient_record')
          .whereIn('patient_id', ids)
          .whereRaw('resource_type = any(?)', [[...types]])
          .select('resource', db.raw('count(*) over () as total'))
          // The Patient first, then by type and id: a stable order for paging.
          .orderByRaw(`resource_type <> 'Patient', resource_type, resource_id`)
          .limit(count)
          .offset(offset),
      );
      let total = rows[0] ? Number(rows[0].total) : 0;
      if (rows.length === 0 && offset > 0) {
        const c = await run<{ n: string }[]>(
          db
            .withSchema(schema)
            .from('patient_record')
            .whereIn('patient_id', ids)
            .whereRaw('resource_type = any(?)', [[...types]])
            .count({ n: '*' }),
        );
        total = Number(c[0]?.n ?? 0);
      }
      const resources = rows.map((r) => r.resource);
      const hasPatient = ids.length > 1 && resources.some((r) => r.resourceType === 'Patient');
      return { total, resources: hasPatient ? presentPatients(resources, await records(ids)) : resources };
    },
  };
}
