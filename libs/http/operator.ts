import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { TokenVerifier } from '../auth/jwt.js';
import { HUB_SCOPES } from '../auth/scopes.js';
import { HubError, toHubError } from '../errors/index.js';
import { bearerChallenge, bearerToken } from './bearer.js';
import { jsonErrorHandler } from './errors.js';

/**
 * Operator routes on a service's own port (/version, /views, ...): they
 * serve no PHI, but they describe the deployment, so only a bearer token
 * with `system/hub.operator` opens them. /health, /ready and /metrics stay
 * open (probes and scrapers carry no token) and must carry no identifier.
 *
 * An encapsulated plugin: the token check applies to the routes registered
 * through `routes` and to nothing else on the app.
 */
export interface OperatorRoutesOptions {
  /** Verifies operator tokens; null: no token can be checked, so every operator route answers 401. */
  verifier: TokenVerifier | null;
  /** Registers the operator routes on the protected scope. */
  routes(scope: FastifyInstance): void;
}

/** The default audience of operator tokens: their own, so that a token for the API does not open them. */
export const OPERATOR_AUDIENCE = 'hub-ops';

/** RFC 6750 challenges: which one tells a client what to fix. */
const REALM = 'hub-operator';
const CHALLENGE = {
  missing: bearerChallenge(REALM),
  invalid: bearerChallenge(REALM, { error: 'invalid_token' }),
  scope: bearerChallenge(REALM, { error: 'insufficient_scope', scope: HUB_SCOPES.operator }),
} as const;

function refuse(reply: FastifyReply, challenge: string, err: HubError): never {
  void reply.header('www-authenticate', challenge);
  throw err;
}

/** The onRequest check: 401 without a valid token, 403 without the operator scope. */
export function requireOperator(verifier: TokenVerifier | null) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const token = bearerToken(req);
    if (token === null) {
      refuse(reply, CHALLENGE.missing, new HubError('HUB_UNAUTHENTICATED', 'a bearer token is required'));
    }
    if (token === '' || verifier === null) {
      refuse(reply, CHALLENGE.invalid, new HubError('HUB_UNAUTHENTICATED', 'invalid bearer token'));
    }
    let scopes: readonly string[];
    try {
      scopes = (await verifier(token)).scopes;
    } catch (err) {
      const h = toHubError(err, 'HUB_UNAUTHENTICATED');
      // The identity provider down is ours to answer (503), not the client's token.
      if (h.code !== 'HUB_UNAUTHENTICATED') throw h;
      refuse(reply, CHALLENGE.invalid, h);
    }
    if (!scopes.includes(HUB_SCOPES.operator)) {
      refuse(reply, CHALLENGE.scope, new HubError('HUB_FORBIDDEN', 'an operator token is required'));
    }
  };
}

/** `app.register(operatorRoutes, { verifier, routes: (s) => s.get('/version', ...) })`. */
export const operatorRoutes: FastifyPluginAsync<OperatorRoutesOptions> = (scope, o) => {
  scope.setErrorHandler(jsonErrorHandler);
  scope.addHook('onRequest', requireOperator(o.verifier));
  o.routes(scope);
  return Promise.resolve();
};
