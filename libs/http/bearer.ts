import type { FastifyRequest } from 'fastify';

/**
 * Bearer tokens (RFC 6750) as every HTTP door of the hub reads and refuses
 * them: the API, the FHIR adapter and the services' operator routes.
 */

/** The bearer token; '' for an Authorization header that is not a well-formed one, null for none. */
export function bearerToken(req: FastifyRequest): string | null {
  const h = req.headers.authorization;
  if (!h) return null;
  return /^Bearer\s+([A-Za-z0-9\-_.~+/]+=*)$/i.exec(h)?.[1] ?? '';
}

export interface ChallengeParts {
  error?: 'invalid_token' | 'insufficient_scope';
  /** A fixed text, never anything from the request. */
  description?: string;
  /** Scopes any one of which would do (403). */
  scope?: string;
}

/**
 * A `WWW-Authenticate` value (RFC 6750 §3). Attribute values are fixed texts
 * and scope names: a header is logged by proxies, and a quote would break it.
 */
export function bearerChallenge(realm: string, p: ChallengeParts = {}): string {
  return [
    `Bearer realm="${realm}"`,
    ...(p.error ? [`error="${p.error}"`] : []),
    ...(p.description ? [`error_description="${p.description}"`] : []),
    ...(p.scope ? [`scope="${p.scope}"`] : []),
  ].join(', ');
}
