import type { FastifyPluginAsync } from 'fastify';
import { HubError } from '../../../libs/errors/index.js';
import { jsonErrorHandler } from '../../../libs/http/errors.js';
import type { PatientRow } from '../domain.js';

export interface PatientRoutesOptions {
  /** The directory row of a patient id, if there is one. */
  find(patientId: string): Promise<PatientRow | undefined>;
}

/** The answer's shape: every field is listed, so nothing else of a row (e.g. last_event_id) goes out. */
const patientSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['patientId', 'version', 'identifiers'],
  properties: {
    patientId: { type: 'string' },
    family: { type: ['string', 'null'] },
    given: { type: 'array', items: { type: 'string' } },
    birthDate: { type: ['string', 'null'] },
    gender: { type: ['string', 'null'] },
    identifiers: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        properties: {
          system: { type: 'string' },
          value: { type: 'string' },
          type: { type: ['string', 'null'] },
        },
      },
    },
    mergedInto: { type: ['string', 'null'] },
    version: { type: 'integer' },
    updatedAt: { type: 'string' },
  },
} as const;

/** The directory's public JSON: camelCase, the time as ISO 8601. */
export function patientView(r: PatientRow) {
  return {
    patientId: r.patient_id,
    family: r.family,
    given: r.given,
    birthDate: r.birth_date,
    gender: r.gender,
    identifiers: r.identifiers,
    mergedInto: r.merged_into,
    version: r.version,
    updatedAt: new Date(r.updated_at).toISOString(),
  };
}

/** GET /patients/:id: one patient's current demographics, or 404 HUB_NOT_FOUND. */
export const patientRoutes: FastifyPluginAsync<PatientRoutesOptions> = (scope, o) => {
  scope.setErrorHandler(jsonErrorHandler);
  scope.get<{ Params: { id: string } }>(
    '/patients/:id',
    {
      schema: {
        params: { type: 'object', properties: { id: { type: 'string', minLength: 1, maxLength: 128 } } },
        response: { 200: patientSchema },
      },
    },
    async (req) => {
      const row = await o.find(req.params.id);
      if (!row) throw new HubError('HUB_NOT_FOUND', 'no such patient');
      return patientView(row);
    },
  );
  return Promise.resolve();
};
