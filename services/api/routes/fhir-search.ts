import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { HubError } from '../../../libs/errors/index.js';
import { PAGING_PARAMS, asList } from '../paging.js';
import { withAttachmentHashes, type BinaryReader } from '../readers/binary.js';
import type { PortalReader, SearchFilters } from '../readers/portal.js';
import { bundleSchema, fhirErrors } from '../schemas.js';
import {
  PATIENT_ALIASES,
  SEARCH_PARAMS,
  SEARCH_TYPES,
  parseDateParams,
  parsePatientRef,
  parseRef,
  parseTokenParam,
  type SearchType,
} from '../search.js';
import type { RouteSecurity } from '../security.js';
import { sendSearchset } from './fhir-bundle.js';

/**
 * Type-level search of every type the portal serves but Patient (search.ts
 * SEARCH_PARAMS: Encounter, Observation, DiagnosticReport, ServiceRequest,
 * AllergyIntolerance, Condition, Coverage): GET with the parameters in the
 * URL, or POST `_search` with them in a form body. Every search is confined
 * to one patient: the token's own, or the one a staff token names.
 */
export interface SearchRoutesOptions {
  reader: PortalReader;
  binaries: BinaryReader;
  baseUrl: (req: FastifyRequest) => string;
}

/** The parameters as validated: each type takes those its SearchSpec names. */
interface SearchQuery {
  patient?: string;
  subject?: string;
  beneficiary?: string;
  code?: string;
  date?: string[];
  'recorded-date'?: string[];
  status?: string;
  'clinical-status'?: string;
  encounter?: string;
  category?: string;
  _count: number;
  _offset: number;
}

const patientParam = { type: 'string', minLength: 1, maxLength: 136 } as const;
const token = { type: 'string', minLength: 1, maxLength: 512 } as const;
const dates = { type: 'array', items: { type: 'string', maxLength: 40 }, maxItems: 4 } as const;

function paramsSchema(type: SearchType) {
  const p = SEARCH_PARAMS[type];
  return {
    type: 'object',
    properties: {
      patient: patientParam,
      ...Object.fromEntries(p.patientAliases.map((a) => [a, patientParam])),
      ...(p.code ? { code: token } : {}),
      ...(p.date ? { [p.date.name]: dates } : {}),
      ...(p.status ? { [p.status]: token } : {}),
      ...(p.encounter ? { encounter: patientParam } : {}),
      ...(p.category ? { category: token } : {}),
      ...PAGING_PARAMS,
    },
  } as const;
}

/** The patient a search names: `patient`, or an alias (`subject`, Coverage `beneficiary`); all must agree. */
function patientNamed(q: SearchQuery): string | undefined {
  const named = [q.patient, ...PATIENT_ALIASES.map((a) => q[a])].filter(
    (v): v is string => typeof v === 'string',
  );
  const ids = new Set(named.map(parsePatientRef));
  if (ids.size > 1) throw new HubError('HUB_INPUT_INVALID', 'the patient parameters name different patients');
  return named[0];
}

/** Access and audit of a search whose parameters `from` reads (query string or form body). */
function searchSecurity(type: SearchType, from: (req: FastifyRequest) => unknown): RouteSecurity {
  return {
    interaction: 'search-type',
    resourceType: type,
    patientOf: (req) => {
      const q = from(req) as Record<string, unknown> | undefined;
      const p = [q?.patient, ...PATIENT_ALIASES.map((a) => q?.[a])].find((v) => typeof v === 'string');
      return typeof p === 'string' ? p : null;
    },
    access: (req) => {
      const p = patientNamed(from(req) as SearchQuery);
      return {
        kind: 'fhir',
        interaction: 'search',
        resourceType: type,
        patientId: p === undefined ? null : parsePatientRef(p),
      };
    },
  };
}

