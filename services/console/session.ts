import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Principal } from '../../libs/auth/scopes.js';
import { decide, HUB_SCOPES } from '../../libs/auth/scopes.js';

/**
 * Console sessions live on the server: the browser holds only an opaque,
 * random, HttpOnly cookie, so no token, no scope list and no PHI is ever in
 * its storage. A session is the verified principal of the login's access
 * token, with the roles its scopes grant, a CSRF token for every state
 * change, and an expiry no later than the token's.
 */
export type Role = 'operator' | 'steward';

export interface ConsoleSession {
  id: string;
  principal: Principal;
  roles: readonly Role[];
  /** Sent with every POST (form field `_csrf` or header `x-csrf-token`). */
  csrf: string;
  expiresAt: number;
}

export const SESSION_COOKIE = 'hub_console';

/**
 * The roles are the API's scopes, not a second permission system:
 * `operator` = `system/hub.operator` (the operator routes' scope), `steward` =
 * what the API's identity routes accept (`user/Identity.*` or `system/Identity.*`).
 */
export function rolesOf(principal: Principal): Role[] {
  const roles: Role[] = [];
  if (principal.scopes.includes(HUB_SCOPES.operator)) roles.push('operator');
  if (decide(principal, { kind: 'identity', interaction: 'search' }).allow) roles.push('steward');
  return roles;
}

/** Whether a steward may also decide (link, reject, unlink), not only look. */
export function mayDecideIdentity(principal: Principal): boolean {
  return decide(principal, { kind: 'identity', interaction: 'create' }).allow;
}

export interface SessionStore {
  create(principal: Principal, maxAgeMs: number): ConsoleSession;
  get(id: string | undefined): ConsoleSession | null;
  destroy(id: string | undefined): void;
  size(): number;
}

/**
 * In memory: one console process per deployment (a restart signs everyone
 * out, which is the safe direction). Expired sessions are dropped on access
 * and by a sweep, so the map stays bounded by the live sessions.
 */
export function createSessionStore(now: () => number = Date.now): SessionStore {
  const sessions = new Map<string, ConsoleSession>();
  const sweep = () => {
    const t = now();
    for (const [id, s] of sessions) if (s.expiresAt <= t) sessions.delete(id);
  };
  return {
    create(principal, maxAgeMs) {
      sweep();
      const expiresAt = Math.min(now() + maxAgeMs, principal.expiresAt ?? Number.POSITIVE_INFINITY);
      const s: ConsoleSession = {
        id: randomBytes(32).toString('base64url'),
        principal,
        roles: rolesOf(principal),
        csrf: randomBytes(24).toString('base64url'),
        expiresAt,
      };
      sessions.set(s.id, s);
      return s;
    },
    get(id) {
      if (!id) return null;
      const s = sessions.get(id);
      if (!s) return null;
      if (s.expiresAt <= now()) {
        sessions.delete(id);
        return null;
      }
      return s;
    },
    destroy(id) {
      if (id) sessions.delete(id);
    },
    size: () => sessions.size,
  };
}

/** Constant-time comparison of a presented CSRF token with the session's. */
export function csrfMatches(session: ConsoleSession, presented: unknown): boolean {
  if (typeof presented !== 'string') return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(session.csrf);
  return a.length === b.length && timingSafeEqual(a, b);
}
