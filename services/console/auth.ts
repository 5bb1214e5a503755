import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import * as oidc from 'openid-client';
import { mintToken, type DevKeys, type TokenVerifier } from '../../libs/auth/jwt.js';
import { HUB_SCOPES, type Principal } from '../../libs/auth/scopes.js';
import { HubError, toHubError } from '../../libs/errors/index.js';
import type { Logger } from '../../libs/telemetry/logger.js';
import { sendHtml } from './context.js';
import { html } from './html.js';
import { page } from './layout.js';
import { csrfMatches, SESSION_COOKIE, type Role, type SessionStore } from './session.js';

/**
 * Sign-in. Production: OAuth2 authorization code with PKCE against the
 * hub's identity provider (the one whose tokens the API accepts); the access
 * token it returns is verified by the same verifier as the API's, and its
 * scopes give the roles. Development (`npm run up`, no AUTH_JWKS_URL): a
 * form that mints a token with the local development key, as `hub auth
 * token` does, for a chosen role.
 */
export interface LoginOptions {
  sessions: SessionStore;
  verifier: TokenVerifier;
  logger: Logger;
  /** Secure cookies (https deployments). */
  secureCookies: boolean;
  sessionMaxAgeMs: number;
  /** The development login: the local key to mint with, issuer and audience of the console's tokens. */
  devLogin: { keys: DevKeys; issuer: string; audience: string } | null;
  oidc: OidcLogin | null;
}

export interface OidcLogin {
  /** Filled by start-up's discovery step; until then the provider sign-in answers 503. */
  config: oidc.Configuration | null;
  redirectUri: string;
  /** Scopes to ask for, e.g. `openid system/hub.operator user/Identity.crs`. */
  scope: string;
  /** The authorization server's resource indicator / audience parameter, when it needs one. */
  resource?: string;
}

/** What each dev-login role is granted: the scopes an identity provider would give that role. */
export const DEV_ROLE_SCOPES: Record<Role, readonly string[]> = {
  operator: [HUB_SCOPES.operator],
  steward: ['user/Identity.crs'],
};

const LOGIN_COOKIE = 'hub_console_login';
const PENDING_MS = 10 * 60_000;

function cookieOptions(secure: boolean, maxAgeMs: number) {
  return {
    path: '/',
    httpOnly: true,
    sameSite: 'strict' as const,
    secure,
    maxAge: Math.floor(maxAgeMs / 1000),
  };
}

function loginPage(o: LoginOptions, error: string | null) {
  const dev = o.devLogin
    ? html`<form method="post" action="/login/dev" class="card">
        <h2>Development sign-in</h2>
        <p>Signs in with the local development key (only when the hub runs without an identity provider).</p>
        <label for="dev-user">User name</label>
        <input
          id="dev-user"
          name="user"
          required
          maxlength="64"
          pattern="[A-Za-z0-9._-]+"
          value="dev-operator"
        />
        <fieldset>
          <legend>Roles</legend>
          <input type="checkbox" id="role-operator" name="role" value="operator" checked />
          <label for="role-operator">Operator (flow, dead letters, messages, outcomes)</label><br />
          <input type="checkbox" id="role-steward" name="role" value="steward" />
          <label for="role-steward">Data steward (identity review)</label>
        </fieldset>
        <button type="submit">Sign in</button>
      </form>`
    : '';
  const sso = o.oidc
    ? html`<p><a class="button" href="/login/oidc">Sign in with the hospital's identity provider</a></p>`
    : '';
  const none =
    !o.devLogin && !o.oidc ? html`<p role="alert">No sign-in is configured (CONSOLE_OIDC_ISSUER).</p>` : '';
  return page({
    title: 'Sign in',
    session: null,
    body: html`${error ? html`<p role="alert" class="error">${error}</p>` : ''}${sso}${dev}${none}`,
  });
}

async function startSession(
  o: LoginOptions,
  reply: FastifyReply,
  principal: Principal,
): Promise<FastifyReply> {
  const s = o.sessions.create(principal, o.sessionMaxAgeMs);
  if (s.roles.length === 0) {
    o.sessions.destroy(s.id);
    return sendHtml(reply, loginPage(o, 'Your account has neither the operator nor the steward role.'), 403);
  }
  void reply.setCookie(SESSION_COOKIE, s.id, cookieOptions(o.secureCookies, s.expiresAt - Date.now()));
  return reply.redirect(s.roles.includes('operator') ? '/flow' : '/identity', 303);
}

function devRoles(body: unknown): Role[] {
  const r = (body as { role?: unknown } | null)?.role;
  const list = Array.isArray(r) ? r : [r];
  return list.filter((x): x is Role => x === 'operator' || x === 'steward');
}

