import type { Resource } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import type { FhirType } from '../../../libs/auth/scopes.js';
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
  patient(id: string): Promise<Resource | null>;
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

export function createPortalReader(db: Knex, schema: string, timeoutMs: number): PortalReader {
  const run = <T>(q: Knex.QueryBuilder | Knex.Raw): Promise<T> => timedRead<T>(q, timeoutMs);
  return {
    async patient(id) {
      const rows = await run<{ resource: Resource }[]>(
        db.withSchema(schema).from('patients').where({ patient_id: id }).select('resource').limit(1),
      );
      return rows[0]?.resource ?? null;
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
      const q = db.withSchema(schema).from(t.table).where({ patient_id: f.patientId });
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
      const rows = await run<{ resource: Resource; total: string }[]>(
        db
          .withSchema(schema)
          .from('patient_record')
          .where({ patient_id: patientId })
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
            .where({ patient_id: patientId })
            .whereRaw('resource_type = any(?)', [[...types]])
            .count({ n: '*' }),
        );
        total = Number(c[0]?.n ?? 0);
      }
      return { total, resources: rows.map((r) => r.resource) };
    },
  };
}
