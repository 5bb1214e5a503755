import { randomUUID } from 'node:crypto';
import type { AuditEvent } from '@medplum/fhirtypes';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { buildAuditEvent, type AuditInput } from '../../libs/audit/event.js';
import type { AuditSink } from '../../libs/audit/topic.js';
import type { TokenVerifier } from '../../libs/auth/jwt.js';
import type { Principal } from '../../libs/auth/scopes.js';
import { INGEST_AUDIENCE, systemAllows, systemWritesAny } from '../../libs/auth/system-scopes.js';
import { HubError, httpStatusOf, toHubError } from '../../libs/errors/index.js';
import { toOperationOutcome } from '../../libs/fhir/outcome.js';
import { isSupportedType } from '../../libs/fhir/validate.js';
import { FHIR_JSON, fhirErrorHandler } from '../../libs/http/errors.js';
import { frameworkRefusal } from '../../libs/http/index.js';
import { bearerChallenge, bearerToken } from '../../libs/http/bearer.js';
import { controlCharIn } from '../../libs/http/input.js';
import type { Logger } from '../../libs/telemetry/logger.js';
import type { FhirClients } from './clients.js';
import type { Caller } from './routes/common.js';

/**
 * The adapter as an OAuth2 resource server (SMART Backend Services): hooks on
 * the scope of the FHIR routes, so that every route under it, whatever its
 * plugin, is checked and audited.
 *
 *   onRequest  400 for a control character in a path or query parameter (before anything reads it);
 *              401 without a valid bearer token (WWW-Authenticate, RFC 6750);
 *              403 for a client not in the clients file, an X-Source-System not bound to it,
 *              or scopes that do not allow the route (`system/<Type>.c|u|r`, `system/*.cud` …);
 *              all before the body is read.
 *   route      what the token allows as what a write turned out to be (create `c`, update `u`),
 *              and whose resource it is (a source system replaces and reads only its own).
 *   onSend     one AuditEvent per patient touched (or one naming none), allowed or denied, published
 *              and acknowledged before the answer leaves; if it cannot be, the answer is 503.
 *              A write already committed then answers 503 too: its retry is a no-op (same
 *              content, same ids) that is audited, so no acknowledged write goes unaudited.
 */
export const INGEST_REALM = INGEST_AUDIENCE;

const CHALLENGE = {
  missing: bearerChallenge(INGEST_REALM),
  invalid: bearerChallenge(INGEST_REALM, { error: 'invalid_token' }),
  scope: bearerChallenge(INGEST_REALM, { error: 'insufficient_scope' }),
} as const;

export interface IngestSecurityOptions {
  verifier: TokenVerifier;
  clients: FhirClients;
  audit: Pick<AuditSink, 'recordAll'>;
  /** AuditEvent.source.observer. */
  observer: string;
  logger: Logger;
  onAuditFailure?(): void;
}

interface IngestState {
  principal: Principal | null;
  caller: Caller | null;
  patients: Set<string>;
  denyReason: string | null;
}

declare module 'fastify' {
  interface FastifyRequest {
    ingest: IngestState | null;
  }
}

/** What each route needs from the token, and how it is audited. A route not listed is refused. */
interface RouteRule {
  interaction: AuditInput['interaction'];
  allows(scopes: readonly string[], type: string): boolean;
}

const RULES: Readonly<Record<string, RouteRule>> = {
  'POST /:type': {
    interaction: 'create',
    allows: (s, t) => systemAllows(s, { kind: 'create', resourceType: t }),
  },
  // Create or update, known only once planned (the route checks which it was).
  'PUT /:type/:id': {
    interaction: 'update',
    allows: (s, t) =>
      systemAllows(s, { kind: 'update', resourceType: t }) ||
      systemAllows(s, { kind: 'create', resourceType: t }),
  },
  'GET /:type/:id': {
    interaction: 'read',
    allows: (s, t) => systemAllows(s, { kind: 'read', resourceType: t }),
  },
  'HEAD /:type/:id': {
    interaction: 'read',
    allows: (s, t) => systemAllows(s, { kind: 'read', resourceType: t }),
  },
  // Batch or transaction: each entry is checked by the route against its own type.
  'POST /': { interaction: 'batch', allows: (s) => systemWritesAny(s) },
  'POST /$import': { interaction: 'operation', allows: (s) => systemAllows(s, { kind: 'import' }) },
};

const ruleOf = (req: FastifyRequest): RouteRule | undefined =>
  RULES[`${req.method} ${req.routeOptions.url ?? ''}`];

