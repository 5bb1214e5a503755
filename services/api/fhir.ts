import type {
  Bundle,
  CapabilityStatement,
  OperationOutcome,
  OperationOutcomeIssue,
  Resource,
} from '@medplum/fhirtypes';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FHIR_TYPES, type FhirType } from '../../libs/auth/scopes.js';
import { HubError, isHubError, toHubError, type ErrorCode } from '../../libs/errors/index.js';
import type { Logger } from '../../libs/telemetry/logger.js';
import { binaryRoute, withAttachmentHashes, type BinaryReader } from './binary.js';
import type { PortalReader } from './queries.js';
import { bundleSchema, capabilitySchema, fhirErrors, resourceSchema } from './schemas.js';
import {
  COUNT_DEFAULT,
  COUNT_MAX,
  OFFSET_MAX,
  asList,
  nextLink,
  parseDateParams,
  parsePatientRef,
  parseTokenParam,
} from './search.js';

export const FHIR_JSON = 'application/fhir+json; charset=utf-8';

const ISSUE_CODE: Partial<Record<number, OperationOutcomeIssue['code']>> = {
  400: 'invalid',
  401: 'login',
  403: 'forbidden',
  404: 'not-found',
  413: 'too-costly',
  429: 'throttled',
  503: 'transient',
};

export function operationOutcome(status: number, diagnostics: string): OperationOutcome {
  return {
    resourceType: 'OperationOutcome',
    issue: [
      {
        severity: status >= 500 ? 'fatal' : 'error',
        code: ISSUE_CODE[status] ?? 'exception',
        diagnostics,
      },
    ],
  };
}

const HUB_STATUS: Partial<Record<ErrorCode, number>> = {
  HUB_INPUT_INVALID: 400,
  HUB_NOT_FOUND: 404,
  HUB_UNAUTHENTICATED: 401,
  HUB_FORBIDDEN: 403,
  HUB_AUTH_UNAVAILABLE: 503,
  HUB_DB_UNAVAILABLE: 503,
  HUB_KAFKA_UNAVAILABLE: 503,
};

/** Maps any error to a status and a message safe to send (codes and our own texts, never driver text). */
export function errorAnswer(err: unknown): { status: number; message: string } {
  const fe = err as Partial<FastifyError> & { statusCode?: number };
  if (!isHubError(err) && fe.statusCode && fe.statusCode < 500) {
    // Fastify's own 4xx (validation, body size, rate limit) quote the schema, not the data.
    return { status: fe.statusCode, message: fe.message ?? 'bad request' };
  }
  const h = toHubError(err);
  const status = HUB_STATUS[h.code] ?? 500;
  return { status, message: status >= 500 ? `${h.code}: the request could not be served` : h.message };
}

const patientParam = { type: 'string', minLength: 1, maxLength: 136 } as const;
const count = { type: 'integer', minimum: 1, maximum: COUNT_MAX, default: COUNT_DEFAULT } as const;
const offset = { type: 'integer', minimum: 0, maximum: OFFSET_MAX, default: 0 } as const;
const token = { type: 'string', minLength: 1, maxLength: 512 } as const;
const dates = { type: 'array', items: { type: 'string', maxLength: 40 }, maxItems: 4 } as const;

type SearchType = Exclude<FhirType, 'Patient'>;

interface SearchQuery {
  patient?: string;
  code?: string;
  date?: string[];
  status?: string;
  _count: number;
  _offset: number;
}

const SEARCH_PARAMS: Record<SearchType, { code: boolean; docs: string }> = {
  Encounter: { code: false, docs: 'date = period.start' },
  Observation: { code: true, docs: 'date = effectiveDateTime' },
  DiagnosticReport: { code: true, docs: 'date = effectiveDateTime; released (final/corrected) reports only' },
  ServiceRequest: { code: true, docs: 'date = authoredOn' },
};

