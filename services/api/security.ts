import { randomUUID } from 'node:crypto';
import type { AuditEvent } from '@medplum/fhirtypes';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { buildAuditEvent, type AuditInput } from '../../libs/audit/event.js';
import type { AuditSink } from '../../libs/audit/topic.js';
import type { TokenVerifier } from '../../libs/auth/jwt.js';
import {
  decide,
  denyStatus,
  type AccessRequest,
  type Decision,
  type Principal,
} from '../../libs/auth/scopes.js';
import { HubError, httpStatusOf, publicMessage, toHubError } from '../../libs/errors/index.js';
import { toOperationOutcome } from '../../libs/fhir/outcome.js';
import { FHIR_JSON } from '../../libs/http/errors.js';
import type { Logger } from '../../libs/telemetry/logger.js';

/**
 * Authentication, authorization, unknown-parameter refusal and the audit
 * record, as hooks around every protected route:
 *
 *   onRequest      400 for a control character in any path parameter or query string
 *                  (every route, first, before anything else looks at the input);
 *                  verify the bearer token (remember the outcome, do not answer yet,
 *                  so that the rate limiter can key on the verified client)
 *   preValidation  400 for a control character in a form body
 *   preValidation  401 without a valid token; 400 for query parameters the route does not declare
 *   preHandler     decide() from the validated request; 401/403 when denied
 *   onSend         publish an AuditEvent, allowed or denied, and wait for the broker's ack;
 *                  if the audit cannot be built or written the answer becomes 503 (fail closed)
 *
 * The hooks are added to the root instance, not to a route plugin, so the
 * routes of every plugin run under them: a route with `config.security` is
 * audited whatever its plugin does, and whatever fails before or inside it.
 */
export interface RouteSecurity {
  /** What the request asks for, from its validated params and query. */
  access(req: FastifyRequest): AccessRequest;
  /** The patient named by the request, read raw, for the audit of requests that fail before access(). */
  patientOf?(req: FastifyRequest): string | null;
  interaction: AuditInput['interaction'];
  resourceType: string | null;
  /** False for routes serving aggregates or logs: still audited, but they name no patient. */
  namesPatient?: boolean;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    security?: RouteSecurity;
  }
  interface FastifyRequest {
    principal: Principal | null;
    authProblem: HubError | null;
    decision: Decision | null;
    auditPatient: string | null;
    denyReason: string | null;
    /** Refused at the edge for a control character: audited as denied, with nothing taken from the input. */
    inputRejected: boolean;
  }
}

export interface SecurityOptions {
  verifier: TokenVerifier;
  /** Only `record` is used: one AuditEvent per answer. */
  audit: Pick<AuditSink, 'record'>;
  observer: string;
  logger: Logger;
  onAudit?(outcome: string): void;
  onAuditFailure?(): void;
}

function bearer(req: FastifyRequest): string | null {
  const h = req.headers.authorization;
  if (!h) return null;
  // '' for an Authorization header that is not a well-formed bearer token.
  return /^Bearer\s+([A-Za-z0-9\-_.~+/]+=*)$/i.exec(h)?.[1] ?? '';
}

/** Parameters a route does not declare, in its query string or form body (names only). */
function undeclaredParams(req: FastifyRequest): string[] {
  const schema = req.routeOptions.schema as
    { querystring?: { properties?: object }; body?: { properties?: object } } | undefined;
  const out: string[] = [];
  const check = (given: unknown, declared: object | undefined) => {
    if (typeof given !== 'object' || given === null) return;
    const allowed = new Set(Object.keys(declared ?? {}));
    for (const k of Object.keys(given)) if (!allowed.has(k)) out.push(k);
  };
  check(req.query, schema?.querystring?.properties);
  if (req.method === 'POST') check(req.body, schema?.body?.properties);
  return out;
}

/** U+0000–U+001F and U+007F: never part of an id or a search value (a NUL stalls Postgres writers). */
// eslint-disable-next-line no-control-regex
const CONTROL_CHAR = /[\u0000-\u001f\u007f]/;

/** A parameter name fit for a diagnostic: bounded, only harmless characters. */
const safeName = (k: string) => k.slice(0, 40).replace(/[^\w.:$*-]/g, '?');

/** The first name or value in `given` (params, query or form) holding a control character, or null. */
function controlCharIn(given: unknown): string | null {
  if (typeof given !== 'object' || given === null) return null;
  for (const [k, v] of Object.entries(given as Record<string, unknown>)) {
    const values = Array.isArray(v) ? (v as unknown[]) : [v];
    if (CONTROL_CHAR.test(k) || values.some((x) => typeof x === 'string' && CONTROL_CHAR.test(x))) {
      return safeName(k);
    }
  }
  return null;
}

/**
 * Refuses a control character in a path parameter, query parameter or form
 * field with 400, naming the parameter and never quoting the value. The
 * request is still audited as denied (`invalid-input`), but without a patient
 * taken from its input: a NUL in the audit trail would stall its projector.
 */
function rejectControlChars(where: 'url' | 'body') {
  return (req: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void): void => {
    const found =
      where === 'url'
        ? [
            ['path parameter', controlCharIn(req.params)] as const,
            ['query parameter', controlCharIn(req.query)] as const,
          ]
        : [['form parameter', req.method === 'POST' ? controlCharIn(req.body) : null] as const];
    const hit = found.find(([, name]) => name !== null);
    if (!hit) return done();
    req.inputRejected = true;
    req.denyReason = 'invalid-input';
    done(new HubError('HUB_INPUT_INVALID', `control character in ${hit[0]} '${hit[1]}'`));
  };
}

