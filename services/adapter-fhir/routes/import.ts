import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import {
  DEFAULT_IMPORT_MAX_BYTES,
  runImport,
  type ImportDeps,
  type ImportSummary,
} from '../../../libs/fhir/import/import.js';
import { JSON_TYPES, REQUEST_ID, mediaType, refusal, sendRefusal, setFhirErrorHandler } from './common.js';

/**
 * POST /$import: NDJSON or a Bundle document, streamed, resumable by
 * X-Import-Id. Each line (or entry) is limited as it streams (16 MiB: a longer
 * one is dead-lettered as too large, the rest goes on), and the body as a
 * whole by `maxImportBytes`: a Content-Length over it is refused before
 * anything is read; a body that grows past it is cut there with 413, what
 * was committed before staying committed (and checkpointed under X-Import-Id).
 */
export interface ImportRoutesOptions {
  deps: ImportDeps;
  chunkSize?: number | undefined;
  /** Called with the number of lines an import dead-lettered (for hub_dead_letters_total). */
  onDeadLetters(n: number): void;
  /** For the body-limit answer of the shared error handler (the other routes' limit). */
  maxBodyBytes: number;
  /** The most bytes one $import body may have (FHIR_IMPORT_MAX_BYTES; default 1 GiB). */
  maxImportBytes?: number | undefined;
  /** The source system a request imports as (the calling client's, security.ts); else deps.sourceSystem. */
  sourceSystemOf?(req: FastifyRequest): string;
}

const NDJSON_TYPES = new Set(['application/fhir+ndjson', 'application/x-ndjson', 'application/ndjson']);

/** 413 for a body over the import limit; the connection closes, so the rest of the body is not read. */
function tooLarge(reply: FastifyReply, max: number, summary: ImportSummary | null): FastifyReply {
  const done = summary
    ? `; lines 1-${summary.lastLine} were imported (${summary.events} events), nothing after them`
    : '; nothing was read';
  void reply.header('connection', 'close');
  return sendRefusal(
    reply,
    refusal(
      413,
      'too-costly',
      `the body exceeds the import limit of ${max} bytes${done}: split the input (X-Import-Id resumes a file)`,
    ),
  );
}

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
    const maxBytes = o.maxImportBytes ?? DEFAULT_IMPORT_MAX_BYTES;
    // Refused before a byte is read (the body is not consumed: the connection closes).
    if (Number(req.headers['content-length'] ?? 0) > maxBytes) return tooLarge(reply, maxBytes, null);
    const label = req.query.label && REQUEST_ID.test(req.query.label) ? req.query.label : 'http-import';
    const deps = o.sourceSystemOf ? { ...o.deps, sourceSystem: o.sourceSystemOf(req) } : o.deps;
    const summary = await runImport(deps, body, {
      importKey: typeof importId === 'string' ? `http:${importId}` : null,
      format,
      label,
      maxBytes,
      ...(o.chunkSize ? { chunkSize: o.chunkSize } : {}),
    });
    if (summary.deadLetters > 0) o.onDeadLetters(summary.deadLetters);
    if (summary.bodyLimitExceeded) return tooLarge(reply, maxBytes, summary);
    return reply.status(200).type('application/json').send(summary);
  });
  return Promise.resolve();
};
