import type { AuditEvent } from '@medplum/fhirtypes';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { Knex } from 'knex';
import { Registry } from 'prom-client';
import { afterEach } from 'vitest';
import { createTokenVerifier, generateDevKeys, mintToken } from '../../libs/auth/jwt.js';
import { HUB_SCOPES, type Principal } from '../../libs/auth/scopes.js';
import { dropSchema } from '../../libs/db/index.js';
import { HubError } from '../../libs/errors/index.js';
import { createLogger } from '../../libs/telemetry/logger.js';
import { createMetrics } from '../../libs/telemetry/metrics.js';
import { buildApi, type Api } from '../../services/api/app.js';
import { buildApiHttp, type ApiReaders } from '../../services/api/http.js';
import type { IdentityRoutesOptions } from '../../services/api/routes/identity.js';
import { captureFhirResponse } from './fhir-capture.js';
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
  const deliverySchema = `${ctx.schema}_delivery`;
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
      deliverySchema,
      auditTopic,
      auditProjector: opts.auditProjector ?? false,
      ...(opts.auditProjector ? { auditGroupId: auditGroup } : {}),
      clinicalTopics: [...opts.clinicalTopics],
      // As main.ts always gives one: Bundle.entry.fullUrl must be absolute (FHIR R4 bdl-*).
      publicBaseUrl: 'https://api.test',
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
    get: async (url, accept) => {
      const res = await api.http.inject({
        method: 'GET',
        url,
        headers: { authorization: `Bearer ${token}`, ...(accept ? { accept } : {}) },
      });
      // With HUB_FHIR_CAPTURE_DIR set, the FHIR bodies go to the HAPI validator too.
      captureFhirResponse(url, res.body);
      return res;
    },
    async stop() {
      await api.stop().catch(() => undefined);
      if (opts.auditProjector) {
        const admin = ctx.kafka.admin();
        await admin.connect();
        await admin.deleteGroups([auditGroup]).catch(() => undefined);
        await admin.disconnect();
      }
      await dropSchema(ctx.db, auditSchema).catch(() => undefined);
      await dropSchema(ctx.db, deliverySchema).catch(() => undefined);
    },
  };
}

/**
 * The query API's HTTP surface without Postgres or Kafka: the real app
 * (security hooks, rate limit, route plugins, error handlers) over fake
 * readers, a verifier that knows a few bearer tokens, and an audit sink
 * that keeps what it is given. For `inject` tests of what the routes decide.
 */
export const FAKE_PRINCIPALS = {
  /** A patient-portal user: patient/*.rs bound to P1. */
  patient: { subject: 'patient-p1', clientId: 'portal', scopes: ['patient/*.rs'], patient: 'P1' },
  staff: { subject: 'nurse-1', clientId: 'ehr', scopes: ['user/*.rs'], patient: null },
  billing: { subject: 'billing-svc', clientId: 'billing-svc', scopes: [HUB_SCOPES.billing], patient: null },
  analytics: { subject: 'bi-tool', clientId: 'bi-tool', scopes: [HUB_SCOPES.analytics], patient: null },
  admin: { subject: 'ops-admin', clientId: 'ops-admin', scopes: [HUB_SCOPES.admin], patient: null },
} as const satisfies Record<string, Principal>;

export type FakeTokenKind = keyof typeof FAKE_PRINCIPALS;

/**
 * Clients of the subscription routes (startFakeApi's `principals`): a reader, a writer, and a
 * wildcard system client, which must not manage subscriptions (libs/auth/scopes.ts).
 */
export const SUBSCRIPTION_PRINCIPALS = {
  subReader: {
    subject: 'ops-dash',
    clientId: 'ops-dash',
    scopes: ['system/Subscription.read'],
    patient: null,
  },
  subWriter: {
    subject: 'integration-engine',
    clientId: 'integration-engine',
    scopes: ['system/Subscription.read', 'system/Subscription.write'],
    patient: null,
  },
  wildcard: { subject: 'etl', clientId: 'etl', scopes: ['system/*.cruds'], patient: null },
} as const satisfies Record<string, Principal>;

/**
 * Clients of the identity (master patient index) routes: a data steward signed in to a
 * steward console (user context, read and decide), a read-only reviewer, and a system
 * client that may decide (its subject is its client id).
 */
export const IDENTITY_PRINCIPALS = {
  steward: {
    subject: 'steward-ann',
    clientId: 'mpi-console',
    scopes: ['user/Identity.read', 'user/Identity.write'],
    patient: null,
  },
  reviewer: { subject: 'reviewer-bo', clientId: 'mpi-console', scopes: ['user/Identity.rs'], patient: null },
  mpiBot: { subject: 'mpi-bot', clientId: 'mpi-bot', scopes: ['system/Identity.c'], patient: null },
} as const satisfies Record<string, Principal>;

/** A bearer token whose verification fails as if the identity provider were down. */
export const JWKS_DOWN_TOKEN = 'jwks-down';

