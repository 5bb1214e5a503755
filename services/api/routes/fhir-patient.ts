import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { FHIR_TYPES, type FhirType } from '../../../libs/auth/scopes.js';
import { HubError } from '../../../libs/errors/index.js';
import { FHIR_JSON } from '../../../libs/http/errors.js';
import { PAGING_PARAMS } from '../paging.js';
import { withAttachmentHashes, type BinaryReader } from '../readers/binary.js';
import type { PortalReader } from '../readers/portal.js';
import { bundleSchema, fhirErrors, resourceSchema } from '../schemas.js';
import { sendSearchset } from './fhir-bundle.js';

/**
 * A patient's own resource (read) and whole visible record ($everything).
 * The patient is the one in the path; a patient token may only name its own.
 */
export interface PatientRoutesOptions {
  reader: PortalReader;
  binaries: BinaryReader;
  baseUrl: (req: FastifyRequest) => string;
}

interface EverythingQuery {
  _count: number;
  _offset: number;
  _type?: string;
}

const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 128 } },
} as const;

/** The patient the path names, read raw: the audit of a request refused before validation still names it. */
const patientOfParams = (req: FastifyRequest) => {
  const id = (req.params as { id?: unknown }).id;
  return typeof id === 'string' ? id : null;
};

/** The types `_type` asks for, within those the token's scopes allow. */
function typesWanted(allowed: readonly FhirType[], _type: string | undefined): readonly FhirType[] {
  if (!_type) return allowed;
  const wanted = new Set(_type.split(','));
  for (const t of wanted) {
    if (!(FHIR_TYPES as readonly string[]).includes(t))
      throw new HubError('HUB_INPUT_INVALID', '_type lists an unsupported type');
  }
  return allowed.filter((t) => wanted.has(t));
}

export const patientRoutes: FastifyPluginAsync<PatientRoutesOptions> = (app, opts) => {
  app.get<{ Params: { id: string } }>(
    '/Patient/:id',
    {
      schema: {
        tags: ['fhir'],
        summary: 'Read a patient',
        params: idParams,
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

  const everything = async (
    req: FastifyRequest<{ Params: { id: string }; Querystring: EverythingQuery }>,
    reply: FastifyReply,
  ) => {
    const d = req.decision;
    if (!d?.allow) throw new HubError('HUB_FORBIDDEN', 'access denied');
    const patientId = d.patientId ?? req.params.id;
    const types = typesWanted(d.resourceTypes, req.query._type);
    const { _count, _offset } = req.query;
    const page = await opts.reader.everything(patientId, types, _count, _offset);
    page.resources = await withAttachmentHashes(opts.binaries, page.resources);
    const path = `/fhir/Patient/${encodeURIComponent(patientId)}/$everything`;
    const params = req.query._type ? { _type: req.query._type } : {};
    return sendSearchset(
      reply,
      { base: opts.baseUrl(req), path, params, offset: _offset, count: _count },
      page,
    );
  };

  app.get<{ Params: { id: string }; Querystring: EverythingQuery }>(
    '/Patient/:id/$everything',
    {
      schema: {
        tags: ['fhir'],
        summary: "A patient's whole visible record (Patient $everything), paged",
        params: idParams,
        querystring: {
          type: 'object',
          properties: { ...PAGING_PARAMS, _type: { type: 'string', maxLength: 200 } },
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
    everything,
  );
  // Fastify awaits plugins; this one registers its routes synchronously.
  return Promise.resolve();
};
