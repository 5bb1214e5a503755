import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { HubError } from '../../../libs/errors/index.js';
import { fhirErrorHandler } from '../../../libs/http/errors.js';
import type { BinaryReader } from '../readers/binary.js';
import type { PortalReader } from '../readers/portal.js';
import { binaryRoutes } from './fhir-binary.js';
import { metadataRoutes } from './fhir-metadata.js';
import { patientRoutes } from './fhir-patient.js';
import { searchRoutes } from './fhir-search.js';

export interface FhirRoutesOptions {
  reader: PortalReader;
  /** Attachments of released reports (GET /fhir/Binary/:id, DiagnosticReport.presentedForm hashes). */
  binaries: BinaryReader;
  /** Absolute base of Bundle links. */
  baseUrl: (req: FastifyRequest) => string;
}

/**
 * The portal's FHIR R4 API (read-only, released results only), in its own
 * encapsulated context: every error, an unknown route included, is an
 * OperationOutcome (the shared mapping of libs/http/errors.ts).
 */
export const fhirRoutes: FastifyPluginAsync<FhirRoutesOptions> = async (app, opts) => {
  app.setErrorHandler(fhirErrorHandler);
  app.setNotFoundHandler((req, reply) =>
    fhirErrorHandler(new HubError('HUB_NOT_FOUND', 'unknown FHIR route'), req, reply),
  );
  const { reader, binaries, baseUrl } = opts;
  await app.register(metadataRoutes);
  await app.register(patientRoutes, { reader, binaries, baseUrl });
  await app.register(searchRoutes, { reader, binaries, baseUrl });
  await app.register(binaryRoutes, { binaries });
};
