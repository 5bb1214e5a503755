import type { Resource } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import type { FhirType } from '../../../libs/auth/scopes.js';
import { timedRead } from '../db.js';
import type { PatientContextState } from '../patient-context.js';
import type { DateRange, TokenFilter } from '../search.js';

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
  hasCode: boolean;
}

/**
 * Resources are stored as the portal serves them, times rendered in the
 * sender's offset and precision (libs/read-models/portal/resources.ts); those
 * strings do not sort as instants, so `date` search and ordering use each
 * row's `date_at` (UTC timestamptz of the element the parameter is about:
 * Encounter.period.start, ServiceRequest.authoredOn, effectiveDateTime).
 */
const DATE_COLUMN = 'date_at';

export const SEARCH_TABLES: Record<Exclude<FhirType, 'Patient'>, SearchTable> = {
  Encounter: {
    table: 'encounters',
    visible: 'visible',
    hasCode: false,
  },
  Observation: {
    table: 'observations',
    visible: null,
    hasCode: true,
  },
  DiagnosticReport: {
    table: 'reports',
    visible: 'visible',
    hasCode: true,
  },
  ServiceRequest: {
    table: 'service_requests',
    visible: null,
    hasCode: true,
  },
};

export interface SearchFilters {
  patientId: string;
  date: DateRange;
  codes: TokenFilter[];
  statuses: string[];
}

export interface Page {
  total: number;
  resources: Resource[];
}

export interface PortalReader {
  patient(id: string): Promise<Resource | null>;
  /** Whether a patient is known here, and not merged into another (a token's patient context). */
  patientContext(id: string): Promise<PatientContextState>;
  search(type: Exclude<FhirType, 'Patient'>, f: SearchFilters, count: number, offset: number): Promise<Page>;
  everything(patientId: string, types: readonly FhirType[], count: number, offset: number): Promise<Page>;
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
    async search(type, f, count, offset) {
      const t = SEARCH_TABLES[type];
      let q = db.withSchema(schema).from(t.table).where({ patient_id: f.patientId });
      if (t.visible) q = q.whereRaw(`"${t.visible}"`);
      if (f.date.from) q = q.whereRaw(`${DATE_COLUMN} >= ?::timestamptz`, [f.date.from]);
      if (f.date.to) q = q.whereRaw(`${DATE_COLUMN} < ?::timestamptz`, [f.date.to]);
      if (f.statuses.length > 0) q = q.whereRaw(`resource->>'status' = any(?)`, [f.statuses]);
      if (f.codes.length > 0 && t.hasCode) {
        const codes = f.codes;
        q = q.where((w) => {
          for (const c of codes) {
            const coding = { ...(c.system ? { system: c.system } : {}), ...(c.code ? { code: c.code } : {}) };
            void w.orWhereRaw(`resource->'code'->'coding' @> ?::jsonb`, [JSON.stringify([coding])]);
          }
        });
      }
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
