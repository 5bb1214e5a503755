import type { FastifyInstance } from 'fastify';
import type { Knex } from 'knex';
import { migrateAudit } from '../../libs/audit/store.js';
import { startAuditLagMonitor, type AuditLagLimits, type AuditLagMonitor } from '../../libs/audit/lag.js';
import { createAuditMetrics } from '../../libs/audit/metrics.js';
import {
  auditDlqTopic,
  auditProjectorGroup,
  createAuditProjector,
  createAuditSink,
  ensureAuditTopic,
  type AuditProjector,
} from '../../libs/audit/topic.js';
import type { TokenVerifier } from '../../libs/auth/jwt.js';
import { migrateDelivery } from '../../libs/delivery/store.js';
import { migrateIdentity } from '../../libs/identity/store.js';
import { postgresReady, type ReadinessCheck } from '../../libs/http/index.js';
import type { KafkaClient } from '../../libs/kafka/client.js';
import type { EventProducer } from '../../libs/kafka/producer.js';
import type { Logger } from '../../libs/telemetry/logger.js';
import type { HubMetrics } from '../../libs/telemetry/metrics.js';
import { buildApiHttp, type ApiReaders } from './http.js';
import { createAdminReader } from './readers/admin.js';
import { createAnalyticsReader } from './readers/analytics.js';
import { createBillingReader } from './readers/billing.js';
import { createBinaryReader } from './readers/binary.js';
import { createPortalReader } from './readers/portal.js';
import { createIdentityStore } from './routes/identity.js';

export interface ApiDeps {
  db: Knex;
  kafka: KafkaClient;
  producer: EventProducer;
  logger: Logger;
  metrics: HubMetrics;
  verifier: TokenVerifier;
}

export interface ApiConfig {
  /** Stable schemas of the read models (views that follow rebuilds). */
  portalSchema: string;
  billingSchema: string;
  analyticsSchema: string;
  /** Where the audit table lives (created by the API's migration). */
  auditSchema: string;
  /** Where outbound subscriptions live (DELIVERY_SCHEMA; migrated by the API and the delivery service). */
  deliverySchema: string;
  /**
   * The master patient index (IDENTITY_SCHEMA; migrated by the API and the identity-matcher).
   * Without it, the steward routes (/identity) are not served.
   */
  identitySchema?: string;
  auditTopic: string;
  /** Run the audit-topic → table projector in this process. */
  auditProjector: boolean;
  auditGroupId?: string;
  /** The audit DLQ; default `hub.dlq.audit` (main.ts applies the deployment's topic naming). */
  auditDlqTopic?: string;
  /** The audit chain key (libs/audit/key.ts); without it rows are appended unkeyed (chain version 1). */
  auditChainKey?: Buffer | null;
  /** When the projector's lag makes /ready fail (AUDIT_MAX_LAG, AUDIT_STALL_MS) and how often it is read. */
  auditLag?: AuditLagLimits & { intervalMs?: number };
  /** Clinical topic names, for the who-reads-what view. */
  clinicalTopics: readonly string[];
  /**
   * Base of Bundle links (`https://api.example.org`): main.ts gives PUBLIC_BASE_URL or the
   * listen address; never taken from a request's Host header. Absent: relative links.
   */
  publicBaseUrl?: string;
  rateLimit: { max: number; windowMs: number };
  queryTimeoutMs: number;
  bodyLimit: number;
  observer?: string;
}