export function capabilityStatement(): CapabilityStatement {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: '2026-11-25',
    kind: 'instance',
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    software: { name: 'clinical-hub api', version: '0.1.0' },
    implementation: { description: 'Clinical data hub patient portal (read-only, released results only)' },
    rest: [
      {
        mode: 'server',
        security: {
          cors: false,
          service: [
            {
              coding: [
                {
                  system: 'http://terminology.hl7.org/CodeSystem/restful-security-service',
                  code: 'SMART-on-FHIR',
                },
              ],
            },
          ],
          description:
            'OAuth2 bearer JWT. Scopes: patient/*.rs with a patient claim (own record only), user/*.rs (staff).',
        },
        resource: [
          {
            type: 'Patient',
            interaction: [{ code: 'read' }],
            operation: [
              {
                name: 'everything',
                definition: 'http://hl7.org/fhir/OperationDefinition/Patient-everything',
              },
            ],
          },
          // The attachments of released reports (DiagnosticReport.presentedForm).
          { type: 'Binary', interaction: [{ code: 'read' as const }] },
          ...(Object.keys(SEARCH_PARAMS) as SearchType[]).map((type) => ({
            type,
            interaction: [{ code: 'search-type' as const }],
            searchParam: [
              { name: 'patient', type: 'reference' as const },
              ...(SEARCH_PARAMS[type].code ? [{ name: 'code', type: 'token' as const }] : []),
              { name: 'date', type: 'date' as const, documentation: SEARCH_PARAMS[type].docs },
              { name: 'status', type: 'token' as const },
              {
                name: '_count',
                type: 'number' as const,
                documentation: `1..${COUNT_MAX}, default ${COUNT_DEFAULT}`,
              },
              {
                name: '_offset',
                type: 'number' as const,
                documentation: 'paging position (use the next link)',
              },
            ],
          })),
        ],
      },
    ],
  };
}

export interface FhirRoutesOptions {
  reader: PortalReader;
  /** Attachments of released reports (GET /fhir/Binary/:id, DiagnosticReport.presentedForm hashes). */
  binaries?: BinaryReader;
  logger: Logger;
  baseUrl: (req: FastifyRequest) => string;
}

function sendOutcome(reply: FastifyReply, status: number, message: string) {
  return reply.status(status).type(FHIR_JSON).send(operationOutcome(status, message));
}

function searchset(
  base: string,
  resources: Resource[],
  total: number,
  self: string,
  next: string | null,
): Bundle {
  return {
    resourceType: 'Bundle',
    type: 'searchset',
    total,
    link: [{ relation: 'self', url: self }, ...(next ? [{ relation: 'next', url: next }] : [])],
    entry: resources.map((r) => ({
      fullUrl: `${base}/fhir/${r.resourceType}/${r.id ?? ''}`,
      resource: r,
      search: { mode: 'match' as const },
    })),
  };
}

