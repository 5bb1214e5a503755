import type { FastifyPluginAsync } from 'fastify';
import type { Readable } from 'node:stream';
import { runImport, type ImportDeps } from '../../../libs/fhir/import/import.js';
import { JSON_TYPES, REQUEST_ID, mediaType, refusal, sendRefusal, setFhirErrorHandler } from './common.js';

/** POST /$import: NDJSON or a Bundle document, streamed (no body limit), resumable by X-Import-Id. */
export interface ImportRoutesOptions {
  deps: ImportDeps;
  chunkSize?: number | undefined;
  /** Called with the number of lines an import dead-lettered (for hub_dead_letters_total). */
  onDeadLetters(n: number): void;
  /** For the body-limit answer of the shared error handler; $import itself has no limit. */
  maxBodyBytes: number;
}

const NDJSON_TYPES = new Set(['application/fhir+ndjson', 'application/x-ndjson', 'application/ndjson']);

export const importRoutes: FastifyPluginAsync<ImportRoutesOptions> = (scope, o) => {
  setFhirErrorHandler(scope, o.maxBodyBytes);
  scope.removeAllContentTypeParsers();
  // The body stays a stream: runImport reads it line by line (or entry by entry).
  scope.addContentTypeParser('*', (_req, payload, next) => next(null, payload));

  scope.post<{ Querystring: { label?: string } }>('/$import', async (req, reply) => {
    const body = req.body as Readable;
    const mt = mediaType(req);
    const format = NDJSON_TYPES.has(mt) ? 'ndjson' : JSON_TYPES.has(mt) ? 'bundle' : null;
    if (!format) {
      body.resume();
      return sendRefusal(
        reply,
        refusal(
          415,
          'not-supported',
          'use application/fhir+ndjson (NDJSON) or application/fhir+json (a Bundle)',
        ),
      );
    }
    const importId = req.headers['x-import-id'];
    if (importId !== undefined && (typeof importId !== 'string' || !REQUEST_ID.test(importId))) {
      body.resume();
      return sendRefusal(
        reply,
        refusal(400, 'invalid', 'X-Import-Id must be 1-128 characters of [A-Za-z0-9._:-]', 'X-Import-Id'),
      );
    }
    const label = req.query.label && REQUEST_ID.test(req.query.label) ? req.query.label : 'http-import';
    const summary = await runImport(o.deps, body, {
      importKey: typeof importId === 'string' ? `http:${importId}` : null,
      format,
      label,
      ...(o.chunkSize ? { chunkSize: o.chunkSize } : {}),
    });
    if (summary.deadLetters > 0) o.onDeadLetters(summary.deadLetters);
    return reply.status(200).type('application/json').send(summary);
  });
  return Promise.resolve();
};
