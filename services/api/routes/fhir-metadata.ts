import type { CapabilityStatement } from '@medplum/fhirtypes';
import type { FastifyPluginAsync } from 'fastify';
import { FHIR_JSON } from '../../../libs/http/errors.js';
import { COUNT_DEFAULT, COUNT_MAX } from '../paging.js';
import { capabilitySchema } from '../schemas.js';
import { SEARCH_PARAMS, SEARCH_TYPES } from '../search.js';

/** What the server supports (GET /fhir/metadata), public: no token, not audited. */
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
          ...SEARCH_TYPES.map((type) => ({
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

export const metadataRoutes: FastifyPluginAsync = (app) => {
  app.get(
    '/metadata',
    { schema: { tags: ['fhir'], summary: 'CapabilityStatement', response: { 200: capabilitySchema } } },
    async (_req, reply) => reply.type(FHIR_JSON).send(capabilityStatement()),
  );
  // Fastify awaits plugins; this one registers its route synchronously.
  return Promise.resolve();
};