function registerDevLogin(app: FastifyInstance, o: LoginOptions): void {
  app.post('/login/dev', async (req, reply) => {
    const dev = o.devLogin;
    if (!dev) throw new HubError('HUB_NOT_FOUND', 'no development sign-in here');
    const user = (req.body as { user?: unknown } | null)?.user;
    const roles = devRoles(req.body);
    if (typeof user !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(user) || roles.length === 0) {
      return sendHtml(
        reply,
        loginPage(o, 'Give a user name (letters, digits, . _ -) and at least one role.'),
        400,
      );
    }
    const token = await mintToken({
      keys: dev.keys,
      subject: user,
      clientId: 'hub-console-dev',
      scope: roles.flatMap((r) => DEV_ROLE_SCOPES[r]),
      ttlSec: 8 * 3600,
      issuer: dev.issuer,
      audience: dev.audience,
    });
    return startSession(o, reply, await o.verifier(token));
  });
}

interface Pending {
  verifier: string;
  state: string;
  at: number;
}

function registerOidcLogin(app: FastifyInstance, o: LoginOptions): void {
  // Code verifier and state wait here, keyed by a random cookie: nothing of them in the browser but that key.
  const pending = new Map<string, Pending>();
  app.get('/login/oidc', async (_req, reply) => {
    const sso = o.oidc;
    if (!sso) throw new HubError('HUB_NOT_FOUND', 'no identity provider configured');
    if (!sso.config) throw new HubError('HUB_AUTH_UNAVAILABLE', 'the identity provider is not reachable yet');
    const config = sso.config;
    const now = Date.now();
    for (const [k, p] of pending) if (now - p.at > PENDING_MS) pending.delete(k);
    const p: Pending = { verifier: oidc.randomPKCECodeVerifier(), state: oidc.randomState(), at: now };
    const key = oidc.randomState();
    pending.set(key, p);
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: sso.redirectUri,
      scope: sso.scope,
      code_challenge: await oidc.calculatePKCECodeChallenge(p.verifier),
      code_challenge_method: 'S256',
      state: p.state,
      ...(sso.resource ? { resource: sso.resource } : {}),
    });
    void reply.setCookie(LOGIN_COOKIE, key, {
      ...cookieOptions(o.secureCookies, PENDING_MS),
      sameSite: 'lax',
    });
    return reply.redirect(url.href, 303);
  });
  app.get('/login/callback', async (req, reply) => {
    const sso = o.oidc;
    if (!sso?.config) throw new HubError('HUB_NOT_FOUND', 'no identity provider configured');
    const config = sso.config;
    const key = req.cookies[LOGIN_COOKIE];
    const p = key ? pending.get(key) : undefined;
    if (key) pending.delete(key);
    void reply.clearCookie(LOGIN_COOKIE, { path: '/' });
    if (!p)
      return sendHtml(reply, loginPage(o, 'The sign-in expired or was not started here; try again.'), 400);
    try {
      const current = new URL(req.url, sso.redirectUri);
      const tokens = await oidc.authorizationCodeGrant(config, current, {
        pkceCodeVerifier: p.verifier,
        expectedState: p.state,
      });
      return await startSession(o, reply, await o.verifier(tokens.access_token));
    } catch (err) {
      // The provider's or the verifier's words stay in our log (codes only), not on the page.
      o.logger.warn({ code: toHubError(err, 'HUB_UNAUTHENTICATED').code }, 'console sign-in refused');
      return sendHtml(
        reply,
        loginPage(o, 'Sign-in failed: the identity provider did not give a valid token.'),
        401,
      );
    }
  });
}

/** Login, logout, and the session hook every route after it sees. */
export function registerLogin(app: FastifyInstance, o: LoginOptions): void {
  app.addHook('onRequest', (req, _reply, done) => {
    req.consoleSession = o.sessions.get(req.cookies[SESSION_COOKIE]);
    done();
  });
  app.get('/login', (req, reply) => {
    if (req.consoleSession) return reply.redirect('/', 303);
    return sendHtml(reply, loginPage(o, null));
  });
  registerDevLogin(app, o);
  registerOidcLogin(app, o);
  app.post('/logout', (req, reply) => {
    if (
      req.consoleSession &&
      csrfMatches(req.consoleSession, (req.body as { _csrf?: unknown } | null)?._csrf)
    ) {
      o.sessions.destroy(req.consoleSession.id);
    }
    void reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return reply.redirect('/login', 303);
  });
}

/**
 * The guard of a page: no session → the sign-in page (GET) or 401; no such
 * role → 403; a POST without the session's CSRF token → 403.
 */
export function requireRole(role: Role) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const s = req.consoleSession;
    if (!s) {
      if (req.method === 'GET' && !req.headers['hx-request']) return reply.redirect('/login', 303);
      throw new HubError('HUB_UNAUTHENTICATED', 'sign in first');
    }
    if (!s.roles.includes(role)) throw new HubError('HUB_FORBIDDEN', `the ${role} role is required`);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      const presented = req.headers['x-csrf-token'] ?? (req.body as { _csrf?: unknown } | null)?._csrf;
      if (!csrfMatches(s, presented))
        throw new HubError('HUB_FORBIDDEN', 'the form expired; reload the page');
    }
  };
}
