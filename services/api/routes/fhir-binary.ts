import type { Binary } from '@medplum/fhirtypes';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { HubError } from '../../../libs/errors/index.js';
import { FHIR_JSON } from '../../../libs/http/errors.js';
import type { BinaryReader, StoredBinary } from '../readers/binary.js';
import { fhirErrors } from '../schemas.js';

/**
 * FHIR Binary read (GET /fhir/Binary/:sha256): the attachments of released
 * reports, as DiagnosticReport.presentedForm names them.
 *
 * A Binary has no patient of its own: it may be read by whoever may read a
 * released report that presents it. So the reports presenting it are looked
 * up first (GIN index on presentedForm), and the request is authorized as a
 * read of that patient's DiagnosticReport, scoped and audited like every PHI
 * read. Content no released report presents (not yet, or no more: a
 * corrected report without it) is not found, whoever asks.
 */
export interface BinaryRoutesOptions {
  binaries: BinaryReader;
}

export const SHA256_HEX = /^[0-9a-f]{64}$/;

/** FHIR's own JSON asked for: the Binary resource; anything else gets the content itself (FHIR R4 Binary read). */
export function wantsFhirJson(accept: string | undefined): boolean {
  return /application\/(fhir\+json|json\+fhir)/i.test(accept ?? '');
}

export function binaryResource(id: string, b: StoredBinary): Binary {
  return { resourceType: 'Binary', id, contentType: b.contentType, data: b.data.toString('base64') };
}

export const binaryRoutes: FastifyPluginAsync<BinaryRoutesOptions> = (app, { binaries }) => {
  /** The patients found for a request before it is authorized. */
  const ownersOf = new WeakMap<FastifyRequest, string[]>();
  const idOf = (req: FastifyRequest): string => {
    const id = (req.params as { id?: unknown }).id;
    return typeof id === 'string' ? id : '';
  };

  app.get<{ Params: { id: string } }>(
    '/Binary/:id',
    {
      schema: {
        tags: ['fhir'],
        summary:
          'Read an attachment of a released report (DiagnosticReport.presentedForm): the content itself, or a FHIR Binary with Accept: application/fhir+json',
        params: {
          type: 'object',
          required: ['id'],
          properties: { id: { type: 'string', pattern: '^[0-9a-f]{64}$' } },
        },
        response: { ...fhirErrors },
      },
      // After the shared authentication check, before the shared authorization:
      // the patient the access decision is about is only known from the reports.
      preValidation: async (req) => {
        const id = idOf(req);
        if (!SHA256_HEX.test(id)) return; // the params schema answers 400
        const owners = await binaries.owners(id);
        if (owners.length === 0) throw new HubError('HUB_NOT_FOUND', 'no such Binary');
        ownersOf.set(req, owners);
      },
      config: {
        security: {
          interaction: 'read',
          resourceType: 'Binary',
          patientOf: (req) => ownersOf.get(req)?.[0] ?? null,
          access: (req) => {
            const owners = ownersOf.get(req) ?? [];
            // A patient's own token reads it as theirs when one of its reports is theirs.
            const own = req.principal?.patient;
            const patientId = own && owners.includes(own) ? own : (owners[0] ?? null);
            if (patientId === null) throw new HubError('HUB_NOT_FOUND', 'no such Binary');
            return { kind: 'fhir', interaction: 'read', resourceType: 'DiagnosticReport', patientId };
          },
        },
      },
    },
    async (req, reply) => {
      const d = req.decision;
      if (!d?.allow) throw new HubError('HUB_FORBIDDEN', 'access denied');
      const b = await binaries.read(req.params.id);
      // Presented by a released report, bytes not (yet) projected: the topics are not ordered with each other.
      if (!b) throw new HubError('HUB_NOT_FOUND', 'no such Binary');
      if (wantsFhirJson(req.headers.accept)) {
        return reply.type(FHIR_JSON).send(JSON.stringify(binaryResource(req.params.id, b)));
      }
      return reply.type(b.contentType).header('content-length', String(b.data.length)).send(b.data);
    },
  );
  // Fastify awaits plugins; this one registers its route synchronously.
  return Promise.resolve();
};
