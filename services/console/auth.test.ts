import type { LightMyRequestResponse } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { DEV_ISSUER, mintToken } from '../../libs/auth/jwt.js';
import {
  CONSOLE_AUDIENCE,
  CONSOLE_POST_ROUTES,
  consoleTestApp,
  devSignIn,
  sessionCookieOf,
  type ConsoleTestApp,
} from '../../test/support/console-app.js';
import { PAGES } from './layout.js';
import { SESSION_COOKIE } from './session.js';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

let t: ConsoleTestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function started(o: Parameters<typeof consoleTestApp>[0] = {}): Promise<ConsoleTestApp> {
  t = await consoleTestApp(o);
  return t;
}

const devForm = (a: ConsoleTestApp, payload: string) =>
  a.app.inject({ method: 'POST', url: '/login/dev', headers: FORM, payload });

const postsHere = (a: ConsoleTestApp) =>
  CONSOLE_POST_ROUTES.filter((url) => a.app.hasRoute({ method: 'POST', url }));

function expectSecurityHeaders(res: LightMyRequestResponse, what: string): void {
  expect(res.headers['cache-control'], what).toBe('no-store');
  const csp = String(res.headers['content-security-policy']);
  expect(csp, what).toContain("script-src 'self'");
  expect(csp, what).toContain("frame-ancestors 'none'");
  expect(csp, what).not.toContain('unsafe-inline');
  expect(res.headers['x-frame-options'], what).toBe('DENY');
  expect(res.headers['referrer-policy'], what).toBe('no-referrer');
  expect(res.headers['x-content-type-options'], what).toBe('nosniff');
}

