import type { CapabilityStatement, CapabilityStatementRestResource } from '@medplum/fhirtypes';
import type { FastifyPluginAsync } from 'fastify';
import { BACKPORT_SUBSCRIPTION, TOPICS } from '../../../libs/delivery/fhir.js';
import { FHIR_JSON } from '../../../libs/http/errors.js';
import { COUNT_DEFAULT, COUNT_MAX } from '../paging.js';
import { capabilitySchema } from '../schemas.js';
import { SEARCH_PARAMS, SEARCH_TYPES, type SearchSpec } from '../search.js';

type SearchParam = NonNullable<
  NonNullable<CapabilityStatement['rest']>[number]['resource']
>[number]['searchParam'];

/** The search parameters of one type, as search.ts SEARCH_PARAMS and the search routes take them. */
function searchParams(p: SearchSpec): NonNullable<SearchParam> {
  return [
    { name: 'patient', type: 'reference' },
    ...p.patientAliases.map((name) => ({ name, type: 'reference' as const })),
    ...(p.code ? [{ name: 'code', type: 'token' as const }] : []),
    ...(p.date ? [{ name: p.date.name, type: 'date' as const, documentation: p.date.docs }] : []),
    ...(p.status ? [{ name: p.status, type: 'token' as const }] : []),
    ...(p.encounter ? [{ name: 'encounter', type: 'reference' as const }] : []),
    ...(p.category ? [{ name: 'category', type: 'token' as const }] : []),
    { name: '_count', type: 'number', documentation: `1..${COUNT_MAX}, default ${COUNT_DEFAULT}` },
    { name: '_offset', type: 'number', documentation: 'paging position (use the next link)' },
  ];
}

const BACKPORT = 'http://hl7.org/fhir/uv/subscriptions-backport';

/**
 * Topic-based Subscription (Subscriptions R5 Backport IG, R4): the profile, the interactions,
 * `$status`, and each topic the hub offers (libs/delivery/fhir.ts) as the IG's
 * capabilitystatement-subscriptiontopic-canonical extension.
 */
function subscriptionResource(): CapabilityStatementRestResource {
  return {
    type: 'Subscription',
    extension: Object.values(TOPICS).map((valueCanonical) => ({
      url: `${BACKPORT}/StructureDefinition/capabilitystatement-subscriptiontopic-canonical`,
      valueCanonical,
    })),
    supportedProfile: [BACKPORT_SUBSCRIPTION],
    interaction: (['read', 'create', 'update', 'delete', 'search-type'] as const).map((code) => ({ code })),
    operation: [
      { name: 'status', definition: `${BACKPORT}/OperationDefinition/backport-subscription-status` },
    ],
  };
}

/** What the server supports (GET /fhir/metadata), public: no token, not audited. */
export function capabilityStatement(): CapabilityStatement {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: '2026-11-25',
    kind: 'instance',
    fhirVersion: '4.0.1',
    instantiates: [`${BACKPORT}/CapabilityStatement/backport-subscription-server-r4`],
    format: ['application/fhir+json', 'json'],
    software: { name: 'clinical-hub api', version: '0.1.0' },
    implementation: {
      description:
        'Clinical data hub patient portal (read-only, released results only) and topic-based rest-hook subscriptions',
    },
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
            'OAuth2 bearer JWT. Scopes: patient/*.rs with a patient claim (own record only), user/*.rs (staff); Subscription: system/Subscription.rs (read, search, $status) and system/Subscription.cud (create, update, delete), by name only.',
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
          ...SEARCH_TYPES.map((type) => ({
            type,
            interaction: [{ code: 'read' as const }, { code: 'search-type' as const }],
            searchParam: searchParams(SEARCH_PARAMS[type]),
          })),
          subscriptionResource(),
        ],
      },
    ],
  };
}

export const metadataRoutes: FastifyPluginAsync = (app) => {
  app.get(
    '/metadata',
    { schema: { tags: ['fhir'], summary: 'CapabilityStatement', response: { 200: capabilitySchema } } },
    async (_req, reply) => reply.type(FHIR_JSON).send(capabilityStatement()),
  );
  // Fastify awaits plugins; this one registers its route synchronously.
  return Promise.resolve();
};
