import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { HubError } from '../../../libs/errors/index.js';
import { PAGING_PARAMS, asList } from '../paging.js';
import { withAttachmentHashes, type BinaryReader } from '../readers/binary.js';
import type { PortalReader } from '../readers/portal.js';
import { bundleSchema, fhirErrors } from '../schemas.js';
import {
  SEARCH_PARAMS,
  SEARCH_TYPES,
  parseDateParams,
  parsePatientRef,
  parseTokenParam,
  type SearchType,
} from '../search.js';
import type { RouteSecurity } from '../security.js';
import { sendSearchset } from './fhir-bundle.js';

/**
 * Type-level search of Encounter, Observation, DiagnosticReport and
 * ServiceRequest: GET with the parameters in the URL, or POST `_search` with
 * them in a form body. Every search is confined to one patient: the token's
 * own, or the one a staff token names.
 */
export interface SearchRoutesOptions {
  reader: PortalReader;
  binaries: BinaryReader;
  baseUrl: (req: FastifyRequest) => string;
}

interface SearchQuery {
  patient?: string;
  code?: string;
  date?: string[];
  status?: string;
  _count: number;
  _offset: number;
}

const patientParam = { type: 'string', minLength: 1, maxLength: 136 } as const;
const token = { type: 'string', minLength: 1, maxLength: 512 } as const;
const dates = { type: 'array', items: { type: 'string', maxLength: 40 }, maxItems: 4 } as const;

function paramsSchema(type: SearchType) {
  return {
    type: 'object',
    properties: {
      patient: patientParam,
      ...(SEARCH_PARAMS[type].code ? { code: token } : {}),
      date: dates,
      status: token,
      ...PAGING_PARAMS,
    },
  } as const;
}

/** Access and audit of a search whose parameters `from` reads (query string or form body). */
function searchSecurity(type: SearchType, from: (req: FastifyRequest) => unknown): RouteSecurity {
  return {
    interaction: 'search-type',
    resourceType: type,
    patientOf: (req) => {
      const p = (from(req) as { patient?: unknown } | undefined)?.patient;
      return typeof p === 'string' ? p : null;
    },
    access: (req) => {
      const p = (from(req) as SearchQuery).patient;
      return {
        kind: 'fhir',
        interaction: 'search',
        resourceType: type,
        patientId: p === undefined ? null : parsePatientRef(p),
      };
    },
  };
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
    const filters = {
      patientId: d.patientId,
      date: parseDateParams(asList(q.date)),
      codes: q.code ? parseTokenParam(q.code) : [],
      statuses: q.status ? q.status.split(',').filter(Boolean) : [],
    };
    const page = await opts.reader.search(type, filters, q._count, q._offset);
    page.resources = await withAttachmentHashes(opts.binaries, page.resources);
    // The links name the patient the token is confined to, whatever was asked.
    const params = {
      patient: d.patientId,
      ...(q.code ? { code: q.code } : {}),
      ...(q.date ? { date: q.date } : {}),
      ...(q.status ? { status: q.status } : {}),
    };
    const base = opts.baseUrl(req);
    return sendSearchset(
      reply,
      { base, path: `/fhir/${type}`, params, offset: q._offset, count: q._count },
      page,
    );
  };
  const hasCode = SEARCH_PARAMS[type].code;
  app.get<{ Querystring: SearchQuery }>(
    `/${type}`,
    {
      schema: {
        tags: ['fhir'],
        summary: `Search ${type} by patient${hasCode ? ', code' : ''}, date and status`,
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