/** The parameters (besides patient and paging) that paging links carry again, as they were given. */
function linkParams(type: SearchType, q: SearchQuery): Record<string, string | readonly string[]> {
  const p = SEARCH_PARAMS[type];
  const out: Record<string, string | readonly string[]> = {};
  const names = [
    'code',
    ...(p.date ? [p.date.name] : []),
    ...(p.status ? [p.status] : []),
    'encounter',
    'category',
  ] as const;
  for (const n of names) {
    const v = q[n];
    if (v !== undefined) out[n] = v;
  }
  return out;
}

/**
 * application/x-www-form-urlencoded bodies for POST [type]/_search (FHIR's way
 * to keep search parameters out of URLs and proxy logs), within the app's body
 * limit. A null-prototype object, and prototype keys refused: `__proto__=...`
 * must not reach a prototype.
 */
function parseSearchForm(
  _req: FastifyRequest,
  body: string | Buffer,
  done: (err: Error | null, body?: unknown) => void,
): void {
  const out = Object.create(null) as Record<string, string | string[]>;
  for (const [k, v] of new URLSearchParams(body as string)) {
    if (k === '__proto__' || k === 'constructor' || k === 'prototype') {
      done(new HubError('HUB_INPUT_INVALID', 'forbidden parameter name'), undefined);
      return;
    }
    const prev = out[k];
    out[k] = prev === undefined ? v : [...(Array.isArray(prev) ? prev : [prev]), v];
  }
  done(null, out);
}

function registerSearch(app: FastifyInstance, type: SearchType, opts: SearchRoutesOptions): void {
  const search = async (req: FastifyRequest, reply: FastifyReply, q: SearchQuery) => {
    const d = req.decision;
    if (!d?.allow || !d.patientId) throw new HubError('HUB_FORBIDDEN', 'access denied');
    const p = SEARCH_PARAMS[type];
    const dateValues = p.date ? q[p.date.name] : undefined;
    const statuses = p.status ? q[p.status] : undefined;
    const filters: SearchFilters = {
      patientId: d.patientId,
      date: parseDateParams(asList(dateValues)),
      codes: q.code ? parseTokenParam(q.code) : [],
      statuses: statuses ? statuses.split(',').filter(Boolean) : [],
      ...(q.encounter ? { encounterId: parseRef('Encounter', q.encounter) } : {}),
      ...(q.category ? { categories: parseTokenParam(q.category) } : {}),
    };
    const page = await opts.reader.search(type, filters, q._count, q._offset);
    page.resources = await withAttachmentHashes(opts.binaries, page.resources);
    // The links name the patient the token is confined to, whatever was asked.
    const params = { patient: d.patientId, ...linkParams(type, q) };
    const base = opts.baseUrl(req);
    return sendSearchset(
      reply,
      { base, path: `/fhir/${type}`, params, offset: q._offset, count: q._count },
      page,
    );
  };
  app.get<{ Querystring: SearchQuery }>(
    `/${type}`,
    {
      schema: {
        tags: ['fhir'],
        summary: `Search ${type} by ${['patient', ...Object.keys(paramsSchema(type).properties).filter((k) => k !== 'patient' && !k.startsWith('_'))].join(', ')}`,
        querystring: paramsSchema(type),
        response: { 200: bundleSchema, ...fhirErrors },
      },
      config: { security: searchSecurity(type, (req) => req.query) },
    },
    (req, reply) => search(req, reply, req.query),
  );
  app.post<{ Body: SearchQuery }>(
    `/${type}/_search`,
    {
      schema: {
        tags: ['fhir'],
        summary: `Search ${type} with the parameters in a form-encoded body`,
        consumes: ['application/x-www-form-urlencoded'],
        body: paramsSchema(type),
        response: { 200: bundleSchema, ...fhirErrors },
      },
      config: { security: searchSecurity(type, (req) => req.body) },
    },
    (req, reply) => search(req, reply, req.body),
  );
}

export const searchRoutes: FastifyPluginAsync<SearchRoutesOptions> = (app, opts) => {
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, parseSearchForm);
  for (const type of SEARCH_TYPES) registerSearch(app, type, opts);
  // Fastify awaits plugins; this one registers its routes synchronously.
  return Promise.resolve();
};
