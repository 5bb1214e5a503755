import { randomUUID } from 'node:crypto';
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
import { HubError, toHubError } from '../../libs/errors/index.js';
import type { Logger } from '../../libs/telemetry/logger.js';

/**
 * Authentication, authorization, unknown-parameter refusal and the audit
 * record, as hooks around every protected route:
 *
 *   onRequest      verify the bearer token (remember the outcome, do not answer yet,
 *                  so that the rate limiter can key on the verified client)
 *   preValidation  401 without a valid token; 400 for query parameters the route does not declare
 *   preHandler     decide() from the validated request; 401/403 when denied
 *   onSend         publish an AuditEvent, allowed or denied, and wait for the broker's ack;
 *                  if the audit cannot be written the answer becomes 503 (fail closed)
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
  }
}

export interface SecurityOptions {
  verifier: TokenVerifier;
  audit: AuditSink;
  observer: string;
  logger: Logger;
  onAudit?(outcome: string): void;
  onAuditFailure?(): void;
}

function bearer(req: FastifyRequest): string | null {
  const h = req.headers.authorization;
  if (!h) return null;
  const m = /^Bearer\s+([A-Za-z0-9\-_.~+/]+=*)$/i.exec(h);
  return m ? m[1]! : '';
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

export function installSecurity(app: FastifyInstance, opts: SecurityOptions): void {
  const log = opts.logger.child({ component: 'security' });
  app.decorateRequest('principal', null);
  app.decorateRequest('authProblem', null);
  app.decorateRequest('decision', null);
  app.decorateRequest('auditPatient', null);
  app.decorateRequest('denyReason', null);

  app.addHook('onRequest', async (req) => {
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
      req.principal = await opts.verifier(token);
    } catch (err) {
      req.authProblem = toHubError(err, 'HUB_UNAUTHENTICATED');
      if (req.authProblem.code !== 'HUB_UNAUTHENTICATED') {
        // The JWKS endpoint down is our problem, not the client's.
        throw req.authProblem;
      }
    }
  });

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
  app.addHook('preValidation', step(precheck));
  app.addHook('preHandler', step(authorize));

  app.addHook('onSend', async (req: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const sec = req.routeOptions.config.security;
    if (!sec) return payload;
    // PHI must not be kept by browsers or shared caches.
    reply.header('cache-control', 'no-store');
    reply.header('x-content-type-options', 'nosniff');
    let patient = req.auditPatient;
    if (patient === null && sec.patientOf) {
      try {
        patient = sec.patientOf(req);
      } catch {
        patient = null;
      }
    }
    const event = buildAuditEvent({
      id: randomUUID(),
      recorded: Date.now(),
      interaction: sec.interaction,
      route: `${req.method} ${req.routeOptions.url ?? ''}`,
      resourceType: sec.resourceType,
      status: reply.statusCode,
      patientId: sec.namesPatient === false ? null : patient,
      who: req.principal
        ? { subject: req.principal.subject, clientId: req.principal.clientId, scopes: req.principal.scopes }
        : null,
      denyReason: req.denyReason,
      sourceAddress: req.ip,
      observer: opts.observer,
    });
    try {
      await opts.audit.record(event);
      opts.onAudit?.(event.outcome ?? '');
      return payload;
    } catch (err) {
      opts.onAuditFailure?.();
      log.error({ code: toHubError(err).code }, 'audit record not written, refusing the answer');
      const message = 'audit unavailable, try again';
      reply.code(503);
      if (req.url.startsWith('/fhir/')) {
        reply.type('application/fhir+json; charset=utf-8');
        return JSON.stringify({
          resourceType: 'OperationOutcome',
          issue: [{ severity: 'fatal', code: 'transient', diagnostics: message }],
        });
      }
      reply.type('application/json; charset=utf-8');
      return JSON.stringify({ code: 'HUB_KAFKA_UNAVAILABLE', message, retriable: true });
    }
  });
}
