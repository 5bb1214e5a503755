import {
  DEV_ISSUER,
  createTokenVerifier,
  generateDevKeys,
  mintToken,
  type DevKeys,
  type TokenVerifier,
} from '../../libs/auth/jwt.js';
import type { ClinicalEvent } from '../../libs/events/index.js';
import {
  keyOf,
  type FhirStore,
  type ImportCheckpoint,
  type StoredResource,
} from '../../libs/fhir/import/store.js';
import type { Knex } from '../../libs/db/index.js';
import type { IdentityPolicy } from '../../libs/identity/index.js';
import type { EventProducer, RawRecord } from '../../libs/kafka/producer.js';
import { createTransactionalProducer, type TransactionalProducer } from '../../libs/kafka/transactional.js';
import { createMetrics } from '../../libs/telemetry/metrics.js';
import { buildFhirAdapter, type FhirAdapter } from '../../services/adapter-fhir/app.js';
import type { FhirClients } from '../../services/adapter-fhir/clients.js';
import type { Caller } from '../../services/adapter-fhir/routes/common.js';
import { INGEST_REALM } from '../../services/adapter-fhir/security.js';
import { createWriter, type Writer } from '../../services/adapter-fhir/writer.js';
import { MRN_SYSTEM } from '../fixtures/fhir/generate.js';
import type { TestContext } from './harness.js';

/**
 * The adapter's identity provider in tests: one key pair per test file (as an IdP's JWKS),
 * tokens for the adapter's audience, and the client every test writes as by default.
 */
export const TEST_CLIENT = 'test-client';
export const TEST_SOURCE = 'fhir-test';
export const TEST_CLIENTS: FhirClients = new Map([[TEST_CLIENT, [TEST_SOURCE]]]);

let testKeys: Promise<DevKeys> | undefined;
const keys = () => (testKeys ??= generateDevKeys('fhir-test-idp'));

export async function fhirTestVerifier(): Promise<TokenVerifier> {
  return createTokenVerifier({ issuer: DEV_ISSUER, audience: INGEST_REALM, jwks: (await keys()).jwks });
}

/** A backend-services token (client-credentials grant) for `client`, by default writing and reading any type. */
export async function fhirToken(
  o: { client?: string; scopes?: readonly string[]; audience?: string } = {},
): Promise<string> {
  const client = o.client ?? TEST_CLIENT;
  return mintToken({
    keys: await keys(),
    subject: client,
    clientId: client,
    scope: o.scopes ?? ['system/*.cud', 'system/*.rs'],
    ttlSec: 3600,
    audience: o.audience ?? INGEST_REALM,
  });
}

/** `{ authorization: 'Bearer …' }` for fhirToken(o). */
export async function fhirAuth(o: Parameters<typeof fhirToken>[0] = {}): Promise<{ authorization: string }> {
  return { authorization: `Bearer ${await fhirToken(o)}` };
}

/** A Caller for route tests (no security hooks): writes as TEST_SOURCE; `patients`/`reasons` record what it was told. */
export function testCaller(
  o: Partial<Pick<Caller, 'scopes' | 'sourceSystem' | 'systems'>> = {},
): Caller & { patients: string[]; reasons: string[] } {
  const patients: string[] = [];
  const reasons: string[] = [];
  return {
    clientId: TEST_CLIENT,
    scopes: o.scopes ?? ['system/*.cud', 'system/*.rs'],
    sourceSystem: o.sourceSystem ?? TEST_SOURCE,
    systems: o.systems ?? [o.sourceSystem ?? TEST_SOURCE],
    patients,
    reasons,
    touched: (p) => patients.push(p),
    refused: (r) => reasons.push(r),
  };
}

/** The FHIR adapter in-process on a test's topics and schema, with its own transactional producer. */
export interface TestFhirAdapter {
  adapter: FhirAdapter;
  tx: TransactionalProducer;
  /** Where its AuditEvents go. */
  auditTopic: string;
  /** Headers with a token of TEST_CLIENT (write and read any type). */
  auth: { authorization: string };
  stop(): Promise<void>;
}

export async function startTestFhirAdapter(
  ctx: TestContext,
  o: {
    policy: IdentityPolicy;
    maxBodyBytes: number;
    baseUrl?: string;
    /** Runs before each transaction commits (e.g. to inject a failure). */
    beforeCommit?: () => Promise<void>;
    /** Default: TEST_CLIENT writing as TEST_SOURCE. */
    clients?: FhirClients;
    /** One of several instances on this context: its own transactional id (a shared one fences the other). */
    instance?: string;
    /** A pool of its own for cross-instance write locks, as main.ts gives it. */
    lockDb?: Knex;
  },
): Promise<TestFhirAdapter> {
  const dlqTopic = `hub.dlq.adapter-fhir.${ctx.id}`;
  // Its own audit topic: the test API's (test/support/api.ts) is `hub.audit.v1.<id>`, and a
  // test may start both (a topic listed twice fails the cleanup's delete).
  const auditTopic = `hub.audit.v1.fhir.${ctx.id}`;
  // Several instances on one context share these topics, listed once for the cleanup.
  for (const t of [dlqTopic, auditTopic]) if (!ctx.extraTopics.includes(t)) ctx.extraTopics.push(t);
  const tx = createTransactionalProducer({
    kafka: ctx.kafka,
    codec: ctx.codec,
    transactionalId: `tx-${ctx.id}${o.instance ? `-${o.instance}` : ''}`,
    topicFor: ctx.topicFor,
    ...(o.beforeCommit ? { beforeCommit: o.beforeCommit } : {}),
  });
  await tx.connect();
  const adapter = buildFhirAdapter(
    {
      db: ctx.db,
      kafka: ctx.kafka,
      producer: ctx.producer,
      txProducer: tx,
      logger: ctx.logger,
      metrics: createMetrics({ defaultMetrics: false }),
      policy: o.policy,
      verifier: await fhirTestVerifier(),
      ...(o.lockDb ? { lockDb: o.lockDb } : {}),
    },
    {
      schema: ctx.schema,
      dlqTopic,
      auditTopic,
      clients: o.clients ?? TEST_CLIENTS,
      sourceSystem: TEST_SOURCE,
      maxBodyBytes: o.maxBodyBytes,
      ...(o.baseUrl ? { baseUrl: o.baseUrl } : {}),
    },
  );
  await adapter.start();
  return {
    adapter,
    tx,
    auditTopic,
    auth: await fhirAuth(),
    async stop() {
      await adapter.stop();
      await tx.disconnect();
    },
  };
}