export interface Api {
  http: FastifyInstance;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** The readers over the read models' stable schemas and the audit table, every read under the deadline. */
function readersOf(deps: ApiDeps, cfg: ApiConfig): ApiReaders {
  const t = cfg.queryTimeoutMs;
  return {
    portal: createPortalReader(deps.db, cfg.portalSchema, t),
    binaries: createBinaryReader(deps.db, cfg.portalSchema, t),
    billing: createBillingReader(deps.db, cfg.billingSchema, t),
    analytics: createAnalyticsReader(deps.db, t),
    admin: createAdminReader(
      deps.db,
      cfg.auditSchema,
      deps.kafka,
      cfg.clinicalTopics,
      cfg.auditChainKey ?? null,
    ),
  };
}

/** Postgres answers, and the audit projector (when it runs here) keeps up with the audit topic. */
function readinessOf(
  deps: ApiDeps,
  cfg: ApiConfig,
  projector: () => AuditProjector | null,
  lag: () => AuditLagMonitor | null,
) {
  const checks: Record<string, ReadinessCheck> = {
    postgres: postgresReady(deps.db),
    audit: () => {
      if (!cfg.auditProjector) return Promise.resolve({ ok: true });
      const p = projector();
      if (!p) return Promise.resolve({ ok: false, detail: 'starting' });
      // The consumer polls every 100 ms even when idle; silence means it is stuck or gone.
      const idle = Date.now() - p.lastProgressAt();
      if (idle >= 60_000) return Promise.resolve({ ok: false, detail: `no progress for ${idle} ms` });
      // Fetching is not appending: the table must keep up with the topic (libs/audit/lag.ts).
      return Promise.resolve(lag()?.check() ?? { ok: false, detail: 'measuring audit lag' });
    },
  };
  return checks;
}

/** Starts the audit-topic → table consumer; a half-started one is let go, so that start can be tried again. */
async function startAuditProjector(deps: ApiDeps, cfg: ApiConfig, log: Logger): Promise<AuditProjector> {
  const metrics = createAuditMetrics(deps.metrics.registry);
  const p = createAuditProjector({
    kafka: deps.kafka,
    db: deps.db,
    schema: cfg.auditSchema,
    topic: cfg.auditTopic,
    groupId: auditGroupOf(cfg),
    dlqTopic: cfg.auditDlqTopic ?? auditDlqTopic(),
    producer: deps.producer,
    chainKey: cfg.auditChainKey ?? null,
    logger: log,
    onRejected: (reason) => metrics.deadLetters.inc({ reason }),
  });
  try {
    await p.start();
  } catch (err) {
    await p.stop().catch(() => undefined);
    throw err;
  }
  return p;
}

function auditGroupOf(cfg: ApiConfig): string {
  return cfg.auditGroupId ?? auditProjectorGroup(cfg.auditSchema);
}

/** Reads the projector's lag into the readiness check and the hub_audit_lag gauge. */
function startLagMonitor(deps: ApiDeps, cfg: ApiConfig, log: Logger): Promise<AuditLagMonitor> {
  const gauge = createAuditMetrics(deps.metrics.registry).lag;
  return startAuditLagMonitor({
    kafka: deps.kafka,
    topic: cfg.auditTopic,
    groupId: auditGroupOf(cfg),
    limits: { maxLag: cfg.auditLag?.maxLag ?? 1000, stallMs: cfg.auditLag?.stallMs ?? 60_000 },
    intervalMs: cfg.auditLag?.intervalMs ?? 5000,
    logger: log,
    onLag: (l) => gauge.set(l.lag),
  });
}

/**
 * The query API: FHIR portal, billing, analytics and admin routes over the
 * read models, every PHI request authenticated, scoped and audited. Built from
 * injected clients; main.ts (through libs/service) owns config, connections
 * and signals.
 */
export async function buildApi(deps: ApiDeps, cfg: ApiConfig): Promise<Api> {
  const log = deps.logger.child({ svc: 'api' });
  let projector: AuditProjector | null = null;
  let lag: AuditLagMonitor | null = null;
  const http = await buildApiHttp({
    readers: readersOf(deps, cfg),
    analyticsSchema: cfg.analyticsSchema,
    verifier: deps.verifier,
    audit: createAuditSink(deps.producer, cfg.auditTopic),
    observer: cfg.observer ?? 'hub-api',
    logger: log,
    metrics: deps.metrics.registry,
    readiness: readinessOf(
      deps,
      cfg,
      () => projector,
      () => lag,
    ),
    publicBaseUrl: cfg.publicBaseUrl ?? '',
    rateLimit: cfg.rateLimit,
    bodyLimit: cfg.bodyLimit,
    subscriptions: { db: deps.db, schema: cfg.deliverySchema },
    ...(cfg.identitySchema
      ? { identity: { store: createIdentityStore(deps.db, cfg.identitySchema, cfg.queryTimeoutMs) } }
      : {}),
  });
  return {
    http,
    async start() {
      await migrateAudit(deps.db, cfg.auditSchema);
      await migrateDelivery(deps.db, cfg.deliverySchema);
      if (cfg.identitySchema) await migrateIdentity(deps.db, cfg.identitySchema);
      await ensureAuditTopic(deps.kafka, cfg.auditTopic, cfg.auditDlqTopic ?? auditDlqTopic());
      if (cfg.auditProjector) {
        projector = await startAuditProjector(deps, cfg, log);
        lag = await startLagMonitor(deps, cfg, log);
      }
      await http.ready();
    },
    async stop() {
      await http.close();
      lag?.stop();
      lag = null;
      const p = projector;
      projector = null;
      if (p) await p.stop();
    },
  };
}
