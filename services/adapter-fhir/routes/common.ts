import type { OperationOutcome } from '@medplum/fhirtypes';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errorIssue, outcome, type FhirIssue } from '../../../libs/fhir/outcome.js';
import { parseJsonBody, type Parsed } from '../../../libs/fhir/validate.js';
import { FHIR_JSON, fhirErrorHandler } from '../../../libs/http/errors.js';

// What the route plugins of this adapter share: content types, refusals, request ids, links, errors.

export const JSON_TYPES = new Set(['application/fhir+json', 'application/json']);
export const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function mediaType(req: FastifyRequest): string {
  // Without parameters (charset, fhirVersion).
  return (req.headers['content-type'] ?? '').replace(/;.*/s, '').trim().toLowerCase();
}

export function sendOutcome(reply: FastifyReply, status: number, oo: OperationOutcome): FastifyReply {
  return reply.status(status).type(FHIR_JSON).send(oo);
}

/** A request refused before anything is written: its status and the issues of its OperationOutcome. */
export interface Refusal {
  ok: false;
  status: number;
  issues: FhirIssue[];
}

export function refusal(status: number, ...issue: Parameters<typeof errorIssue>): Refusal {
  return { ok: false, status, issues: [errorIssue(...issue)] };
}

/** Whether a value is a refusal (an Invalid from validation or planning, or a Refusal). */
export function isRefused<T>(v: T): v is Extract<T, { ok: false }> {
  return typeof v === 'object' && v !== null && 'ok' in v;
}

export function sendRefusal(reply: FastifyReply, r: Refusal): FastifyReply {
  return sendOutcome(reply, r.status, outcome(r.issues));
}

/** X-Request-Id: null when absent, a Refusal when malformed (it becomes part of event ids). */
export function requestIdOf(req: FastifyRequest): string | null | Refusal {
  const h = req.headers['x-request-id'];
  if (h === undefined) return null;
  if (typeof h !== 'string' || !REQUEST_ID.test(h)) {
    return refusal(
      400,
      'invalid',
      'X-Request-Id must be 1-128 characters of [A-Za-z0-9._:-]',
      'X-Request-Id',
    );
  }
  return h;
}

export const unsupportedMediaType = (): OperationOutcome =>
  outcome([errorIssue('not-supported', 'use application/fhir+json or application/json')]);

/**
 * The scope of the resource and bundle routes: JSON bodies up to maxBodyBytes, as bytes,
 * parsed strictly by jsonBody (fastify would decode invalid UTF-8 to U+FFFD; parseJsonBody
 * refuses it); other content types 415; errors as OperationOutcomes. Returns the links to answer with.
 */
export function fhirJsonScope(
  scope: FastifyInstance,
  o: { maxBodyBytes: number; baseUrl?: string | undefined },
): Links {
  setFhirErrorHandler(scope, o.maxBodyBytes);
  scope.removeAllContentTypeParsers();
  scope.addContentTypeParser(
    [...JSON_TYPES],
    { parseAs: 'buffer', bodyLimit: o.maxBodyBytes },
    (_req, body, next) => next(null, body),
  );
  scope.addHook('onRequest', (req, reply, next) => {
    if ((req.method === 'POST' || req.method === 'PUT') && !JSON_TYPES.has(mediaType(req))) {
      void sendOutcome(reply, 415, unsupportedMediaType());
      return;
    }
    next();
  });
  return links(o.baseUrl);
}

export function jsonBody(req: FastifyRequest): Parsed<unknown> {
  return parseJsonBody(req.body instanceof Uint8Array ? req.body : '');
}

/** Absolute links: the configured base URL, else the request's own. */
export interface Links {
  base(req: FastifyRequest): string;
  location(req: FastifyRequest, p: { type: string; id: string; version: number }): string;
}

function links(baseUrl: string | undefined): Links {
  const base = (req: FastifyRequest) => baseUrl ?? `${req.protocol}://${req.host}`;
  return {
    base,
    location: (req, p) => `${base(req)}/${p.type}/${p.id}/_history/${p.version}`,
  };
}

/**
 * The shared FHIR error answer (libs/http/errors), except for the two refusals of a body
 * fastify makes before a route runs: their OperationOutcome says what to send instead.
 */
export function setFhirErrorHandler(scope: FastifyInstance, maxBodyBytes: number): void {
  scope.setErrorHandler((err: FastifyError, req, reply) => {
    const code = err.code;
    if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return sendRefusal(reply, refusal(413, 'too-costly', `request body exceeds ${maxBodyBytes} bytes`));
    }
    if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return sendOutcome(reply, 415, unsupportedMediaType());
    return fhirErrorHandler(err, req, reply);
  });
}