const typeParam = (req: FastifyRequest): string => {
  const t = (req.params as { type?: unknown } | undefined)?.type;
  return typeof t === 'string' ? t : '';
};

/** Records why, sets the challenge, and throws the refusal for the route's error handler (an OperationOutcome). */
function refuse(st: IngestState, reply: FastifyReply, reason: string, err: HubError): never {
  st.denyReason = reason;
  if (err.code === 'HUB_UNAUTHENTICATED') {
    void reply.header('www-authenticate', reason === 'no-token' ? CHALLENGE.missing : CHALLENGE.invalid);
  } else if (err.code === 'HUB_FORBIDDEN') {
    void reply.header('www-authenticate', CHALLENGE.scope);
  }
  throw err;
}

async function principalOf(
  verifier: TokenVerifier,
  st: IngestState,
  req: FastifyRequest,
  reply: FastifyReply,
): Promise<Principal> {
  const token = bearerToken(req);
  if (token === null) {
    refuse(st, reply, 'no-token', new HubError('HUB_UNAUTHENTICATED', 'a bearer token is required'));
  }
  if (token === '') {
    refuse(st, reply, 'invalid-token', new HubError('HUB_UNAUTHENTICATED', 'malformed Authorization header'));
  }
  try {
    return await verifier(token);
  } catch (err) {
    const h = toHubError(err, 'HUB_UNAUTHENTICATED');
    // The identity provider unreachable is ours to answer (503), not the client's token.
    if (h.code !== 'HUB_UNAUTHENTICATED') throw h;
    refuse(st, reply, 'invalid-token', h);
  }
}

/** The caller of a request the token, the clients file and the route's rule all allow. */
function callerFor(
  o: IngestSecurityOptions,
  st: IngestState,
  principal: Principal,
  req: FastifyRequest,
  reply: FastifyReply,
): Caller {
  const forbid = (reason: string, message: string) =>
    refuse(st, reply, reason, new HubError('HUB_FORBIDDEN', message));
  const systems = o.clients.get(principal.clientId);
  if (!systems) return forbid('unknown-client', 'this client is not registered to send to the hub');
  const asked = req.headers['x-source-system'];
  const sourceSystem = asked === undefined ? systems[0] : systems.find((s) => s === asked);
  if (sourceSystem === undefined) {
    return forbid('source-not-bound', 'X-Source-System is not a source system of this client');
  }
  const rule = ruleOf(req);
  if (!rule?.allows(principal.scopes, typeParam(req))) {
    return forbid('insufficient-scope', 'the token does not allow this interaction');
  }
  return {
    clientId: principal.clientId,
    scopes: principal.scopes,
    sourceSystem,
    systems,
    touched: (patientKey) => st.patients.add(patientKey),
    refused: (reason) => {
      st.denyReason = reason;
    },
  };
}

/** The onRequest hook: input, token, client, source system and scope, in that order. */
function guard(o: IngestSecurityOptions) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const st: IngestState = { principal: null, caller: null, patients: new Set(), denyReason: null };
    req.ingest = st;
    const bad = controlCharIn(req.params) ?? controlCharIn(req.query);
    if (bad !== null) {
      st.denyReason = 'invalid-input';
      throw new HubError('HUB_INPUT_INVALID', `control character in parameter '${bad}'`);
    }
    st.principal = await principalOf(o.verifier, st, req, reply);
    st.caller = callerFor(o, st, st.principal, req, reply);
  };
}

/** AuditEvent agent of a verified token, or none (anonymous). */
const whoOf = (p: Principal | null): AuditInput['who'] =>
  p ? { subject: p.subject, clientId: p.clientId, scopes: p.scopes } : null;

/** One AuditEvent per patient the request touched, or one naming none. */
function auditEventsOf(req: FastifyRequest, st: IngestState, status: number, observer: string): AuditEvent[] {
  const rule = ruleOf(req);
  const type = typeParam(req);
  const base = {
    recorded: Date.now(),
    interaction: rule?.interaction ?? 'operation',
    route: `${req.method} ${req.routeOptions.url ?? ''}`,
    resourceType: req.routeOptions.url === '/' ? 'Bundle' : type || null,
    status,
    who: whoOf(st.principal),
    denyReason: st.denyReason,
    sourceAddress: req.ip,
    observer,
  };
  const patients = st.patients.size > 0 ? [...st.patients] : [null];
  return patients.map((patientId) => buildAuditEvent({ ...base, id: randomUUID(), patientId }));
}

