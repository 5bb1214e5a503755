import type { LightMyRequestResponse } from 'fastify';
import { createTokenVerifier, generateDevKeys, mintToken } from '../../libs/auth/jwt.js';
import { dropSchema } from '../../libs/db/index.js';
import { createMetrics } from '../../libs/telemetry/metrics.js';
import { buildApi, type Api } from '../../services/api/app.js';
import type { TestContext } from './harness.js';

/** The query API in-process on a test's own schemas, with a dev issuer and one staff token. */
export interface TestApi {
  api: Api;
  /** Bearer token of one staff user with the scopes asked for. */
  token: string;
  /** GET through `inject` with the token (no port, no network). */
  get(url: string, accept?: string): Promise<LightMyRequestResponse>;
  stop(): Promise<void>;
}

export interface TestApiOptions {
  /** Read-model schemas (a projector run's `stable` names). */
  portalSchema: string;
  billingSchema?: string;
  analyticsSchema?: string;
  clinicalTopics: readonly string[];
  /** Runs the audit projector too (its group is removed on stop). */
  auditProjector?: boolean;
  subject: string;
  scope?: string[];
  tokenTtlSec?: number;
  queryTimeoutMs?: number;
  bodyLimit?: number;
}

export async function startTestApi(ctx: TestContext, opts: TestApiOptions): Promise<TestApi> {
  const auditSchema = `${ctx.schema}_audit`;
  const auditTopic = `hub.audit.v1.${ctx.id}`;
  const auditGroup = `hub.audit.projector.${ctx.id}`;
  ctx.extraTopics.push(auditTopic);
  const keys = await generateDevKeys(`api-${ctx.id}`);
  const api = await buildApi(
    {
      db: ctx.db,
      kafka: ctx.kafka,
      producer: ctx.producer,
      logger: ctx.logger,
      metrics: createMetrics({ defaultMetrics: false }),
      verifier: createTokenVerifier({
        issuer: 'https://hub.local/dev-issuer',
        audience: 'hub-api',
        jwks: keys.jwks,
      }),
    },
    {
      portalSchema: opts.portalSchema,
      billingSchema: opts.billingSchema ?? `${ctx.schema}_billing`,
      analyticsSchema: opts.analyticsSchema ?? `${ctx.schema}_analytics`,
      auditSchema,
      auditTopic,
      auditProjector: opts.auditProjector ?? false,
      ...(opts.auditProjector ? { auditGroupId: auditGroup } : {}),
      clinicalTopics: [...opts.clinicalTopics],
      rateLimit: { max: 100_000, windowMs: 60_000 },
      queryTimeoutMs: opts.queryTimeoutMs ?? 10_000,
      bodyLimit: opts.bodyLimit ?? 64 * 1024,
    },
  );
  await api.start();
  const token = await mintToken({
    keys,
    subject: opts.subject,
    scope: opts.scope ?? ['user/*.rs'],
    ttlSec: opts.tokenTtlSec ?? 3600,
  });
  return {
    api,
    token,
    get: (url, accept) =>
      api.http.inject({
        method: 'GET',
        url,
        headers: { authorization: `Bearer ${token}`, ...(accept ? { accept } : {}) },
      }),
    async stop() {
      await api.stop().catch(() => undefined);
      if (opts.auditProjector) {
        const admin = ctx.kafka.admin();
        await admin.connect();
        await admin.deleteGroups([auditGroup]).catch(() => undefined);
        await admin.disconnect();
      }
      await dropSchema(ctx.db, auditSchema).catch(() => undefined);
    },
  };
}