/**
 * A store whose n-th save (1-based) fails: an import then stops after that chunk's
 * events were acknowledged and before its rows and checkpoint were written, as a
 * process killed at that moment would.
 */
export function storeFailingOnSave(store: FhirStore, n: number): FhirStore {
  let saves = 0;
  return {
    ...store,
    save(rows) {
      saves++;
      if (saves === n) return Promise.reject(new Error(`simulated crash after publishing chunk ${n}`));
      return store.save(rows);
    },
  };
}

/** The adapter's store in memory, for route tests without Postgres; `rows` is what was saved. */
export function memoryFhirStore(): FhirStore & { rows: Map<string, StoredResource> } {
  const rows = new Map<string, StoredResource>();
  const byIdentifier = new Map<string, string>();
  const checkpoints = new Map<string, ImportCheckpoint>();
  return {
    rows,
    migrate: () => Promise.resolve(),
    getMany(keys) {
      const out = new Map<string, StoredResource>();
      for (const k of keys) {
        const row = rows.get(keyOf(k.type, k.id));
        if (row) out.set(keyOf(k.type, k.id), structuredClone(row));
      }
      return Promise.resolve(out);
    },
    findByIdentifier(type, system, value) {
      const key = byIdentifier.get(`${type}|${system}|${value}`);
      const row = key ? rows.get(key) : undefined;
      return Promise.resolve(row ? structuredClone(row) : undefined);
    },
    save(saved) {
      for (const r of saved) {
        rows.set(keyOf(r.type, r.id), structuredClone(r));
        for (const i of r.identifiers)
          byIdentifier.set(`${r.type}|${i.system}|${i.value}`, keyOf(r.type, r.id));
      }
      return Promise.resolve();
    },
    getCheckpoint: (importKey) => Promise.resolve(checkpoints.get(importKey)),
    saveCheckpoint(cp) {
      checkpoints.set(cp.importKey, structuredClone(cp));
      return Promise.resolve();
    },
  };
}

/**
 * Producers that record instead of publishing. `failWith` makes every later write
 * reject with that error (a broker that stopped acknowledging), until set back to null.
 */
export interface RecordingProducers {
  producer: Pick<EventProducer, 'publish' | 'publishRaw'>;
  txProducer: Pick<TransactionalProducer, 'publishAtomically'>;
  published: ClinicalEvent[];
  transactions: ClinicalEvent[][];
  raw: RawRecord[];
  failWith: Error | null;
}

export function recordingProducers(): RecordingProducers {
  const rec: RecordingProducers = {
    published: [],
    transactions: [],
    raw: [],
    failWith: null,
    producer: {
      publish(events) {
        if (rec.failWith) return Promise.reject(rec.failWith);
        rec.published.push(...events);
        return Promise.resolve(events.map((e) => ({ topic: e.type, eventId: e.data.meta.eventId })));
      },
      publishRaw(records) {
        if (rec.failWith) return Promise.reject(rec.failWith);
        rec.raw.push(...records);
        return Promise.resolve();
      },
    },
    txProducer: {
      publishAtomically(events) {
        if (rec.failWith) return Promise.reject(rec.failWith);
        rec.transactions.push([...events]);
        return Promise.resolve(events.map((e) => ({ topic: e.type, eventId: e.data.meta.eventId })));
      },
    },
  };
  return rec;
}

/** What a route test writes through: the adapter's Writer over an in-memory store and recording producers. */
export interface InMemoryWrites {
  writer: Writer;
  store: ReturnType<typeof memoryFhirStore>;
  rec: RecordingProducers;
}

export function inMemoryWrites(clock: () => number = Date.now): InMemoryWrites {
  const rec = recordingProducers();
  const store = memoryFhirStore();
  const policy: IdentityPolicy = { enterpriseSystems: [MRN_SYSTEM], authorityAliases: {} };
  return { rec, store, writer: createWriter({ ...rec, store, policy, clock }) };
}

/** A valid Patient whose MRN (in MRN_SYSTEM, the enterprise system of inMemoryWrites) is `mrn`. */
export function testPatient(mrn: string, extra: object = {}): object {
  return {
    resourceType: 'Patient',
    identifier: [{ system: MRN_SYSTEM, value: mrn }],
    name: [{ family: 'Testperson' }],
    gender: 'female',
    birthDate: '1980-02-03',
    ...extra,
  };
}
