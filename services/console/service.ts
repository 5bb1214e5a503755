import type { Knex } from 'knex';
import type * as oidc from 'openid-client';
import { auditDlqTopic, createAuditSink, ensureAuditTopic } from '../../libs/audit/topic.js';
import { migrateIdentity } from '../../libs/identity/store.js';
import type { DevKeys, TokenVerifier } from '../../libs/auth/jwt.js';
import { toHubError } from '../../libs/errors/index.js';
import type { EventCodec } from '../../libs/events/codec.js';
import type { RegistryClient } from '../../libs/events/registry.js';
import type { KafkaClient } from '../../libs/kafka/client.js';
import type { EventProducer } from '../../libs/kafka/producer.js';
import type { ServiceParts } from '../../libs/service/index.js';
import type { Logger } from '../../libs/telemetry/logger.js';
import type { HubMetrics } from '../../libs/telemetry/metrics.js';
import { buildConsoleApp } from './app.js';
import type { OidcLogin } from './auth.js';
import type { ConsoleContext, ConsoleSettings } from './context.js';
import { createSessionStore } from './session.js';
import { postgresReady } from '../../libs/http/index.js';

export interface OidcClientSettings {
  issuer: URL;
  clientId: string;
  secret: string | undefined;
  redirectUri: string;
  scope: string;
  resource: string | undefined;
}

export interface ConsoleDeps {
  db: Knex;
  kafka: KafkaClient;
  codec: EventCodec;
  registry: RegistryClient;
  producer: EventProducer;
  verifier: TokenVerifier;
  logger: Logger;
  metrics: HubMetrics;
  devLogin: { keys: DevKeys; issuer: string; audience: string } | null;
  oidcClient: OidcClientSettings | null;
  discover(o: OidcClientSettings): Promise<oidc.Configuration>;
  now?: () => number;
}

export interface ConsoleConfig {
  secureCookies: boolean;
  sessionMaxAgeMs: number;
  settings: ConsoleSettings;
}

/** The console as a service: its app, its start-up steps (Postgres, the identity provider) and its stop. */
export async function buildConsole(deps: ConsoleDeps, cfg: ConsoleConfig): Promise<ServiceParts> {
  const ctx: ConsoleContext = {
    db: deps.db,
    kafka: deps.kafka,
    codec: deps.codec,
    registry: deps.registry,
    producer: deps.producer,
    audit: createAuditSink(deps.producer, cfg.settings.auditTopic),
    verifier: deps.verifier,
    logger: deps.logger,
    settings: cfg.settings,
    now: deps.now ?? Date.now,
  };
  const sso: OidcLogin | null = deps.oidcClient
    ? {
        config: null,
        redirectUri: deps.oidcClient.redirectUri,
        scope: deps.oidcClient.scope,
        ...(deps.oidcClient.resource ? { resource: deps.oidcClient.resource } : {}),
      }
    : null;
  const http = await buildConsoleApp(ctx, {
    login: {
      sessions: createSessionStore(ctx.now),
      verifier: deps.verifier,
      logger: deps.logger,
      secureCookies: cfg.secureCookies,
      sessionMaxAgeMs: cfg.sessionMaxAgeMs,
      devLogin: deps.devLogin,
      oidc: sso,
    },
    readiness: {
      postgres: postgresReady(deps.db),
      ...(sso ? { 'identity-provider': () => Promise.resolve({ ok: sso.config !== null }) } : {}),
    },
    metrics: deps.metrics.registry,
  });
  const oidcClient = deps.oidcClient;
  return {
    http,
    steps: [
      {
        // The steward worklist's tables (the API and the matcher migrate them too: idempotent).
        name: 'postgres (identity schema)',
        run: () => migrateIdentity(deps.db, cfg.settings.identitySchema),
      },
      {
        // Every PHI view is audited before it is shown: without the audit topic nothing could be.
        name: 'kafka (audit topic)',
        run: () => ensureAuditTopic(deps.kafka, cfg.settings.auditTopic, auditDlqTopic(cfg.settings.topic)),
      },
      ...(sso && oidcClient
        ? [
            {
              name: 'identity provider discovery',
              run: async () => {
                try {
                  sso.config = await deps.discover(oidcClient);
                } catch (err) {
                  throw toHubError(err, 'HUB_AUTH_UNAVAILABLE');
                }
              },
            },
          ]
        : []),
    ],
    stop: () => http.close(),
  };
}
