import type { FastifyInstance } from 'fastify';
import type { Knex } from 'knex';
import { listAudit, verifyAuditChain } from '../../libs/audit/store.js';
import { HUB_SCOPES } from '../../libs/auth/scopes.js';
import type { KafkaClient } from '../../libs/kafka/client.js';
import { consumerGroupsOf } from '../../libs/kafka/groups.js';
import { jsonErrors } from './schemas.js';

/**
 * Operational routes (scope system/hub.admin): the audit trail, its chain
 * verification, and who can read what: the API's scopes per route and the
 * Kafka consumer groups that read the clinical topics directly.
 */
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
  { routes: 'GET /fhir/metadata, /docs, /health, /ready, /metrics', scopes: '(none)' },
];

const str = { type: 'string' } as const;
const nstr = { type: ['string', 'null'] } as const;

export function adminRoutes(
  app: FastifyInstance,
  opts: { db: Knex; auditSchema: string; kafka: KafkaClient; clinicalTopics: readonly string[] },
): Promise<void> {
  const security = {
    interaction: 'search-type' as const,
    resourceType: 'AuditEvent',
    access: () => ({ kind: 'admin' as const }),
  };

  app.get(
    '/audit/verify',
    {
      schema: {
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
            },
          },
          ...jsonErrors,
        },
      },
      config: { security: { ...security, namesPatient: false } },
    },
    () => verifyAuditChain(opts.db, opts.auditSchema),
  );

  app.get<{ Querystring: { patient?: string; agent?: string; _count: number; before?: number } }>(
    '/audit/events',
    {
      schema: {
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
          200: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
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
              },
            },
          },
          ...jsonErrors,
        },
      },
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
      if (q.patient) req.auditPatient = q.patient;
      return listAudit(opts.db, opts.auditSchema, {
        limit: q._count,
        ...(q.patient ? { patientId: q.patient } : {}),
        ...(q.agent ? { agent: q.agent } : {}),
        ...(q.before ? { beforeSeq: q.before } : {}),
      });
    },
  );

  app.get(
    '/access',
    {
      schema: {
        tags: ['admin'],
        summary: 'Who can read what: API scopes per route and Kafka consumer groups of the clinical topics',
        response: {
          200: {
            type: 'object',
            properties: {
              api: { type: 'array', items: { type: 'object', properties: { routes: str, scopes: str } } },
              kafkaConsumers: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    groupId: str,
                    state: str,
                    members: { type: 'integer' },
                    topics: { type: 'array', items: str },
                  },
                },
              },
            },
          },
          ...jsonErrors,
        },
      },
      config: { security: { ...security, namesPatient: false } },
    },
    async () => ({
      api: ACCESS_MATRIX,
      kafkaConsumers: await consumerGroupsOf(opts.kafka, opts.clinicalTopics),
    }),
  );
  // Fastify awaits plugins; these register routes synchronously.
  return Promise.resolve();
}
