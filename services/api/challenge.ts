import {
  HUB_SCOPES,
  identityPermission,
  subscriptionPermission,
  type AccessRequest,
} from '../../libs/auth/scopes.js';
import { bearerChallenge } from '../../libs/http/bearer.js';

/**
 * The `WWW-Authenticate` challenge of a 401 or 403 (RFC 6750 §3). Pure.
 *
 *   401, no bearer token sent     Bearer realm="hub"   (no error: the client may not know it needs one, §3.1)
 *   401, a bearer token refused   Bearer realm="hub", error="invalid_token", error_description="..."
 *   403                           Bearer realm="hub", error="insufficient_scope", scope="<what would do>"
 *
 * Attribute values are fixed texts and scope names, never anything from the
 * request: a header is logged by proxies, and a quote in it would break it.
 */
export const REALM = 'hub';

/** The scopes any one of which would grant the access asked for (SMART v2 letters). */
export function requiredScopes(access: AccessRequest | null): string[] {
  if (!access) return [];
  switch (access.kind) {
    case 'billing':
      return [HUB_SCOPES.billing];
    case 'analytics':
      return [HUB_SCOPES.analytics];
    case 'admin':
      return [HUB_SCOPES.admin];
    case 'subscription':
      return [`system/Subscription.${subscriptionPermission(access.interaction)}`];
    case 'identity': {
      const perm = identityPermission(access.interaction);
      return [`user/Identity.${perm}`, `system/Identity.${perm}`];
    }
    case 'everything':
      return ['patient/*.rs', 'user/*.rs'];
    case 'fhir': {
      const perm = access.interaction === 'read' ? 'r' : 's';
      return [`patient/${access.resourceType}.${perm}`, `user/${access.resourceType}.${perm}`];
    }
  }
}

export interface ChallengeInput {
  status: number;
  /** Whether the request carried `Authorization: Bearer ...` (well formed or not). */
  bearerSent: boolean;
  /** What the route asked the token for, when known. */
  access: AccessRequest | null;
  /** Why the token was refused, a fixed text (401 with a token only). */
  description?: string;
}

/** The header value, or null for statuses that do not challenge. */
export function challengeOf(c: ChallengeInput): string | null {
  if (c.status === 401) {
    if (!c.bearerSent) return bearerChallenge(REALM);
    return bearerChallenge(REALM, {
      error: 'invalid_token',
      ...(c.description ? { description: c.description } : {}),
    });
  }
  if (c.status === 403) {
    const scope = requiredScopes(c.access).join(' ');
    return bearerChallenge(REALM, { error: 'insufficient_scope', ...(scope ? { scope } : {}) });
  }
  return null;
}