/** The portal's FHIR R4 API, in its own encapsulated context (OperationOutcome errors). */
export function fhirRoutes(app: FastifyInstance, opts: FhirRoutesOptions): Promise<void> {
  const log = opts.logger.child({ component: 'fhir' });
  app.setErrorHandler((err, _req, reply) => {
    const { status, message } = errorAnswer(err);
    if (status >= 500) log.error({ code: toHubError(err).code }, 'fhir request failed');
    return sendOutcome(reply, status, message);
  });
  app.setNotFoundHandler((_req, reply) => sendOutcome(reply, 404, 'unknown FHIR route'));

  app.get(
    '/metadata',
    { schema: { tags: ['fhir'], summary: 'CapabilityStatement', response: { 200: capabilitySchema } } },
    async (_req, reply) => reply.type(FHIR_JSON).send(capabilityStatement()),
  );

  const patientOfParams = (req: FastifyRequest) => {
    const id = (req.params as { id?: unknown }).id;
    return typeof id === 'string' ? id : null;
  };

  app.get<{ Params: { id: string } }>(
    '/Patient/:id',
    {
      schema: {
        tags: ['fhir'],
        summary: 'Read a patient',
        params: {
          type: 'object',
          required: ['id'],
          properties: { id: { type: 'string', minLength: 1, maxLength: 128 } },
        },
        response: { 200: resourceSchema, ...fhirErrors },
      },
      config: {
        security: {
          interaction: 'read',
          resourceType: 'Patient',
          patientOf: patientOfParams,
          access: (req) => ({
            kind: 'fhir',
            interaction: 'read',
            resourceType: 'Patient',
            patientId: (req.params as { id: string }).id,
          }),
        },
      },
    },
    async (req, reply) => {
      const id = req.decision?.allow ? (req.decision.patientId ?? req.params.id) : req.params.id;
      const p = await opts.reader.patient(id);
      if (!p) throw new HubError('HUB_NOT_FOUND', 'no such patient');
      return reply.type(FHIR_JSON).send(p);
    },
  );

  app.get<{ Params: { id: string }; Querystring: { _count: number; _offset: number; _type?: string } }>(
    '/Patient/:id/$everything',
    {
      schema: {
        tags: ['fhir'],
        summary: "A patient's whole visible record (Patient $everything), paged",
        params: {
          type: 'object',
          required: ['id'],
          properties: { id: { type: 'string', minLength: 1, maxLength: 128 } },
        },
        querystring: {
          type: 'object',
          properties: { _count: count, _offset: offset, _type: { type: 'string', maxLength: 200 } },
        },
        response: { 200: bundleSchema, ...fhirErrors },
      },
      config: {
        security: {
          interaction: 'operation',
          resourceType: 'Patient',
          patientOf: patientOfParams,
          access: (req) => ({ kind: 'everything', patientId: (req.params as { id: string }).id }),
        },
      },
    },
    async (req, reply) => {
      const d = req.decision;
      if (!d?.allow) throw new HubError('HUB_FORBIDDEN', 'access denied');
      const patientId = d.patientId ?? req.params.id;
      let types = d.resourceTypes;
      if (req.query._type) {
        const wanted = new Set(req.query._type.split(','));
        for (const t of wanted) {
          if (!(FHIR_TYPES as readonly string[]).includes(t))
            throw new HubError('HUB_INPUT_INVALID', '_type lists an unsupported type');
        }
        types = types.filter((t) => wanted.has(t));
      }
      const { _count, _offset } = req.query;
      const page = await opts.reader.everything(patientId, types, _count, _offset);
      page.resources = await withAttachmentHashes(opts.binaries, page.resources);
      const base = opts.baseUrl(req);
      const path = `/fhir/Patient/${encodeURIComponent(patientId)}/$everything`;
      const params = req.query._type ? { _type: req.query._type } : {};
      const more = _offset + page.resources.length < page.total;
      return reply
        .type(FHIR_JSON)
        .send(
          searchset(
            base,
            page.resources,
            page.total,
            nextLink(base, path, params, _offset, _count),
            more ? nextLink(base, path, params, _offset + _count, _count) : null,
          ),
        );
    },
  );

  // application/x-www-form-urlencoded bodies for POST [type]/_search (FHIR's way
  // to keep search parameters out of URLs and proxy logs), within the app's body limit.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    // A null-prototype object, and prototype keys refused: `__proto__=...` must not reach a prototype.
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
  });

  for (const type of Object.keys(SEARCH_PARAMS) as SearchType[]) {
    const hasCode = SEARCH_PARAMS[type].code;
    const params = {
      type: 'object',
      properties: {
        patient: patientParam,
        ...(hasCode ? { code: token } : {}),
        date: dates,
        status: token,
        _count: count,
        _offset: offset,
      },
    } as const;
    const security = (from: (req: FastifyRequest) => unknown) => ({
      interaction: 'search-type' as const,
      resourceType: type,
      patientOf: (req: FastifyRequest) => {
        const p = (from(req) as { patient?: unknown } | undefined)?.patient;
        return typeof p === 'string' ? p : null;
      },
      access: (req: FastifyRequest) => {
        const p = (from(req) as SearchQuery).patient;
        return {
          kind: 'fhir' as const,
          interaction: 'search' as const,
          resourceType: type,
          patientId: p === undefined ? null : parsePatientRef(p),
        };
      },
    });
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
      const base = opts.baseUrl(req);
      // The next link names the patient the token is confined to, whatever was asked.
      const linkParams = {
        patient: d.patientId,
        ...(q.code ? { code: q.code } : {}),
        ...(q.date ? { date: q.date } : {}),
        ...(q.status ? { status: q.status } : {}),
      };
      const more = q._offset + page.resources.length < page.total;
      return reply
        .type(FHIR_JSON)
        .send(
          searchset(
            base,
            page.resources,
            page.total,
            nextLink(base, `/fhir/${type}`, linkParams, q._offset, q._count),
            more ? nextLink(base, `/fhir/${type}`, linkParams, q._offset + q._count, q._count) : null,
          ),
        );
    };
    app.get<{ Querystring: SearchQuery }>(
      `/${type}`,
      {
        schema: {
          tags: ['fhir'],
          summary: `Search ${type} by patient${hasCode ? ', code' : ''}, date and status`,
          querystring: params,
          response: { 200: bundleSchema, ...fhirErrors },
        },
        config: { security: security((req) => req.query) },
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
          body: params,
          response: { 200: bundleSchema, ...fhirErrors },
        },
        config: { security: security((req) => req.body) },
      },
      (req, reply) => search(req, reply, req.body),
    );
  }
  if (opts.binaries) binaryRoute(app, opts.binaries);
  // Fastify awaits plugins; these register routes synchronously.
  return Promise.resolve();
}
