import type { FastifyReply, FastifyRequest } from 'fastify';
import { frameworkClientError, httpStatusOf, publicMessage, toHubError } from '../errors/index.js';
import { toOperationOutcome } from '../fhir/outcome.js';

/**
 * The one mapping from anything a route throws to an HTTP answer, in two
 * dialects: JSON for the hub's own APIs, OperationOutcome for FHIR routes.
 * Both take status, issue type and the text a caller may see from the code's
 * edges (libs/errors), and log only 5xx, by code: a 4xx is the caller's
 * business, and a message may quote the data (PHI) or a driver.
 *
 * Usable as `app.setErrorHandler(jsonErrorHandler)` and, inside an
 * encapsulated route plugin, `scope.setErrorHandler(fhirErrorHandler)`.
 */
export type HttpErrorHandler = (err: unknown, req: FastifyRequest, reply: FastifyReply) => FastifyReply;

export const FHIR_JSON = 'application/fhir+json; charset=utf-8';

function logServerError(req: FastifyRequest, err: unknown, msg: string): void {
  const h = toHubError(err);
  req.log.error({ code: h.code, retriable: h.retriable }, msg);
}

/** `{ code, message, retriable }`; a framework 4xx answers `{ code: 'HUB_INPUT_INVALID', message }`. */
export const jsonErrorHandler: HttpErrorHandler = (err, req, reply) => {
  const framework = frameworkClientError(err);
  if (framework) {
    return reply.status(framework.statusCode).send({ code: 'HUB_INPUT_INVALID', message: framework.message });
  }
  const h = toHubError(err);
  const status = httpStatusOf(h);
  if (status >= 500) logServerError(req, h, 'request failed');
  return reply.status(status).send({ code: h.code, message: publicMessage(h), retriable: h.retriable });
};

/** An OperationOutcome (application/fhir+json) with the status of toOperationOutcome. */
export const fhirErrorHandler: HttpErrorHandler = (err, req, reply) => {
  const { status, outcome } = toOperationOutcome(err);
  if (status >= 500) logServerError(req, err, 'fhir request failed');
  return reply.status(status).type(FHIR_JSON).send(outcome);
};
