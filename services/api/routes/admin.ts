import type { FastifyPluginAsync } from 'fastify';
import { HUB_SCOPES } from '../../../libs/auth/scopes.js';
import { jsonErrorHandler } from '../../../libs/http/errors.js';
import type { AdminReader } from '../readers/admin.js';
import { arrayOf, jsonErrors } from '../schemas.js';
import type { RouteSecurity } from '../security.js';

/**
 * Operational routes (scope system/hub.admin): the audit trail, its chain
 * verification, and who can read what: the API's scopes per route and the
 * Kafka consumer groups that read the clinical topics directly. Errors are
 * `{code, message, retriable}`.
 */
export interface AdminRoutesOptions {
  reader: AdminReader;
}

export const ACCESS_MATRIX: readonly { routes: string; scopes: string }[] = [
  {
    routes: 'GET /fhir/Patient/{id}, /fhir/Patient/{id}/$everything',
    scopes: 'patient/*.rs + patient claim (own id only); user/*.rs',
  },
  {
    routes: 'GET /fhir/{Encounter,Observation,DiagnosticReport,ServiceRequest}',
    scopes: 'patient/*.rs + patient claim (confined to it); user/*.rs (patient= required)',
  },
  { routes: 'GET /billing/*', scopes: HUB_SCOPES.billing },
  { routes: 'GET /analytics/*', scopes: HUB_SCOPES.analytics },
  { routes: 'GET /admin/*', scopes: HUB_SCOPES.admin },
  {
    routes:
      'GET /subscriptions, /subscriptions/{id}, /subscriptions/{id}/status, /fhir/Subscription, /fhir/Subscription/{id}, /fhir/Subscription/{id}/$status',
    scopes: 'system/Subscription.rs (v1 .read), by name: no wildcard, no user/ or patient/ scope',
  },
  {
    routes:
      'POST, PUT, DELETE /subscriptions, /subscriptions/{id}, /subscriptions/{id}/{pause,resume,replay}, /fhir/Subscription, /fhir/Subscription/{id}',
    scopes: 'system/Subscription.c / .u / .d (v1 .write), by name',
  },
  {
    routes: 'GET /identity/review, /identity/patients/{id}/explain',
    scopes: 'user/ or system/Identity.rs (v1 .read), by name: no wildcard, no patient/ scope',
  },
  {
    routes: 'POST /identity/links, /identity/unlinks, /identity/rejections',
    scopes: 'user/ or system/Identity.c (v1 .write), by name',
  },
  { routes: 'GET /fhir/metadata, /docs, /health, /ready, /metrics', scopes: '(none)' },
];

interface AuditEventsQuery {
  patient?: string;
  agent?: string;
  _count: number;
  before?: number;
}

const str = { type: 'string' } as const;
const nstr = { type: ['string', 'null'] } as const;

const verifySchema = {
  tags: ['admin'],
  summary: 'Verify the audit hash chain',
  response: {
    200: {
      type: 'object',
      properties: {
        ok: { type: 'boolean' },
        rows: { type: 'integer' },
        lastHash: str,
        brokenAt: { type: 'integer' },
        reason: str,
        // A hash-mismatch on the first keyed row: the API's chain key may be the wrong one (libs/audit/chain.ts).
        firstKeyed: { type: 'boolean' },
      },
    },
    ...jsonErrors,
  },
};

const eventsSchema = {
  tags: ['admin'],
  summary: 'Audit trail, newest first: who accessed which patient, how, with what outcome',
  querystring: {
    type: 'object',
    properties: {
      patient: { type: 'string', maxLength: 128 },
      agent: { type: 'string', maxLength: 256 },
      _count: { type: 'integer', minimum: 1, maximum: 500, default: 100 },
      before: { type: 'integer', minimum: 1 },
    },
  },
  response: {
    200: arrayOf({
      seq: { type: 'integer' },
      auditId: str,
      recordedAt: str,
      patientId: nstr,
      agent: nstr,
      clientId: nstr,
      action: str,
      route: str,
      outcome: str,
      sourceAddress: nstr,
    }),
    ...jsonErrors,
  },
};

const accessSchema = {
  tags: ['admin'],
  summary: 'Who can read what: API scopes per route and Kafka consumer groups of the clinical topics',
  response: {
    200: {
      type: 'object',
      properties: {
        api: arrayOf({ routes: str, scopes: str }),
        kafkaConsumers: arrayOf({
          groupId: str,
          state: str,
          members: { type: 'integer' },
          topics: { type: 'array', items: str },
        }),
      },
    },
    ...jsonErrors,
  },
};

const security: RouteSecurity = {
  interaction: 'search-type',
  resourceType: 'AuditEvent',
  access: () => ({ kind: 'admin' }),
};

export const adminRoutes: FastifyPluginAsync<AdminRoutesOptions> = (app, { reader }) => {
  app.setErrorHandler(jsonErrorHandler);

  app.get(
    '/audit/verify',
    { schema: verifySchema, config: { security: { ...security, namesPatient: false } } },
    () => reader.verifyAudit(),
  );

  app.get<{ Querystring: AuditEventsQuery }>(
    '/audit/events',
    {
      schema: eventsSchema,
      config: {
        security: {
          ...security,
          patientOf: (req) => {
            const p = (req.query as { patient?: unknown }).patient;
            return typeof p === 'string' ? p : null;
          },
        },
      },
    },
    async (req) => {
      const q = req.query;
      // Reading a patient's trail is itself a read about that patient.
      if (q.patient) req.auditPatient = q.patient;
      return reader.auditEvents({
        limit: q._count,
        ...(q.patient ? { patientId: q.patient } : {}),
        ...(q.agent ? { agent: q.agent } : {}),
        ...(q.before ? { beforeSeq: q.before } : {}),
      });
    },
  );

  app.get(
    '/access',
    { schema: accessSchema, config: { security: { ...security, namesPatient: false } } },
    async () => ({
      api: ACCESS_MATRIX,
      kafkaConsumers: await reader.clinicalReaders(),
    }),
  );
  // Fastify awaits plugins; this one registers its routes synchronously.
  return Promise.resolve();
};
