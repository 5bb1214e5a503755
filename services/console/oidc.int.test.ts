// The console's production sign-in against a real OpenID provider: node
// oidc-provider on a free port, with the console as its client, issuing JWT
// access tokens for the console's resource (audience hub-console) with the
// hub's scopes. The browser's part (redirects, the provider's sign-in and
// consent forms, cookies) is driven with fetch; the console's part with inject.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt, exportJWK, generateKeyPair } from 'jose';
import Provider, { errors as oidcErrors, type Configuration } from 'oidc-provider';
import * as oidc from 'openid-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTokenVerifier } from '../../libs/auth/jwt.js';
import { HUB_SCOPES } from '../../libs/auth/scopes.js';
import { toHubError } from '../../libs/errors/index.js';
import {
  CONSOLE_AUDIENCE,
  consoleTestApp,
  sessionCookieOf,
  type ConsoleTestApp,
} from '../../test/support/console-app.js';

const CLIENT_ID = 'hub-console';
const CLIENT_SECRET = 'console-test-secret';
/** Where the provider sends the browser back (the console is reached by inject: nothing listens there). */
const REDIRECT_URI = 'http://127.0.0.1:8110/login/callback';
/** Resource indicators (RFC 8707) → audiences: the console's, and the API's (a token the console must refuse). */
const RESOURCES: Record<string, string> = {
  'urn:hub:console': CONSOLE_AUDIENCE,
  'urn:hub:api': 'hub-api',
};
const HUB_RESOURCE_SCOPES = `${HUB_SCOPES.operator} user/Identity.crs`;

interface RunningProvider {
  issuer: string;
  server: Server;
}

async function startProvider(): Promise<RunningProvider> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const ec = await generateKeyPair('ES256', { extractable: true });
  const rsa = await generateKeyPair('RS256', { extractable: true });
  const config: Configuration = {
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        redirect_uris: [REDIRECT_URI],
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
    ],
    jwks: {
      keys: [
        { ...(await exportJWK(rsa.privateKey)), kid: 'rs', alg: 'RS256', use: 'sig' },
        { ...(await exportJWK(ec.privateKey)), kid: 'es', alg: 'ES256', use: 'sig' },
      ],
    },
    cookies: { keys: ['console-oidc-test-cookie-key'] },
    ttl: { Interaction: 600, Session: 600, Grant: 600, AccessToken: 600, IdToken: 600 },
    pkce: { required: () => true },
    // Any user name signs in (the provider's development forms); the subject is that name.
    findAccount: (_ctx, id) => ({ accountId: id, claims: () => ({ sub: id }) }),
    features: {
      devInteractions: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => 'urn:hub:console',
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, indicator) => {
          const audience = RESOURCES[indicator];
          if (!audience) throw new oidcErrors.InvalidTarget();
          return {
            audience,
            scope: HUB_RESOURCE_SCOPES,
            accessTokenFormat: 'jwt',
            accessTokenTTL: 600,
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
    },
  };
  const provider = new Provider(issuer, config);
  const handle = provider.callback();
  server.on('request', (req, res) => void handle(req, res));
  return { issuer, server };
}

/** The browser's cookies at the provider: name → value (paths do not matter for one flow). */
class Jar {
  private readonly cookies = new Map<string, string>();
  take(res: Response): void {
    for (const c of res.headers.getSetCookie()) {
      const [pair = ''] = c.split(';');
      const i = pair.indexOf('=');
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(c)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

/**
 * What the browser does between the console's redirect to the provider and
 * the provider's redirect back: follow redirects, fill in the sign-in form
 * with `user`, press "Continue" on the consent form. Returns the callback URL.
 */
async function browserAtProvider(start: string, user: string): Promise<URL> {
  const jar = new Jar();
  let url = new URL(start);
  for (let step = 0; step < 12; step++) {
    if (url.href.startsWith(REDIRECT_URI)) return url;
    const res = await fetch(url, { redirect: 'manual', headers: { cookie: jar.header() } });
    jar.take(res);
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      url = new URL(location, url);
      continue;
    }
    const page = await res.text();
    if (res.status !== 200) throw new Error(`provider answered ${res.status}: ${page.slice(0, 300)}`);
    const action = /<form[^>]*action="([^"]+)"/.exec(page)?.[1];
    const prompt = /name="prompt" value="([a-z]+)"/.exec(page)?.[1];
    if (!action || !prompt) throw new Error(`no form on the provider's page: ${page.slice(0, 300)}`);
    const form =
      prompt === 'login'
        ? new URLSearchParams({ prompt, login: user, password: 'any' })
        : new URLSearchParams({ prompt });
    const posted = await fetch(new URL(action, url), {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
    });
    jar.take(posted);
    const next = posted.headers.get('location');
    if (!next) throw new Error(`the ${prompt} form answered ${posted.status} without a redirect`);
    url = new URL(next, url);
  }
  throw new Error('the provider never sent the browser back');
}

