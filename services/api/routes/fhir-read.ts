import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import { HubError } from '../../../libs/errors/index.js';
import { FHIR_JSON } from '../../../libs/http/errors.js';
import { withAttachmentHashes, type BinaryReader } from '../readers/binary.js';
import type { Owned, PortalReader } from '../readers/portal.js';
import { fhirErrors, resourceSchema } from '../schemas.js';
import { SEARCH_TYPES, type SearchType } from '../search.js';

/**
 * FHIR read (GET /fhir/[type]/[id]) of every type the portal serves besides
 * Patient (fhir-patient.ts): so that every reference in a served resource
 * (Observation.encounter, DiagnosticReport.basedOn, Encounter.diagnosis,
 * Condition.encounter, ...) resolves.
 *
 * The id alone does not say whose record it is in: the resource is looked up
 * first (visible rows of patients not merged away, as $everything serves
 * them), then the request is authorized as a read of that patient's resource
 * of that type, scoped and audited naming that patient, as Binary reads are.
 * An id nothing visible has is not found, whoever asks (audited, no patient).
 * A record linked to the token's patient as one person (master patient index)
 * is that patient's too, as $everything serves it: authorized and audited as
 * the token's patient, so every reference of that record resolves as well.
 */
export interface ReadRoutesOptions {
  reader: PortalReader;
  binaries: BinaryReader;
}

/** The ids the read model stores (libs/events: hub ids up to 128 characters). */
const ID_MAX = 128;

const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: ID_MAX } },
} as const;

function registerRead(app: FastifyInstance, type: SearchType, opts: ReadRoutesOptions): void {
  /** The resource found for a request before it is authorized. */
  const found = new WeakMap<FastifyRequest, Owned>();
  app.get<{ Params: { id: string } }>(
    `/${type}/:id`,
    {
      schema: {
        tags: ['fhir'],
        summary: `Read a ${type}`,
        params: idParams,
        response: { 200: resourceSchema, ...fhirErrors },
      },
      // After the shared authentication check, before the shared authorization: the patient
      // the access decision is about is only known from the resource.
      preValidation: async (req) => {
        const id = (req.params as { id?: unknown }).id;
        if (typeof id !== 'string' || id.length === 0 || id.length > ID_MAX) return; // the schema answers 400
        const owned = await opts.reader.read(type, id);
        if (!owned) throw new HubError('HUB_NOT_FOUND', `no such ${type}`);
        const own = req.principal?.patient;
        const samePerson =
          typeof own === 'string' &&
          own !== owned.patientId &&
          (await opts.reader.person(owned.patientId)).includes(own);
        found.set(req, samePerson ? { ...owned, patientId: own } : owned);
      },
      config: {
        security: {
          interaction: 'read',
          resourceType: type,
          patientOf: (req) => found.get(req)?.patientId ?? null,
          access: (req) => {
            const owned = found.get(req);
            if (!owned) throw new HubError('HUB_NOT_FOUND', `no such ${type}`);
            return { kind: 'fhir', interaction: 'read', resourceType: type, patientId: owned.patientId };
          },
        },
      },
    },
    async (req, reply) => {
      const owned = found.get(req);
      if (!req.decision?.allow || !owned) throw new HubError('HUB_FORBIDDEN', 'access denied');
      const [resource] = await withAttachmentHashes(opts.binaries, [owned.resource]);
      return reply.type(FHIR_JSON).send(resource);
    },
  );
}

export const readRoutes: FastifyPluginAsync<ReadRoutesOptions> = (app, opts) => {
  for (const type of SEARCH_TYPES) registerRead(app, type, opts);
  // Fastify awaits plugins; this one registers its routes synchronously.
  return Promise.resolve();
};
