// Entry point: the shared service kit validates the environment once, makes
// the clients and runs start-up; this file says what is the console's own.
import { resolve } from 'node:path';
import * as oidc from 'openid-client';
import { databaseEnv, schemaNameEnv, z } from '../../libs/config/index.js';
import { AUDIT_TOPIC } from '../../libs/audit/topic.js';
import { authEnv, verifierFromEnv } from '../../libs/auth/env.js';
import { ensureDevKeys } from '../../libs/auth/jwt.js';
import { createRegistryClient, registrySecurityFromEnv } from '../../libs/events/registry.js';
import { IDENTITY_SCHEMA } from '../../libs/identity/store.js';
import { runService } from '../../libs/service/index.js';
import { buildConsole } from './service.js';

const flag = (dflt: 'true' | 'false') =>
  z
    .enum(['true', 'false'])
    .default(dflt)
    .transform((v) => v === 'true');

await runService({
  name: 'console',
  port: 8110,
  env: {
    ...databaseEnv,
    // The console's tokens have their own audience: an API token does not open it, nor its token the API.
    ...authEnv('hub-console'),
    /** The development sign-in form (only honoured without AUTH_JWKS_URL: never beside a real identity provider). */
    CONSOLE_DEV_LOGIN: flag('false'),
    /** OAuth2 / OpenID Connect sign-in: the provider's issuer URL (discovery), the console's client. */
    CONSOLE_OIDC_ISSUER: z.url().optional(),
    CONSOLE_OIDC_CLIENT_ID: z.string().min(1).optional(),
    CONSOLE_OIDC_CLIENT_SECRET_FILE: z.string().min(1).optional(),
    /** Where the provider sends the browser back: `<console base URL>/login/callback`. */
    CONSOLE_OIDC_REDIRECT_URL: z.url().optional(),
    CONSOLE_OIDC_SCOPE: z.string().min(1).default('openid system/hub.operator user/Identity.crs'),
    CONSOLE_OIDC_RESOURCE: z.url().optional(),
    /** Only over https may a cookie be Secure; set false for plain-http local use. */
    CONSOLE_SECURE_COOKIES: flag('true'),
    CONSOLE_SESSION_HOURS: z.coerce.number().min(0.1).max(24).default(8),
    CONSOLE_REFRESH_MS: z.coerce.number().int().min(1000).max(60_000).default(5000),
    /** Services whose readiness the flow page shows (`name=http://host:port,...`); unset: those `hub up` runs. */
    HUB_SERVICE_URLS: z.string().optional(),
    ANALYTICS_SCHEMA: schemaNameEnv('analytics'),
    BILLING_SCHEMA: schemaNameEnv('billing'),
    IDENTITY_SCHEMA: schemaNameEnv(IDENTITY_SCHEMA),
    HUB_OPS_SCHEMA: schemaNameEnv('hub_ops'),
    DELIVERY_SCHEMA: schemaNameEnv('delivery'),
    AUDIT_SCHEMA: schemaNameEnv('audit'),
    AUDIT_TOPIC: z.string().optional(),
  },
  checks: [
    {
      ok: (c) =>
        !c.CONSOLE_OIDC_ISSUER ||
        (c.CONSOLE_OIDC_CLIENT_ID !== undefined && c.CONSOLE_OIDC_REDIRECT_URL !== undefined),
      path: 'CONSOLE_OIDC_ISSUER',
      message: 'needs CONSOLE_OIDC_CLIENT_ID and CONSOLE_OIDC_REDIRECT_URL',
    },
    {
      ok: (c) => !c.CONSOLE_DEV_LOGIN || c.AUTH_JWKS_URL === undefined,
      path: 'CONSOLE_DEV_LOGIN',
      message: 'the development sign-in cannot be on beside an identity provider (AUTH_JWKS_URL)',
    },
  ],
  connect: async (k) => {
    const c = k.config;
    const devKeys = c.CONSOLE_DEV_LOGIN ? await ensureDevKeys(resolve(c.AUTH_DEV_KEYS_DIR)) : null;
    const secret = c.CONSOLE_OIDC_CLIENT_SECRET_FILE
      ? (await import('node:fs')).readFileSync(c.CONSOLE_OIDC_CLIENT_SECRET_FILE, 'utf8').trim()
      : undefined;
    return {
      db: k.database(c.DATABASE_URL, { pool: { min: 0, max: 5 } }),
      verifier: await verifierFromEnv(c, k.logger),
      registry: createRegistryClient(c.SCHEMA_REGISTRY_URL, registrySecurityFromEnv(c)),
      devLogin: devKeys ? { keys: devKeys, issuer: c.AUTH_ISSUER, audience: c.AUTH_AUDIENCE } : null,
      // Discovery is retried by start-up like any dependency (see service.ts); here only what it needs.
      oidcClient:
        c.CONSOLE_OIDC_ISSUER && c.CONSOLE_OIDC_CLIENT_ID && c.CONSOLE_OIDC_REDIRECT_URL
          ? {
              issuer: new URL(c.CONSOLE_OIDC_ISSUER),
              clientId: c.CONSOLE_OIDC_CLIENT_ID,
              secret,
              redirectUri: c.CONSOLE_OIDC_REDIRECT_URL,
              scope: c.CONSOLE_OIDC_SCOPE,
              resource: c.CONSOLE_OIDC_RESOURCE,
            }
          : null,
    };
  },
  build: (k, conn) => {
    const c = k.config;
    return buildConsole(
      {
        ...conn,
        kafka: k.kafka,
        codec: k.codec,
        producer: k.producer,
        logger: k.logger,
        metrics: k.metrics,
        discover: (o) =>
          oidc.discovery(o.issuer, o.clientId, o.secret, undefined, {
            // A provider on plain http is allowed only for a local one (tests, a lab); production issuers are https.
            ...(o.issuer.protocol === 'http:' ? { execute: [oidc.allowInsecureRequests] } : {}),
          }),
      },
      {
        secureCookies: c.CONSOLE_SECURE_COOKIES,
        sessionMaxAgeMs: c.CONSOLE_SESSION_HOURS * 3600_000,
        settings: {
          topic: k.topic,
          analyticsSchema: c.ANALYTICS_SCHEMA,
          billingSchema: c.BILLING_SCHEMA,
          identitySchema: c.IDENTITY_SCHEMA,
          opsSchema: c.HUB_OPS_SCHEMA,
          deliverySchema: c.DELIVERY_SCHEMA,
          auditSchema: c.AUDIT_SCHEMA,
          auditTopic: c.AUDIT_TOPIC ?? k.topic(AUDIT_TOPIC),
          serviceUrls: c.HUB_SERVICE_URLS,
          refreshMs: c.CONSOLE_REFRESH_MS,
        },
      },
    );
  },
});