describe('console sign-in: no session', () => {
  it('given no session, when a page is opened, then the browser is sent to the sign-in page (303 /login)', async () => {
    // given the console without a session cookie
    const a = await started();
    for (const p of ['/', ...PAGES.map((x) => x.path)]) {
      // when the page is opened
      const res = await a.app.inject({ method: 'GET', url: p });
      // then it redirects to the sign-in page, showing nothing of the page
      expect(res.statusCode, p).toBe(303);
      expect(res.headers.location, p).toBe('/login');
    }
  });

  it('given no session, when htmx asks for a fragment, then 401 lands in the alert region (no redirect to swap in)', async () => {
    const a = await started();
    for (const p of PAGES.map((x) => x.path)) {
      const res = await a.app.inject({ method: 'GET', url: p, headers: { 'hx-request': 'true' } });
      expect(res.statusCode, p).toBe(401);
      expect(res.headers['hx-retarget'], p).toBe('#alerts');
      expect(res.body, p).toContain('HUB_UNAUTHENTICATED');
    }
  });

  it('given no session, when a page POST arrives (with or without a CSRF token), then it is refused 401', async () => {
    const a = await started();
    const posts = postsHere(a);
    expect(posts.length).toBeGreaterThan(0);
    for (const url of posts) {
      const res = await a.app.inject({ method: 'POST', url, headers: FORM, payload: '_csrf=guess&reason=x' });
      expect(res.statusCode, url).toBe(401);
    }
  });

  it('given a bearer token of the right audience but no session, then a page still redirects: the console takes cookies only', async () => {
    const a = await started();
    const token = await mintToken({
      keys: a.keys,
      subject: 'x',
      scope: ['system/hub.operator'],
      ttlSec: 60,
      issuer: DEV_ISSUER,
      audience: CONSOLE_AUDIENCE,
    });
    const res = await a.app.inject({
      method: 'GET',
      url: '/flow',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(res.statusCode).toBe(303);
  });
});

describe('console sign-in: development login', () => {
  it('given the dev login, when an operator signs in, then the cookie is an opaque HttpOnly SameSite=Strict session id, never the token', async () => {
    // given the console with the development sign-in
    const a = await started();
    // when an operator signs in
    const { res } = await devSignIn(a, ['operator']);
    // then the answer sends them to the flow page with a session cookie
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/flow');
    const c = sessionCookieOf(res);
    expect(c).toMatchObject({
      name: SESSION_COOKIE,
      httpOnly: true,
      sameSite: 'Strict',
      secure: true,
      path: '/',
    });
    // and the cookie holds 32 random bytes, not a JWT (no dots, no JSON header), nor a scope or a name
    expect(c?.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(c?.value).not.toContain('eyJ');
    const raw = String(res.headers['set-cookie']);
    expect(raw).not.toMatch(/hub\.operator|test-operator/);
    // and the server holds the session with the operator role
    expect(a.sessions.get(c?.value)?.roles).toEqual(['operator']);
  });

  it('given a steward only, when signed in, then they land on identity review and the operator pages answer 403', async () => {
    const a = await started();
    const { cookie, res } = await devSignIn(a, ['steward'], 'test-steward');
    expect(res.headers.location).toBe('/identity');
    for (const p of PAGES.filter((x) => x.role === 'operator').map((x) => x.path)) {
      const r = await a.app.inject({ method: 'GET', url: p, headers: { cookie } });
      expect(r.statusCode, p).toBe(403);
      expect(r.body, p).toContain('the operator role is required');
    }
  });

  it('given an operator only, when the steward page is opened, then 403', async () => {
    const a = await started();
    const { cookie } = await devSignIn(a, ['operator']);
    const r = await a.app.inject({ method: 'GET', url: '/identity', headers: { cookie } });
    expect(r.statusCode).toBe(403);
  });

  it('given no role or a bad user name, when the form is sent, then 400 and no session', async () => {
    const a = await started();
    for (const payload of [
      'user=x',
      'user=x&role=admin',
      'user=%3Cscript%3E&role=operator',
      'role=operator',
    ]) {
      const res = await devForm(a, payload);
      expect(res.statusCode, payload).toBe(400);
      expect(sessionCookieOf(res), payload).toBeUndefined();
    }
    expect(a.sessions.size()).toBe(0);
  });

  it('given a token whose scopes give no console role, when it signs in, then 403 and no session is kept', async () => {
    // given a verifier that returns a principal without the hub's scopes (an IdP user with no role)
    const a = await started({
      verifier: () =>
        Promise.resolve({
          subject: 'nobody',
          clientId: 'hub-console',
          scopes: ['openid', 'profile'],
          patient: null,
        }),
    });
    // when they sign in
    const res = await devForm(a, 'user=nobody&role=operator');
    // then they are refused with the sign-in page, and nothing is kept
    expect(res.statusCode).toBe(403);
    expect(res.body).toContain('neither the operator nor the steward role');
    expect(sessionCookieOf(res)).toBeUndefined();
    expect(a.sessions.size()).toBe(0);
  });

  it('given the dev login is not configured, when its form is posted, then 404 and the sign-in page offers no form', async () => {
    const a = await started({ devLogin: false });
    const res = await devForm(a, 'user=x&role=operator');
    expect(res.statusCode).toBe(404);
    expect(sessionCookieOf(res)).toBeUndefined();
    const page = await a.app.inject({ method: 'GET', url: '/login' });
    expect(page.body).not.toContain('/login/dev');
    expect(page.body).toContain('No sign-in is configured');
  });
});

describe('console sign-in: CSRF, logout, expiry', () => {
  it('given a session, when a page POST comes without the CSRF token or with another one, then 403', async () => {
    // given an operator and a steward session
    const a = await started();
    const { cookie, csrf } = await devSignIn(a, ['operator', 'steward']);
    const posts = postsHere(a);
    expect(posts.length).toBeGreaterThan(0);
    for (const url of posts) {
      // when the POST has no token, a wrong one in the header, or another one in the form
      const none = await a.app.inject({
        method: 'POST',
        url,
        headers: { ...FORM, cookie },
        payload: 'reason=x',
      });
      const wrong = await a.app.inject({
        method: 'POST',
        url,
        headers: { ...FORM, cookie, 'x-csrf-token': `${csrf.slice(1)}x` },
        payload: 'reason=x',
      });
      const other = await a.app.inject({
        method: 'POST',
        url,
        headers: { ...FORM, cookie },
        payload: `_csrf=${'A'.repeat(32)}`,
      });
      // then each is refused by the guard
      for (const [label, r] of [
        ['none', none],
        ['wrong header', wrong],
        ['other field', other],
      ] as const) {
        expect(r.statusCode, `${url} ${label}`).toBe(403);
        expect(r.body, `${url} ${label}`).toContain('the form expired');
      }
    }
  });

  it('given a session, when the user signs out with the CSRF token, then the session is gone on the server and the cookie cleared', async () => {
    const a = await started();
    const { cookie, csrf } = await devSignIn(a, ['operator']);
    expect(a.sessions.size()).toBe(1);
    // when they sign out
    const out = await a.app.inject({
      method: 'POST',
      url: '/logout',
      headers: { ...FORM, cookie },
      payload: `_csrf=${csrf}`,
    });
    // then the server forgets the session and the browser's cookie is cleared
    expect(out.statusCode).toBe(303);
    expect(out.headers.location).toBe('/login');
    expect(a.sessions.size()).toBe(0);
    expect(out.cookies.find((c) => c.name === SESSION_COOKIE)?.value).toBe('');
    // and the old cookie, replayed, opens nothing
    const replay = await a.app.inject({ method: 'GET', url: '/flow', headers: { cookie } });
    expect(replay.statusCode).toBe(303);
    expect(replay.headers.location).toBe('/login');
  });

  it('given a session, when a cross-site form posts /logout without the token, then the session stays (only the cookie is cleared)', async () => {
    const a = await started();
    const { cookie } = await devSignIn(a, ['operator']);
    await a.app.inject({ method: 'POST', url: '/logout', headers: { ...FORM, cookie }, payload: '' });
    expect(a.sessions.size()).toBe(1);
  });

  it('given a session past its age, when a page is opened, then the browser is sent to sign in again and the session is dropped', async () => {
    // given a session of one hour
    const a = await started({ sessionMaxAgeMs: 3600_000 });
    const { cookie } = await devSignIn(a, ['operator']);
    // when the clock passes its end
    a.clock.now += 3600_000 + 1;
    const res = await a.app.inject({ method: 'GET', url: '/flow', headers: { cookie } });
    const fragment = await a.app.inject({
      method: 'GET',
      url: '/flow',
      headers: { cookie, 'hx-request': 'true' },
    });
    // then the page sends the browser to sign in, htmx gets 401, and the store no longer holds it
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/login');
    expect(fragment.statusCode).toBe(401);
    expect(a.sessions.size()).toBe(0);
  });

  it('given a forged or unknown session cookie, then it opens nothing', async () => {
    const a = await started();
    await devSignIn(a, ['operator']);
    for (const v of ['A'.repeat(43), '', 'eyJhbGciOiJub25lIn0.e30.', '../../etc/passwd']) {
      const res = await a.app.inject({
        method: 'GET',
        url: '/flow',
        headers: { cookie: `${SESSION_COOKIE}=${v}` },
      });
      expect(res.statusCode, v).toBe(303);
    }
  });
});

describe('console answers: security headers', () => {
  it('given any answer (sign-in page, redirect, 401, 403, 404, an asset, health), then it carries the CSP, no-store and no-framing headers', async () => {
    const a = await started();
    const { cookie } = await devSignIn(a, ['steward']);
    const answers: [string, LightMyRequestResponse][] = [
      ['sign-in page', await a.app.inject({ method: 'GET', url: '/login' })],
      ['redirect', await a.app.inject({ method: 'GET', url: '/flow' })],
      ['401', await a.app.inject({ method: 'GET', url: '/flow', headers: { 'hx-request': 'true' } })],
      ['403', await a.app.inject({ method: 'GET', url: '/flow', headers: { cookie } })],
      ['404', await a.app.inject({ method: 'GET', url: '/nothing-here' })],
      ['dev login 400', await devForm(a, 'user=x')],
      ['health', await a.app.inject({ method: 'GET', url: '/health' })],
    ];
    for (const [what, res] of answers) expectSecurityHeaders(res, what);
    // and a 404 does not quote the path it was asked for (a mistyped path may hold a patient id)
    const notFound = await a.app.inject({ method: 'GET', url: '/patients/MRN-Zzcanary' });
    expect(notFound.statusCode).toBe(404);
    expect(notFound.body).not.toContain('Zzcanary');
    // an asset may be cached (it holds no data), but is still never framed and runs under the CSP
    const asset = await a.app.inject({ method: 'GET', url: '/assets/console.css' });
    expect(asset.statusCode).toBe(200);
    expect(asset.headers['content-security-policy']).toContain("default-src 'self'");
    expect(asset.headers['x-frame-options']).toBe('DENY');
  });

  it('given the sign-in page, then it loads only the console’s own scripts: no inline script, style attribute or event handler', async () => {
    const a = await started();
    const page = (await a.app.inject({ method: 'GET', url: '/login' })).body;
    expect(page).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/);
    expect(page).not.toMatch(/\sstyle=/);
    expect(page).not.toMatch(/\son[a-z]+=/);
    for (const m of page.matchAll(/<script[^>]*\ssrc="([^"]+)"/g)) expect(m[1]).toMatch(/^\/assets\//);
  });
});
