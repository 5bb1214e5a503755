import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { fhirErrorHandler } from '../../../libs/http/errors.js';
import type { BinaryReader } from '../readers/binary.js';
import type { PortalReader } from '../readers/portal.js';
import { binaryRoutes } from './fhir-binary.js';
import { metadataRoutes } from './fhir-metadata.js';
import { patientRoutes } from './fhir-patient.js';
import { readRoutes } from './fhir-read.js';
import { searchRoutes } from './fhir-search.js';

export interface FhirRoutesOptions {
  reader: PortalReader;
  /** Attachments of released reports (GET /fhir/Binary/:id, DiagnosticReport.presentedForm hashes). */
  binaries: BinaryReader;
  /** Base of Bundle links: PUBLIC_BASE_URL (or the listen address), never the Host header. */
  baseUrl: (req: FastifyRequest) => string;
}

/**
 * The portal's FHIR R4 API (read-only, released results only), in its own
 * encapsulated context: every error is an OperationOutcome (the shared
 * mapping of libs/http/errors.ts); an unknown route under /fhir is answered,
 * as one too, by the app's not-found handler, which audits it.
 */
export const fhirRoutes: FastifyPluginAsync<FhirRoutesOptions> = async (app, opts) => {
  app.setErrorHandler(fhirErrorHandler);
  const { reader, binaries, baseUrl } = opts;
  await app.register(metadataRoutes);
  await app.register(patientRoutes, { reader, binaries, baseUrl });
  await app.register(searchRoutes, { reader, binaries, baseUrl });
  await app.register(readRoutes, { reader, binaries });
  await app.register(binaryRoutes, { binaries });
};