/** The 503 OperationOutcome that replaces an answer whose AuditEvent was not written (as a payload). */
function unaudited(o: IngestSecurityOptions, reply: FastifyReply, err: unknown): string {
  o.onAuditFailure?.();
  o.logger
    .child({ component: 'security' })
    .error({ code: toHubError(err).code }, 'audit record not written, refusing the answer');
  const { status, outcome } = toOperationOutcome(
    new HubError('HUB_KAFKA_UNAVAILABLE', 'audit unavailable, try again'),
  );
  for (const h of ['location', 'etag', 'last-modified']) reply.removeHeader(h);
  void reply.code(status).type(FHIR_JSON);
  return JSON.stringify(outcome);
}

/** The onSend hook: no audit record, no answer. */
function auditAnswers(o: IngestSecurityOptions) {
  return async (req: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<unknown> => {
    const st = req.ingest;
    if (!st) return payload;
    // What this port serves is PHI: never kept by a cache.
    void reply.header('cache-control', 'no-store');
    try {
      await o.audit.recordAll(auditEventsOf(req, st, reply.statusCode, o.observer));
      return payload;
    } catch (err) {
      return unaudited(o, reply, err);
    }
  };
}

/** A method as sent, if it looks like one (it is a request's, so anything). */
const methodOf = (method: string): string => (/^[A-Z]{1,10}$/.test(method) ? method : 'OTHER');

/**
 * The pattern an unrouted request is audited under: its method and a resource
 * type the adapter serves (`DELETE /Patient/*`), or `*`; never the path, whose
 * segments may be ids or anything a prober sends.
 */
export function unroutedRoute(method: string, url: string): string {
  const first = (url.split('?')[0] ?? '').split('/').find((seg) => seg !== '' && seg !== '.');
  return `${methodOf(method)} /${isSupportedType(first) ? `${first}/*` : '*'}`;
}

/**
 * Answers a request no route took (an OperationOutcome, no path in it),
 * recorded first as denied (`reason`) under unroutedRoute, with the client if
 * its token verifies: every path on this port but health, ready and metrics
 * is a FHIR one. No record, no answer, as for the routes.
 */
async function answerUnmatched(
  o: IngestSecurityOptions,
  { req, reply }: { req: FastifyRequest; reply: FastifyReply },
  err: HubError,
  reason: string,
): Promise<FastifyReply> {
  void reply.header('cache-control', 'no-store');
  const token = bearerToken(req);
  const principal = token ? await o.verifier(token).catch(() => null) : null;
  const method = methodOf(req.method);
  const event = buildAuditEvent({
    id: randomUUID(),
    recorded: Date.now(),
    interaction: method === 'GET' || method === 'HEAD' ? 'read' : 'operation',
    route: unroutedRoute(req.method, req.url),
    resourceType: null,
    status: httpStatusOf(err),
    patientId: null,
    who: whoOf(principal),
    denyReason: reason,
    sourceAddress: req.ip,
    observer: o.observer,
  });
  try {
    await o.audit.recordAll([event]);
  } catch (e) {
    return reply.send(unaudited(o, reply, e));
  }
  return fhirErrorHandler(err, req, reply);
}

/** The not-found handler of the adapter's app: 404 OperationOutcome, audited. */
export function unroutedHandler(o: IngestSecurityOptions) {
  return (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> =>
    answerUnmatched(o, { req, reply }, new HubError('HUB_NOT_FOUND', 'unknown FHIR route'), 'unrouted');
}

/** The router's refusals (fastify frameworkErrors: an undecodable URL, an over-long parameter): 400, audited likewise. */
export function badUrlHandler(o: IngestSecurityOptions) {
  return (err: { code?: string }, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> =>
    answerUnmatched(o, { req, reply }, frameworkRefusal(err), 'invalid-input');
}

/** The caller a guarded request was admitted as; a route outside the guard gets nothing (fail closed). */
export function callerOf(req: FastifyRequest): Caller {
  const caller = req.ingest?.caller;
  if (!caller) throw new HubError('HUB_UNAUTHENTICATED', 'a bearer token is required');
  return caller;
}

/** Adds the hooks to `scope`: call it before registering the route plugins on it. */
export function installIngestSecurity(scope: FastifyInstance, o: IngestSecurityOptions): void {
  scope.decorateRequest('ingest', null);
  scope.addHook('onRequest', guard(o));
  scope.addHook('onSend', auditAnswers(o));
}
