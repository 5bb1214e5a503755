import type { Resource } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import type { FhirType } from '../../libs/auth/scopes.js';
import { fhirDateTime } from '../../libs/fhir/datetime.js';
import { timedRead } from './db.js';
import type { DateRange, TokenFilter } from './search.js';

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
  dateExpr: string;
  hasCode: boolean;
  /** Rows carry start/end_offset_minutes: the period is served in the sender's offset. */
  offsets?: boolean;
}

interface Offsets {
  start_offset_minutes?: number | null;
  end_offset_minutes?: number | null;
}

/**
 * Encounter.period as the sender meant it: the stored resource keeps UTC (so
 * that date search and ordering compare like with like); the offset the
 * sender expressed start and end in is stored beside it and applied here.
 * Without one (rows from events recorded before offsets were kept) the value
 * is served as stored, in UTC.
 */
export function inSenderOffsets(resource: Resource, o: Offsets): Resource {
  if (resource.resourceType !== 'Encounter' || !resource.period) return resource;
  const render = (v: string | undefined, offset: number | null | undefined): string | undefined => {
    if (v === undefined || offset === null || offset === undefined) return v;
    const ms = Date.parse(v);
    return Number.isNaN(ms) ? v : fhirDateTime(ms, offset);
  };
  const { start, end } = resource.period;
  return {
    ...resource,
    period: {
      ...resource.period,
      ...(start !== undefined ? { start: render(start, o.start_offset_minutes) } : {}),
      ...(end !== undefined ? { end: render(end, o.end_offset_minutes) } : {}),
    },
  };
}

export const SEARCH_TABLES: Record<Exclude<FhirType, 'Patient'>, SearchTable> = {
  Encounter: {
    table: 'encounters',
    visible: 'visible',
    dateExpr: "resource->'period'->>'start'",
    hasCode: false,
    offsets: true,
  },
  Observation: {
    table: 'observations',
    visible: null,
    dateExpr: "resource->>'effectiveDateTime'",
    hasCode: true,
  },
  DiagnosticReport: {
    table: 'reports',
    visible: 'visible',
    dateExpr: "resource->>'effectiveDateTime'",
    hasCode: true,
  },
  ServiceRequest: {
    table: 'service_requests',
    visible: null,
    dateExpr: "resource->>'authoredOn'",
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
    async search(type, f, count, offset) {
      const t = SEARCH_TABLES[type];
      let q = db.withSchema(schema).from(t.table).where({ patient_id: f.patientId });
      if (t.visible) q = q.whereRaw(`"${t.visible}"`);
      if (f.date.from) q = q.whereRaw(`${t.dateExpr} >= ?`, [f.date.from]);
      if (f.date.to) q = q.whereRaw(`${t.dateExpr} < ?`, [f.date.to]);
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
      const rows = await run<({ resource: Resource; total: string } & Offsets)[]>(
        q
          .select(
            'resource',
            ...(t.offsets ? ['start_offset_minutes', 'end_offset_minutes'] : []),
            db.raw('count(*) over () as total'),
          )
          .orderByRaw(`${t.dateExpr} desc nulls last, resource->>'id'`)
          .limit(count)
          .offset(offset),
      );
      let total = rows[0] ? Number(rows[0].total) : 0;
      if (rows.length === 0 && offset > 0) {
        const c = await run<{ n: string }[]>(q.clone().clearSelect().clearOrder().count({ n: '*' }));
        total = Number(c[0]?.n ?? 0);
      }
      return { total, resources: rows.map((r) => (t.offsets ? inSenderOffsets(r.resource, r) : r.resource)) };
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
      // The view serves resources only; the page's encounters get their offsets in one more read.
      const encounterIds = rows
        .map((r) => r.resource)
        .filter((r) => r.resourceType === 'Encounter' && r.id !== undefined)
        .map((r) => r.id!);
      const offsets = new Map<string, Offsets>();
      if (encounterIds.length > 0) {
        const o = await run<({ encounter_id: string } & Offsets)[]>(
          db
            .withSchema(schema)
            .from('encounters')
            .whereIn('encounter_id', encounterIds)
            .select('encounter_id', 'start_offset_minutes', 'end_offset_minutes'),
        );
        for (const r of o) offsets.set(r.encounter_id, r);
      }
      return {
        total,
        resources: rows.map((r) => {
          const o = r.resource.id === undefined ? undefined : offsets.get(r.resource.id);
          return o ? inSenderOffsets(r.resource, o) : r.resource;
        }),
      };
    },
  };
}
