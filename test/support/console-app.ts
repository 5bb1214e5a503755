import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { Knex } from 'knex';
import { createTokenVerifier, DEV_ISSUER, generateDevKeys, type DevKeys } from '../../libs/auth/jwt.js';
import type { AuditEvent } from '@medplum/fhirtypes';
import { createLogger } from '../../libs/telemetry/logger.js';
import { buildConsoleApp } from '../../services/console/app.js';
import type { LoginOptions, OidcLogin } from '../../services/console/auth.js';
import type { ConsoleContext, ConsoleSettings } from '../../services/console/context.js';
import { createSessionStore, SESSION_COOKIE, type SessionStore } from '../../services/console/session.js';

/**
 * The console's HTTP app in the test's process, for `inject` tests of its
 * sign-in and guards: a real session store and token verifier, a clock the
 * test moves, and no database or broker (a page handler that reaches for
 * them fails loudly: these tests stop at the guard).
 */
export const CONSOLE_AUDIENCE = 'hub-console';

/**
 * The console's page POST routes, as their owners named them (a test keeps
 * those the build has): each must refuse without a session or CSRF token.
 */
export const CONSOLE_POST_ROUTES = [
  '/dead-letters/open',
  '/dead-letters/redrive',
  '/dead-letters/discard',
  '/dead-letters/bulk',
  '/messages',
  '/messages/search',
  '/messages/open',
  '/identity/decide',
] as const;

/** The default schemas and topics; a test of a page against real servers spreads its own over them. */
export const TEST_CONSOLE_SETTINGS: ConsoleSettings = {
  topic: (n: string) => n,
  analyticsSchema: 'analytics',
  billingSchema: 'billing',
  identitySchema: 'identity',
  opsSchema: 'hub_ops',
  deliverySchema: 'delivery',
  auditSchema: 'audit',
  auditTopic: 'hub.audit.v1',
  serviceUrls: '',
  refreshMs: 5000,
};

export interface ConsoleTestApp {
  app: FastifyInstance;
  sessions: SessionStore;
  keys: DevKeys;
  /** The test clock (ms): sessions expire against it. */
  clock: { now: number };
  /** Audit events the console recorded. */
  audited: AuditEvent[];
  close(): Promise<void>;
}

const unreachable = (what: string) =>
  new Proxy(
    {},
    {
      get: (_t, p) => {
        if (p === 'then') return undefined;
        throw new Error(`console test app: ${what}.${String(p)} is not available here`);
      },
    },
  );

export async function consoleTestApp(
  o: {
    devLogin?: boolean;
    oidc?: OidcLogin | null;
    verifier?: LoginOptions['verifier'];
    sessionMaxAgeMs?: number;
    /** Parts of the context a test provides for real (e.g. `db` and `settings` for int tests of a page). */
    ctx?: Partial<ConsoleContext>;
  } = {},
): Promise<ConsoleTestApp> {
  const keys = await generateDevKeys();
  const clock = { now: Date.now() };
  const now = () => clock.now;
  const sessions = createSessionStore(now);
  const logger = createLogger({ name: 'console-test', level: 'silent' });
  const verifier =
    o.verifier ?? createTokenVerifier({ issuer: DEV_ISSUER, audience: CONSOLE_AUDIENCE, jwks: keys.jwks });
  const audited: AuditEvent[] = [];
  const ctx = {
    db: unreachable('db') as Knex,
    kafka: unreachable('kafka'),
    codec: unreachable('codec'),
    registry: unreachable('registry'),
    producer: unreachable('producer'),
    audit: {
      record: (e: AuditEvent) => Promise.resolve(void audited.push(e)),
      recordAll: (es: readonly AuditEvent[]) => Promise.resolve(void audited.push(...es)),
    },
    verifier,
    logger,
    settings: TEST_CONSOLE_SETTINGS,
    now,
    ...o.ctx,
  } as unknown as ConsoleContext;
  const app = await buildConsoleApp(ctx, {
    login: {
      sessions,
      verifier,
      logger,
      secureCookies: true,
      sessionMaxAgeMs: o.sessionMaxAgeMs ?? 3600_000,
      devLogin: o.devLogin === false ? null : { keys, issuer: DEV_ISSUER, audience: CONSOLE_AUDIENCE },
      oidc: o.oidc ?? null,
    },
    readiness: {},
  });
  await app.ready();
  return { app, sessions, keys, clock, audited, close: () => app.close() };
}

/** The session cookie an answer set, or undefined. */
export function sessionCookieOf(res: LightMyRequestResponse) {
  return res.cookies.find((c) => c.name === SESSION_COOKIE && c.value !== '');
}

/** Signs in through the development form; returns the cookie and the session's CSRF token. */
export async function devSignIn(
  t: ConsoleTestApp,
  roles: readonly ('operator' | 'steward')[],
  user = 'test-operator',
): Promise<{ cookie: string; csrf: string; res: LightMyRequestResponse }> {
  const pairs: [string, string][] = [['user', user], ...roles.map((r): [string, string] => ['role', r])];
  const body = new URLSearchParams(pairs).toString();
  const res = await t.app.inject({
    method: 'POST',
    url: '/login/dev',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: body,
  });
  const c = sessionCookieOf(res);
  if (!c) throw new Error(`dev sign-in set no session cookie (${res.statusCode}): ${res.body.slice(0, 200)}`);
  const s = t.sessions.get(c.value);
  if (!s) throw new Error('dev sign-in made no session');
  return { cookie: `${SESSION_COOKIE}=${c.value}`, csrf: s.csrf, res };
}
