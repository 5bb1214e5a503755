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
import { bearerToken } from '../../libs/http/bearer.js';
import { FHIR_JSON, fhirErrorHandler, jsonErrorHandler } from '../../libs/http/errors.js';
import { CONTROL_CHAR, controlCharIn } from '../../libs/http/input.js';
import type { Logger } from '../../libs/telemetry/logger.js';
import { challengeOf } from './challenge.js';
import { isStorablePatientId, type PatientContexts } from './patient-context.js';

/**
 * Authentication, authorization, unknown-parameter refusal and the audit
 * record, as hooks around every protected route:
 *
 *   onRequest      400 for a control character or lone surrogate in any path parameter or
 *                  query string (every route, first, before anything else looks at the input);
 *                  verify the bearer token (remember the outcome, do not answer yet,
 *                  so that the rate limiter can key on the verified client)
 *   preValidation  400 for a control character or lone surrogate in a body (form or JSON, at any depth)
 *   preValidation  401 without a valid token; 400 for query parameters the route does not declare
 *   preValidation  401 for a token whose patient context names no patient of the hub (or a merged one)
 *   preHandler     decide() from the validated request; 401/403 when denied
 *   onSend         WWW-Authenticate on 401/403 (RFC 6750 §3);
 *                  publish an AuditEvent, allowed or denied, and wait for the broker's ack;
 *                  if the audit cannot be built or written the answer becomes 503 (fail closed)
 *
 * Requests no route matches under a PHI area (/fhir, /patients, /billing, ...)
 * are audited by the not-found handler (unroutedHandler), naming the area only.
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
    /** What the route asked the token for (decide()'s input), for the 403 challenge's scope. */
    accessRequest: AccessRequest | null;
    /** Why a presented token was refused, a fixed text for the 401 challenge. */
    tokenProblem: string | null;
    /**
     * Further patients whose data the answer shows or changes (set by the route: the identity
     * worklist shows pairs of records): each is named by an AuditEvent of its own, so that
     * every one of them finds the access in their own audit trail.
     */
    auditOthers: string[] | null;
  }
}

export interface SecurityOptions {
  verifier: TokenVerifier;
  /** Only `record` is used: one AuditEvent per answer. */
  audit: Pick<AuditSink, 'record'>;
  observer: string;
  logger: Logger;
  /** Checks a token's patient claim against the read model; without it, any claim is taken as is. */
  patientContexts?: PatientContexts;
  onAudit?(outcome: string): void;
  onAuditFailure?(): void;
}

/** Whether the request carried a bearer token at all, well formed or not (another scheme is none). */
const bearerSent = (req: FastifyRequest) => /^Bearer(\s|$)/i.test(req.headers.authorization ?? '');

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

const bodyKind = (req: FastifyRequest) =>
  /^application\/x-www-form-urlencoded/i.test(req.headers['content-type'] ?? '')
    ? 'form parameter'
    : 'body parameter';

/** A body that is one string (a text or JSON string body) is checked as a whole; bytes are not text. */
function controlCharInBody(body: unknown): string | null {
  if (typeof body === 'string') return CONTROL_CHAR.test(body) ? '(body)' : null;
  if (Buffer.isBuffer(body)) return null;
  return controlCharIn(body);
}

/**
 * Refuses a control character in a path parameter, query parameter or body
 * field (form or JSON) with 400, naming the parameter and never quoting the value. The
 * request is still audited as denied (`invalid-input`), but without a patient
 * taken from its input: a NUL in the audit trail would stall its projector.
 */