export interface FakeApi {
  http: FastifyInstance;
  /** Every AuditEvent recorded, in order. */
  audits: AuditEvent[];
  /** Every log line the app wrote (JSON), to check for PHI. */
  logLines: string[];
  /** From now on, the audit sink fails as a broker that does not acknowledge. */
  failAudit(fail: boolean): void;
  /** GET with the bearer token of that kind (none: no Authorization header). */
  get(url: string, as?: FakeTokenKind, headers?: Record<string, string>): Promise<LightMyRequestResponse>;
  /** POST a form-encoded body. */
  postForm(url: string, form: string, as?: FakeTokenKind): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

/** A reader method no test asked for: reaching it is a failure the test sees as a 500. */
const unexpected = (what: string) => () => Promise.reject(new Error(`unexpected read: ${what}`));

const noReaders: ApiReaders = {
  portal: {
    patient: unexpected('patient'),
    // Every patient a fake token names exists unless a test says otherwise.
    patientContext: () => Promise.resolve('active' as const),
    // Every patient is its own person unless a test links records.
    person: (id: string) => Promise.resolve([id]),
    search: unexpected('search'),
    everything: unexpected('everything'),
    read: unexpected('read'),
  },
  binaries: {
    owners: unexpected('owners'),
    read: unexpected('binary'),
    hashes: () => Promise.resolve(new Map()),
  },
  billing: {
    accounts: unexpected('accounts'),
    charges: unexpected('charges'),
    worklist: unexpected('worklist'),
  },
  analytics: { rows: unexpected('analytics rows') },
  admin: {
    verifyAudit: unexpected('verify'),
    auditEvents: unexpected('audit events'),
    clinicalReaders: unexpected('consumers'),
  },
};

export async function startFakeApi(
  readers: { [K in keyof ApiReaders]?: Partial<ApiReaders[K]> } = {},
  opts: {
    bodyLimit?: number;
    rateLimitMax?: number;
    analyticsSchema?: string;
    /** Serve /subscriptions and /fhir/Subscription over this database and delivery schema. */
    subscriptions?: { db: Knex; schema: string };
    /** Serve /identity (the master patient index's steward routes) over this store. */
    identity?: IdentityRoutesOptions;
    /** Further principals, each known by the bearer token `tok-<key>`. */
    principals?: Record<string, Principal>;
  } = {},
): Promise<FakeApi> {
  const audits: AuditEvent[] = [];
  const logLines: string[] = [];
  let auditFails = false;
  const tokens = new Map<string, Principal>(
    Object.entries({ ...FAKE_PRINCIPALS, ...opts.principals }).map(([k, p]) => [`tok-${k}`, p]),
  );
  const http = await buildApiHttp({
    readers: {
      portal: { ...noReaders.portal, ...readers.portal },
      binaries: { ...noReaders.binaries, ...readers.binaries },
      billing: { ...noReaders.billing, ...readers.billing },
      analytics: { ...noReaders.analytics, ...readers.analytics },
      admin: { ...noReaders.admin, ...readers.admin },
    },
    analyticsSchema: opts.analyticsSchema ?? 'analytics',
    verifier: (token) => {
      if (token === JWKS_DOWN_TOKEN) {
        return Promise.reject(new HubError('HUB_AUTH_UNAVAILABLE', 'JWKS endpoint did not answer'));
      }
      const p = tokens.get(token);
      return p ? Promise.resolve(p) : Promise.reject(new HubError('HUB_UNAUTHENTICATED', 'invalid token'));
    },
    audit: {
      record: (event) => {
        if (auditFails) return Promise.reject(new HubError('HUB_KAFKA_UNAVAILABLE', 'no ack'));
        audits.push(event);
        return Promise.resolve();
      },
    },
    observer: 'hub-api-test',
    logger: createLogger({
      name: 'api-inject',
      level: 'debug',
      destination: { write: (line: string) => void logLines.push(line) },
    }),
    metrics: new Registry(),
    publicBaseUrl: 'https://api.test',
    rateLimit: { max: opts.rateLimitMax ?? 10_000, windowMs: 60_000 },
    bodyLimit: opts.bodyLimit ?? 16 * 1024,
    ...(opts.subscriptions ? { subscriptions: opts.subscriptions } : {}),
    ...(opts.identity ? { identity: opts.identity } : {}),
  });
  await http.ready();
  const auth = (as?: FakeTokenKind): Record<string, string> =>
    as ? { authorization: `Bearer tok-${as}` } : {};
  return {
    http,
    audits,
    logLines,
    failAudit: (fail) => {
      auditFails = fail;
    },
    get: (url, as, headers = {}) => http.inject({ method: 'GET', url, headers: { ...auth(as), ...headers } }),
    postForm: (url, form, as) =>
      http.inject({
        method: 'POST',
        url,
        headers: { ...auth(as), 'content-type': 'application/x-www-form-urlencoded' },
        payload: form,
      }),
    close: () => http.close(),
  };
}

/** For a test file: `startApi` starts a fake API for the current test, closed after it. */
export function fakeApiPerTest(): (...args: Parameters<typeof startFakeApi>) => Promise<FakeApi> {
  let current: FakeApi | undefined;
  afterEach(async () => {
    await current?.close();
    current = undefined;
  });
  return async (...args) => (current = await startFakeApi(...args));
}
