/**
 * Read throughput of the query API's main portal routes against real
 * Postgres: publishes synthetic clinical events to a private set of topics,
 * builds the portal read model as projector-portal does (libs/read-models
 * on the shared projector body), starts the API as its own process
 * (services/api/main.ts, audit on: every request writes an AuditEvent to
 * Kafka before it is answered), then drives it with autocannon. At the end
 * it checks the audit trail as `hub audit verify` does: the chain, walked
 * with the chain key the API wrote it with, and the table against the audit
 * topic; a failure of either fails the run (exit 1).
 *
 *   npm run bench:api -- [--events 20000] [--duration 10] [--connections 16] [--keep]
 *
 * Uses KAFKA_BROKERS, SCHEMA_REGISTRY_URL, DATABASE_URL (defaults: the dev stack).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { readChainKey } from '../libs/audit/key.js';
import { auditLag } from '../libs/audit/lag.js';
import { reconcileAudit } from '../libs/audit/reconcile.js';
import { verifyAuditChain } from '../libs/audit/store.js';
import { auditDlqTopic, auditProjectorGroup } from '../libs/audit/topic.js';
import { ensureDevKeys, mintToken, type DevKeys } from '../libs/auth/jwt.js';
import { databaseEnv, kafkaEnv, loadConfig, z } from '../libs/config/index.js';
import { createDb, dropSchema } from '../libs/db/index.js';
import { createEventCodec } from '../libs/events/codec.js';
import { EVENT_CONTRACTS, type EventType } from '../libs/events/index.js';
import { createRegistryClientFromEnv } from '../libs/events/registry.js';
import { createKafkaClientFromEnv } from '../libs/kafka/client.js';
import { dlqTopicFor } from '../libs/kafka/dlq.js';
import { createEventProducer } from '../libs/kafka/producer.js';
import { lagOf } from '../libs/projections/inspect.js';
import { buildProjectorService } from '../libs/projections/service.js';
import { clinicalTopics } from '../libs/projections/topics.js';
import { dropReadModel } from '../libs/projections/versions.js';
import { portalProjection } from '../libs/read-models/portal/model.js';
import { createLogger } from '../libs/telemetry/logger.js';
import { createMetrics } from '../libs/telemetry/metrics.js';
import { syntheticEvents } from '../test/support/hospital-day.js';
import {
  deleteSyntheticLog,
  prepareSyntheticLog,
  publishInChunks,
  type SyntheticLog,
} from './bench/synthetic-log.js';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '20000' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '16' },
    port: { type: 'string', default: '18098' },
    keep: { type: 'boolean', default: false },
  },
});
const cfg = loadConfig(z.object({ ...kafkaEnv, ...databaseEnv }));
const id = `benchapi_${randomBytes(3).toString('hex')}`;
const logger = createLogger({ name: 'bench-api', level: 'error' });
const kafka = createKafkaClientFromEnv(cfg, { clientId: id, logger });
const registry = createRegistryClientFromEnv(cfg);
const topic = (name: string) => `${name}.${id}`;
const topicFor = (t: EventType) => topic(EVENT_CONTRACTS[t].topic);
const codec = createEventCodec(registry);
const producer = createEventProducer({ kafka, codec, topicFor });
const db = createDb(cfg.DATABASE_URL, { pool: { min: 0, max: 4 }, passwordFile: cfg.DATABASE_PASSWORD_FILE });
const stable = `${id}_portal`;
const auditSchema = `${id}_audit`;
const dlq = dlqTopicFor('bench-api', topic);
const auditTopic = topic('hub.audit.v1');
const auditDlq = auditDlqTopic(topic);
// The API's default consumer group for its in-process audit projector.
const auditGroup = auditProjectorGroup(auditSchema);
const keysDir = mkdtempSync(join(tmpdir(), 'hub-bench-keys-'));
// The API keys the audit chain (version 2, HMAC): with its own key here, the
// verification below can use the same one. Without it the API took the
// checkout's .hub/audit-chain.key and the bench walked the chain with no key,
// which every keyed row fails as `key-required` at seq 1: the run printed
// "hub audit verify: BROKEN" over an intact chain.
const chainKeyFile = join(keysDir, 'audit-chain.key');
writeFileSync(chainKeyFile, `${randomBytes(48).toString('base64')}\n`, { mode: 0o600 });
const chainKey = readChainKey(chainKeyFile);
const port = Number(values.port);
const out = (s: string) => process.stdout.write(`${s}\n`);

interface RouteResult {
  name: string;
  rps: number;
  p50: number;
  p97_5: number;
  p99: number;
  max: number;
  requests: number;
  non2xx: number;
  errors: number;
}

async function drive(name: string, path: (i: number) => string, token: string): Promise<RouteResult> {
  let i = 0;
  const r = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: Number(values.connections),
    duration: Number(values.duration),
    headers: { authorization: `Bearer ${token}` },
    requests: [
      {
        method: 'GET',
        setupRequest: (req) => ({ ...req, path: path(i++) }),
      },
    ],
  });
  return {
    name,
    rps: Math.round(r.requests.average),
    p50: r.latency.p50,
    p97_5: r.latency.p97_5,
    p99: r.latency.p99,
    max: r.latency.max,
    requests: r.requests.total,
    non2xx: r.non2xx,
    errors: r.errors,
  };
}

let api: ReturnType<typeof spawn> | null = null;
// The portal read model on the shared projector body (versions, registry), as projector-portal runs it.
const projector = buildProjectorService(
  { db, kafka, codec, producer, logger, metrics: createMetrics({ defaultMetrics: false }) },
  { stableSchema: stable, dlqTopic: dlq, groupPrefix: `hub.projection.${id}` },
  portalProjection(clinicalTopics(topic)),
);
const log: SyntheticLog = { kafka, registry, topic, extraTopics: [dlq] };
try {
  await prepareSyntheticLog(log);
  await producer.connect();
  const events = syntheticEvents(Number(values.events));
  const patients = events.filter((e) => e.type === 'PatientRegistered').map((e) => e.data.patientId);
  const t0 = Date.now();
  await publishInChunks(producer, events, 1000);
  await projector.start();
  for (;;) {
    const schema = projector.activeSchema();
    if (!schema) throw new Error('the projector has started but has no active schema');
    const lag = await lagOf(db, kafka, schema, clinicalTopics(topic));
    if (lag.lag === 0n) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  const rows = await db.withSchema(stable).from('patient_record').count<{ n: string }[]>({ n: '*' });
  out(
    `data: ${events.length} events, ${patients.length} patients, ${rows[0]?.n ?? 0} portal resources (published + projected in ${((Date.now() - t0) / 1000).toFixed(1)}s)`,
  );

  const keys: DevKeys = await ensureDevKeys(keysDir);
  api = spawn(process.execPath, ['--import', 'tsx', join('services', 'api', 'main.ts')], {
    env: {
      ...process.env,
      KAFKA_BROKERS: cfg.KAFKA_BROKERS.join(','),
      SCHEMA_REGISTRY_URL: cfg.SCHEMA_REGISTRY_URL,
      DATABASE_URL: cfg.DATABASE_URL,
      HUB_TOPIC_SUFFIX: id,
      PORTAL_SCHEMA: stable,
      AUDIT_SCHEMA: auditSchema,
      AUTH_DEV_KEYS_DIR: keysDir,
      AUDIT_CHAIN_KEY_FILE: chainKeyFile,
      AUDIT_DLQ_TOPIC: auditDlq,
      HTTP_PORT: String(port),
      LOG_LEVEL: 'warn',
      RATE_LIMIT_MAX: '100000000',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const base = `http://127.0.0.1:${port}`;
  for (let k = 0; ; k++) {
    const ok = await fetch(`${base}/ready`)
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) break;
    if (k > 120) throw new Error('api did not become ready');
    await new Promise((r) => setTimeout(r, 500));
  }
  const staff = await mintToken({ keys, subject: 'bench-staff', scope: ['user/*.rs'], ttlSec: 3600 });
  const own = patients[7];
  if (own === undefined) throw new Error(`--events ${values.events} gives fewer than 8 patients`);
  const patientTok = await mintToken({
    keys,
    subject: 'bench-patient',
    scope: ['patient/*.rs'],
    patient: own,
    ttlSec: 3600,
  });
  const pick = (i: number) => {
    const patient = patients[(i * 7919) % patients.length];
    if (patient === undefined) throw new Error(`no patient at ${i}`);
    return encodeURIComponent(patient);
  };
  // Warm-up: connection pools, JIT, Postgres caches.
  await autocannon({
    url: `${base}/fhir/Patient/${encodeURIComponent(own)}`,
    duration: 2,
    connections: 4,
    headers: { authorization: `Bearer ${patientTok}` },
  });

  const results: RouteResult[] = [];
  // Baseline without token, database or audit: what the process and the load generator cost alone.
  results.push(
    await drive('GET /fhir/metadata (baseline: no auth, no db, no audit)', () => '/fhir/metadata', staff),
  );
  results.push(
    await drive('GET /fhir/Patient/{id} (staff, random patients)', (i) => `/fhir/Patient/${pick(i)}`, staff),
  );
  results.push(
    await drive(
      'GET /fhir/Patient/{id} (patient token, own record)',
      () => `/fhir/Patient/${encodeURIComponent(own)}`,
      patientTok,
    ),
  );
  results.push(
    await drive('GET /fhir/Observation?patient={id}', (i) => `/fhir/Observation?patient=${pick(i)}`, staff),
  );
  results.push(
    await drive(
      'GET /fhir/DiagnosticReport?patient={id}&status=final',
      (i) => `/fhir/DiagnosticReport?patient=${pick(i)}&status=final`,
      staff,
    ),
  );
  results.push(
    await drive('GET /fhir/Patient/{id}/$everything', (i) => `/fhir/Patient/${pick(i)}/$everything`, staff),
  );

  out(
    `\nautocannon: ${values.connections} connections, ${values.duration}s per route, API in its own process, audit on`,
  );
  out(
    'route'.padEnd(56) +
      'req/s'.padStart(8) +
      'p50 ms'.padStart(8) +
      'p97.5'.padStart(8) +
      'p99'.padStart(8) +
      'max'.padStart(8) +
      'non2xx'.padStart(8),
  );
  for (const r of results) {
    out(
      r.name.padEnd(56) +
        String(r.rps).padStart(8) +
        String(r.p50).padStart(8) +
        String(r.p97_5).padStart(8) +
        String(r.p99).padStart(8) +
        String(r.max).padStart(8) +
        String(r.non2xx + r.errors).padStart(8),
    );
  }
  // Let the API's audit projector drain (its committed position reaches the
  // topic's end), then time a full chain verification and check the table
  // against the topic, as `hub audit verify` does.
  const drainStart = Date.now();
  for (;;) {
    const lag = await auditLag(kafka, auditTopic, auditGroup);
    if (lag.lag === 0) break;
    if (Date.now() - drainStart > 120_000) throw new Error(`the audit projector is still ${lag.lag} behind`);
    await new Promise((r) => setTimeout(r, 500));
  }
  const tv = Date.now();
  const chain = await verifyAuditChain(db, auditSchema, { key: chainKey });
  const secs = (Date.now() - tv) / 1000;
  const recon = await reconcileAudit({
    kafka,
    db,
    schema: auditSchema,
    topic: auditTopic,
    dlqTopic: auditDlq,
    groupId: auditGroup,
  });
  // Seqs, reasons and counts only: the audit rows themselves name patients.
  out(
    `\naudit: ${chain.rows} rows (one per audited request); hub audit verify: ` +
      (chain.ok
        ? `chain ok in ${secs.toFixed(1)}s (${Math.round(chain.rows / secs)} rows/s), keyed from seq ${chain.keyedFrom ?? 'none'}`
        : `chain BROKEN at seq ${chain.brokenAt} (${chain.reason}); ${chain.rows - 1} row(s) before it verify`),
  );
  out(
    `audit table vs topic: ${recon.topic.records} record(s), ${recon.table.matched} matched, ` +
      `${recon.deadLettered.count} dead-lettered, ${recon.pending} pending, ${recon.missing.count} missing, ` +
      `${recon.altered.count} altered, ${recon.notOnTopic ?? 'unknown'} not on the topic: ${recon.ok ? 'ok' : 'FAILED'}`,
  );
  if (!chain.ok || !recon.ok) process.exitCode = 1;
} finally {
  const child = api;
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  await projector.stop().catch(() => undefined);
  await producer.disconnect().catch(() => undefined);
  if (!values.keep) {
    await dropReadModel(db, stable).catch(() => undefined);
    await dropSchema(db, auditSchema).catch(() => undefined);
    await deleteSyntheticLog({ ...log, extraTopics: [dlq, auditTopic, auditDlq] });
  }
  rmSync(keysDir, { recursive: true, force: true });
  await db.destroy();
}
process.exit(process.exitCode ?? 0);