describe('console sign-in with a real OpenID provider (authorization code + PKCE)', () => {
  let idp: RunningProvider;
  let app: ConsoleTestApp | undefined;
  /** What the console's verifier saw: each token's claims and, when refused, why. */
  let seen: { claims: Record<string, unknown>; problem: string | null }[] = [];

  beforeAll(async () => {
    idp = await startProvider();
  });
  afterAll(async () => {
    await new Promise((r) => idp.server.close(r));
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
    seen = [];
  });

  /** The console as production runs it: no dev login; discovery, JWKS and issuer from the provider. */
  async function consoleFor(o: { scope: string; resource: string }): Promise<ConsoleTestApp> {
    const config = await oidc.discovery(new URL(idp.issuer), CLIENT_ID, CLIENT_SECRET, undefined, {
      execute: [oidc.allowInsecureRequests],
    });
    const jwksUri = config.serverMetadata().jwks_uri;
    if (!jwksUri) throw new Error('the provider publishes no jwks_uri');
    const verify = createTokenVerifier({ issuer: idp.issuer, audience: CONSOLE_AUDIENCE, jwksUrl: jwksUri });
    app = await consoleTestApp({
      devLogin: false,
      verifier: async (token) => {
        const claims = decodeJwt(token);
        try {
          const p = await verify(token);
          seen.push({ claims, problem: null });
          return p;
        } catch (err) {
          const h = toHubError(err);
          const problem = h.details?.['problem'];
          seen.push({ claims, problem: typeof problem === 'string' ? problem : h.code });
          throw err;
        }
      },
      oidc: { config, redirectUri: REDIRECT_URI, scope: o.scope, resource: o.resource },
    });
    return app;
  }

  /** The whole round: console → provider (sign-in, consent) → console's callback. */
  async function signIn(a: ConsoleTestApp, user: string) {
    const start = await a.app.inject({ method: 'GET', url: '/login/oidc' });
    expect(start.statusCode).toBe(303);
    const authUrl = new URL(String(start.headers.location));
    // the request carries PKCE (S256) and state; the verifier never leaves the console
    expect(authUrl.origin).toBe(idp.issuer);
    expect(authUrl.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authUrl.searchParams.get('state')).toBeTruthy();
    expect(authUrl.searchParams.has('code_verifier')).toBe(false);
    const pending = start.cookies.find((c) => c.name === 'hub_console_login');
    expect(pending).toMatchObject({ httpOnly: true });
    const back = await browserAtProvider(authUrl.href, user);
    return a.app.inject({
      method: 'GET',
      url: `${back.pathname}${back.search}`,
      headers: { cookie: `hub_console_login=${pending?.value ?? ''}` },
    });
  }

  it('given an operator at the provider, when they sign in, then the console keeps a server-side session with the operator and steward roles', async () => {
    // given the console configured with the provider's issuer and keys
    const a = await consoleFor({ scope: `openid ${HUB_RESOURCE_SCOPES}`, resource: 'urn:hub:console' });
    // when a user goes through the provider's sign-in and consent
    const res = await signIn(a, 'ops-oncall');
    // then the console answers with its own session cookie and sends them to the flow page
    expect(res.statusCode, res.body.slice(0, 300)).toBe(303);
    expect(res.headers.location).toBe('/flow');
    const c = sessionCookieOf(res);
    expect(c).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    expect(c?.value).not.toContain('.');
    // and the session is the verified principal of the provider's access token
    const s = a.sessions.get(c?.value);
    expect(s?.principal.subject).toBe('ops-oncall');
    expect(s?.principal.clientId).toBe(CLIENT_ID);
    expect(s?.principal.scopes).toContain(HUB_SCOPES.operator);
    expect(s?.roles).toEqual(['operator', 'steward']);
    // which was a JWT for the console's audience from this issuer
    expect(seen).toHaveLength(1);
    expect(seen[0]?.claims).toMatchObject({ iss: idp.issuer, aud: CONSOLE_AUDIENCE, sub: 'ops-oncall' });
    // and the cookie counts as signed in (the sign-in page sends the browser on)
    const cookie = `${c?.name ?? ''}=${c?.value ?? ''}`;
    const again = await a.app.inject({ method: 'GET', url: '/login', headers: { cookie } });
    expect(again.statusCode).toBe(303);
    expect(again.headers.location).toBe('/');
  });

  it('given a token issued for another audience (the API), when it comes back to the console, then the sign-in is refused and no session made', async () => {
    // given the console asking the provider for the API's resource (a misconfigured or replayed client)
    const a = await consoleFor({ scope: `openid ${HUB_RESOURCE_SCOPES}`, resource: 'urn:hub:api' });
    // when the user signs in
    const res = await signIn(a, 'ops-oncall');
    // then the console's verifier refuses the token for its audience (a valid token, signed by the same provider)
    expect(seen).toHaveLength(1);
    expect(seen[0]?.claims).toMatchObject({ aud: 'hub-api', iss: idp.issuer });
    expect(seen[0]?.problem).toBe('bad-claims');
    // and the page says nothing of why (that stays in the log)
    expect(res.statusCode).toBe(401);
    expect(res.body).toContain('Sign-in failed');
    expect(sessionCookieOf(res)).toBeUndefined();
    expect(a.sessions.size()).toBe(0);
  });

  it('given a user granted none of the hub’s scopes, when they sign in, then 403 and no session', async () => {
    const a = await consoleFor({ scope: 'openid', resource: 'urn:hub:console' });
    const res = await signIn(a, 'visitor');
    expect(seen[0]?.claims['scope'] ?? '').not.toContain(HUB_SCOPES.operator);
    expect(res.statusCode).toBe(403);
    expect(res.body).toContain('neither the operator nor the steward role');
    expect(a.sessions.size()).toBe(0);
  });

  it('given a callback with a state the console did not issue, then it is refused', async () => {
    const a = await consoleFor({ scope: `openid ${HUB_RESOURCE_SCOPES}`, resource: 'urn:hub:console' });
    const res = await a.app.inject({ method: 'GET', url: '/login/callback?code=forged&state=forged' });
    expect(res.statusCode).toBe(400);
    expect(a.sessions.size()).toBe(0);
  });
});