function rejectControlChars(where: 'url' | 'body') {
  return (req: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void): void => {
    // No route: the not-found handler answers 404 (audited under a PHI area), from nothing of the input.
    if (req.routeOptions.url === undefined) return done();
    const found =
      where === 'url'
        ? [
            ['path parameter', controlCharIn(req.params)] as const,
            ['query parameter', controlCharIn(req.query)] as const,
          ]
        : [[bodyKind(req), controlCharInBody(req.body)] as const];
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
    const token = bearerToken(req);
    if (token === null) {
      req.authProblem = new HubError('HUB_UNAUTHENTICATED', 'a bearer token is required');
      return;
    }
    if (token === '') {
      req.authProblem = new HubError('HUB_UNAUTHENTICATED', 'malformed Authorization header');
      req.tokenProblem = 'malformed bearer token';
      return;
    }
    try {
      req.principal = await verifier(token);
    } catch (err) {
      req.authProblem = toHubError(err, 'HUB_UNAUTHENTICATED');
      req.tokenProblem = 'the token is expired, not yet valid, or not issued for this API';
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

/**
 * 401 for a token whose patient claim names no patient of the hub, or one
 * merged into another (patient-context.ts says why). A claim that could not
 * even be stored is refused without a lookup, and not named in the audit.
 */
function confirmPatientContext(contexts: PatientContexts) {
  return async (req: FastifyRequest): Promise<void> => {
    const claimed = req.principal?.patient;
    if (!req.routeOptions.config.security || !claimed) return;
    const state = isStorablePatientId(claimed) ? await contexts.state(claimed) : 'unknown';
    if (state === 'active') return;
    req.denyReason = state === 'merged' ? 'patient-context-merged' : 'patient-context-unknown';
    req.tokenProblem =
      state === 'merged'
        ? 'the patient context was merged into another patient: launch again'
        : 'the patient context names no patient of this hub';
    throw new HubError('HUB_UNAUTHENTICATED', `invalid patient context (${req.denyReason})`);
  };
}

function authorize(req: FastifyRequest, sec: RouteSecurity): void {
  const access = sec.access(req);
  req.accessRequest = access;
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

/** The AuditEvents of a request as answered: who, which patient, what route, what status, why refused. */
function auditEventsOf(
  req: FastifyRequest,
  status: number,
  sec: RouteSecurity,
  observer: string,
): AuditEvent[] {
  let patient = req.inputRejected ? null : req.auditPatient;
  if (patient === null && sec.patientOf && !req.inputRejected) {
    try {
      patient = sec.patientOf(req);
    } catch {
      patient = null;
    }
  }
  const main = auditEventFor(req, status, sec, observer, patient);
  if (sec.namesPatient === false || req.inputRejected || !req.auditOthers) return [main];
  const others = [...new Set(req.auditOthers)].filter((p) => p !== patient);
  return [main, ...others.map((p) => auditEventFor(req, status, sec, observer, p))];
}

function auditEventFor(
  req: FastifyRequest,
  status: number,
  sec: RouteSecurity,
  observer: string,
  patient: string | null,
): AuditEvent {
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
  reply.removeHeader('www-authenticate');
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
    const challenge = challengeOf({
      status: reply.statusCode,
      bearerSent: bearerSent(req),
      access: req.accessRequest,
      ...(req.tokenProblem ? { description: req.tokenProblem } : {}),
    });
    if (challenge) reply.header('www-authenticate', challenge);
    try {
      const events = auditEventsOf(req, reply.statusCode, sec, opts.observer);
      await Promise.all(events.map((e) => opts.audit.record(e)));
      for (const e of events) opts.onAudit?.(e.outcome ?? '');
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
  app.decorateRequest('accessRequest', null);
  app.decorateRequest('tokenProblem', null);
  app.decorateRequest('auditOthers', null);
  // Before the token check, the rate limiter, the audit and the route: none of them sees a control character.
  app.addHook('onRequest', rejectControlChars('url'));
  app.addHook('onRequest', authenticate(opts.verifier));
  app.addHook('preValidation', rejectControlChars('body'));
  app.addHook('preValidation', step(precheck));
  if (opts.patientContexts) app.addHook('preValidation', confirmPatientContext(opts.patientContexts));
  app.addHook('preHandler', step(authorize));
  app.addHook('onSend', auditAnswers(opts));
}

/**
 * API areas that serve or name PHI: a request no route matches under one is still audited.
 * `subscriptions`: a subscription's criteria may name patients, and it decides where their data goes.
 * `identity`: the master patient index's worklist shows records side by side.
 */
export const PHI_AREAS = [
  'fhir',
  'patients',
  'billing',
  'admin',
  'analytics',
  'subscriptions',
  'identity',
] as const;
export type PhiArea = (typeof PHI_AREAS)[number];

/** The PHI area a request path is under (first segment, decoded, any case), or null. */
export function phiAreaOf(url: string): PhiArea | null {
  const path = url.split('?')[0] ?? '';
  let decoded = path;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    // Not percent-decodable: look at it as sent.
  }
  const first = decoded.split('/').find((seg) => seg !== '' && seg !== '.');
  return PHI_AREAS.find((a) => a === first?.toLowerCase()) ?? null;
}

/** The principal of a request's bearer token, or null: an unrouted request is audited with whoever it was. */
async function principalQuietly(verifier: TokenVerifier, req: FastifyRequest): Promise<Principal | null> {
  const token = bearerToken(req);
  if (!token) return null;
  try {
    return await verifier(token);
  } catch {
    return null;
  }
}

/**
 * Answers a request no route took, and under a PHI area records it first
 * (denied: `unrouted`, or `invalid-input` for a URL the router could not
 * decode), naming the method and the area (`GET /fhir/*`), never the path: it
 * may carry an id, or anything a prober sends. No record, no answer, as for routes.
 */
function unmatchedAnswer(opts: SecurityOptions) {
  const log = opts.logger.child({ component: 'security' });
  return async (
    req: FastifyRequest,
    reply: FastifyReply,
    err: HubError,
    reason: string,
  ): Promise<FastifyReply> => {
    const area = phiAreaOf(req.url);
    const answer = area === 'fhir' ? fhirErrorHandler : jsonErrorHandler;
    if (area === null) return answer(err, req, reply);
    reply.header('cache-control', 'no-store');
    const principal = await principalQuietly(opts.verifier, req);
    const method = /^[A-Z]{1,10}$/.test(req.method) ? req.method : 'OTHER';
    try {
      const event = buildAuditEvent({
        id: randomUUID(),
        recorded: Date.now(),
        interaction: method === 'GET' || method === 'HEAD' ? 'read' : 'operation',
        route: `${method} /${area}/*`,
        resourceType: null,
        status: httpStatusOf(err),
        patientId: null,
        who: principal
          ? { subject: principal.subject, clientId: principal.clientId, scopes: principal.scopes }
          : null,
        denyReason: reason,
        sourceAddress: req.ip,
        observer: opts.observer,
      });
      await opts.audit.record(event);
      opts.onAudit?.(event.outcome ?? '');
    } catch (e) {
      opts.onAuditFailure?.();
      log.error({ code: toHubError(e).code }, 'audit record not written, refusing the answer');
      return reply.send(unauditedAnswer(req, reply));
    }
    return answer(err, req, reply);
  };
}

/** The not-found handler: 404 (an OperationOutcome under /fhir, JSON elsewhere), audited under a PHI area. */
export function unroutedHandler(opts: SecurityOptions) {
  const answer = unmatchedAnswer(opts);
  return (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> =>
    answer(
      req,
      reply,
      new HubError('HUB_NOT_FOUND', phiAreaOf(req.url) === 'fhir' ? 'unknown FHIR route' : 'no such route'),
      'unrouted',
    );
}

/** The router's refusals (fastify frameworkErrors: an undecodable URL, an over-long parameter): 400, audited likewise. */
export function badUrlHandler(opts: SecurityOptions) {
  const answer = unmatchedAnswer(opts);
  return (err: { code?: string }, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> =>
    answer(
      req,
      reply,
      new HubError(
        'HUB_INPUT_INVALID',
        err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'a path parameter is too long' : 'the URL is not valid',
      ),
      'invalid-input',
    );
}