/** Verifies the bearer token; a bad one is remembered, and refused after the rate limiter has counted it. */
function authenticate(verifier: TokenVerifier) {
  return async (req: FastifyRequest): Promise<void> => {
    if (!req.routeOptions.config.security) return;
    const token = bearer(req);
    if (token === null) {
      req.authProblem = new HubError('HUB_UNAUTHENTICATED', 'a bearer token is required');
      return;
    }
    if (token === '') {
      req.authProblem = new HubError('HUB_UNAUTHENTICATED', 'malformed Authorization header');
      return;
    }
    try {
      req.principal = await verifier(token);
    } catch (err) {
      req.authProblem = toHubError(err, 'HUB_UNAUTHENTICATED');
      if (req.authProblem.code !== 'HUB_UNAUTHENTICATED') {
        // The JWKS endpoint down is our problem, not the client's.
        throw req.authProblem;
      }
    }
  };
}

/** 401 without a valid token; 400 for query parameters the route does not declare. */
function precheck(req: FastifyRequest): void {
  if (req.authProblem) {
    req.denyReason = 'unauthenticated';
    throw req.authProblem;
  }
  const unknown = undeclaredParams(req);
  if (unknown.length > 0) {
    // Names only (bounded), never values.
    const names = unknown.slice(0, 5).map((k) => k.slice(0, 40).replace(/[^\w.:-]/g, '?'));
    throw new HubError('HUB_INPUT_INVALID', `unknown query parameter(s): ${names.join(', ')}`);
  }
}

function authorize(req: FastifyRequest, sec: RouteSecurity): void {
  const access = sec.access(req);
  if ('patientId' in access) req.auditPatient = access.patientId;
  const d = decide(req.principal, access);
  req.decision = d;
  if (!d.allow) {
    req.denyReason = d.reason;
    const status = denyStatus(d.reason);
    throw new HubError(
      status === 401 ? 'HUB_UNAUTHENTICATED' : status === 400 ? 'HUB_INPUT_INVALID' : 'HUB_FORBIDDEN',
      status === 400 ? 'a patient parameter is required' : `access denied (${d.reason})`,
    );
  }
  if (d.patientId) req.auditPatient = d.patientId;
}

/** A hook step that runs only on protected routes; whatever it throws becomes a HubError answer. */
const step =
  (fn: (req: FastifyRequest, sec: RouteSecurity) => void) =>
  (req: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void) => {
    const sec = req.routeOptions.config.security;
    if (!sec) return done();
    try {
      fn(req, sec);
      done();
    } catch (err) {
      done(toHubError(err));
    }
  };

/** The AuditEvent of a request as answered: who, which patient, what route, what status, why refused. */
function auditEventOf(req: FastifyRequest, status: number, sec: RouteSecurity, observer: string): AuditEvent {
  let patient = req.inputRejected ? null : req.auditPatient;
  if (patient === null && sec.patientOf && !req.inputRejected) {
    try {
      patient = sec.patientOf(req);
    } catch {
      patient = null;
    }
  }
  return buildAuditEvent({
    id: randomUUID(),
    recorded: Date.now(),
    interaction: sec.interaction,
    route: `${req.method} ${req.routeOptions.url ?? ''}`,
    resourceType: sec.resourceType,
    status,
    patientId: sec.namesPatient === false ? null : patient,
    who: req.principal
      ? { subject: req.principal.subject, clientId: req.principal.clientId, scopes: req.principal.scopes }
      : null,
    denyReason: req.denyReason,
    sourceAddress: req.ip,
    observer,
  });
}

/** The answer that replaces one whose audit record was not written: 503, in the route's error dialect. */
function unauditedAnswer(req: FastifyRequest, reply: FastifyReply): string {
  const err = new HubError('HUB_KAFKA_UNAVAILABLE', 'audit unavailable, try again');
  reply.code(httpStatusOf(err));
  if (req.url.startsWith('/fhir/')) {
    reply.type(FHIR_JSON);
    return JSON.stringify(toOperationOutcome(err).outcome);
  }
  reply.type('application/json; charset=utf-8');
  return JSON.stringify({ code: err.code, message: publicMessage(err), retriable: err.retriable });
}

/** Records every protected answer before it leaves; no record, no answer. */
function auditAnswers(opts: SecurityOptions) {
  const log = opts.logger.child({ component: 'security' });
  return async (req: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<unknown> => {
    const sec = req.routeOptions.config.security;
    if (!sec) return payload;
    // PHI must not be kept by browsers or shared caches.
    reply.header('cache-control', 'no-store');
    reply.header('x-content-type-options', 'nosniff');
    try {
      const event = auditEventOf(req, reply.statusCode, sec, opts.observer);
      await opts.audit.record(event);
      opts.onAudit?.(event.outcome ?? '');
      return payload;
    } catch (err) {
      opts.onAuditFailure?.();
      log.error({ code: toHubError(err).code }, 'audit record not written, refusing the answer');
      return unauditedAnswer(req, reply);
    }
  };
}

export function installSecurity(app: FastifyInstance, opts: SecurityOptions): void {
  app.decorateRequest('principal', null);
  app.decorateRequest('authProblem', null);
  app.decorateRequest('decision', null);
  app.decorateRequest('auditPatient', null);
  app.decorateRequest('denyReason', null);
  app.decorateRequest('inputRejected', false);
  // Before the token check, the rate limiter, the audit and the route: none of them sees a control character.
  app.addHook('onRequest', rejectControlChars('url'));
  app.addHook('onRequest', authenticate(opts.verifier));
  app.addHook('preValidation', rejectControlChars('body'));
  app.addHook('preValidation', step(precheck));
  app.addHook('preHandler', step(authorize));
  app.addHook('onSend', auditAnswers(opts));
}
