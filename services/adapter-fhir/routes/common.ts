import type { OperationOutcome } from '@medplum/fhirtypes';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { systemAllows } from '../../../libs/auth/system-scopes.js';
import type { Planned } from '../../../libs/fhir/import/ingest.js';
import { errorIssue, outcome, type FhirIssue } from '../../../libs/fhir/outcome.js';
import { invalid, parseJsonBody, type Parsed } from '../../../libs/fhir/validate.js';
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

/**
 * Links in answers (Location, Bundle fullUrl): under the configured public base URL
 * (FHIR_BASE_URL), else relative (`/Patient/p1`). Never from the Host header, which
 * the client chooses: a link built from it sends the next request wherever it says.
 */
export interface Links {
  resource(p: { type: string; id: string }): string;
  location(p: { type: string; id: string; version: number }): string;
}

function links(baseUrl: string | undefined): Links {
  const base = baseUrl ?? '';
  return {
    resource: (p) => `${base}/${p.type}/${p.id}`,
    location: (p) => `${base}/${p.type}/${p.id}/_history/${p.version}`,
  };
}

/**
 * The client a request comes from, as the adapter's security hooks (security.ts)
 * established it from its bearer token and the clients file.
 */
export interface Caller {
  clientId: string;
  scopes: readonly string[];
  /** The source system this request writes as: its events' source.system and the owner of what it stores. */
  sourceSystem: string;
  /** The source systems whose resources it may read back. */
  systems: readonly string[];
  /** Names a patient (enterprise key) whose data the request touched, for its AuditEvent. */
  touched(patientKey: string): void;
  /** Why the request (or an entry of it) was refused, for its AuditEvent: a code, never data. */
  refused(reason: string): void;
}

export type CallerOf = (req: FastifyRequest) => Caller;

/**
 * A planned write the token's scopes allow as what it turned out to be (a create needs
 * `c`, an update `u` on its type), else refused with 403 before anything is committed.
 */
export function permitted(caller: Caller, p: Planned): Planned {
  if (isRefused(p)) {
    if (p.status === 403) caller.refused(p.reason);
    return p;
  }
  if (p.kind !== 'write') return p;
  const kind = p.created ? 'create' : 'update';
  if (!systemAllows(caller.scopes, { kind, resourceType: p.type })) {
    caller.refused('insufficient-scope');
    return invalid('insufficient-scope', 403, [
      errorIssue('forbidden', `the token does not allow ${kind} of ${p.type}`),
    ]);
  }
  caller.touched(p.row.patientKey);
  return p;
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
