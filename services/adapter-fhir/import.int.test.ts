import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashAndCount, importFile } from '../../libs/fhir/import/file.js';
import { runImport } from '../../libs/fhir/import/import.js';
import { createFhirStore } from '../../libs/fhir/import/store.js';
import { enterprisePatientId, type IdentityPolicy } from '../../libs/identity/index.js';
import { createTransactionalProducer, type TransactionalProducer } from '../../libs/kafka/transactional.js';
import { createMetrics } from '../../libs/telemetry/metrics.js';
import { startCollector, type Collector } from '../../test/fixtures/fhir/collector.js';
import { generateResources, MRN_SYSTEM, ndjson } from '../../test/fixtures/fhir/generate.js';
import {
  TEST_CLIENTS,
  TEST_SOURCE,
  fhirAuth,
  fhirTestVerifier,
  storeFailingOnSave,
} from '../../test/support/fhir-adapter.js';
import { createTestContext, type TestContext } from '../../test/support/harness.js';
import { runHub } from '../../test/support/processes.js';
import { buildFhirAdapter, type FhirAdapter } from './app.js';

const policy: IdentityPolicy = { enterpriseSystems: [MRN_SYSTEM], authorityAliases: {} };
const CATALOG = ['clinical.patient.v1', 'clinical.encounter.v1', 'clinical.order.v1', 'clinical.result.v1'];
const CANARY = 'Zzimportcanary';

function envFor(ctx: TestContext): Record<string, string> {
  return {
    KAFKA_BROKERS: ctx.ep.kafkaBrokers.join(','),
    SCHEMA_REGISTRY_URL: ctx.ep.registryUrl,
    DATABASE_URL: ctx.ep.databaseUrl,
    HUB_TOPIC_SUFFIX: ctx.id,
    FHIR_STORE_SCHEMA: ctx.schema,
    HUB_ENTERPRISE_ID_SYSTEMS: MRN_SYSTEM,
  };
}

/** Events of the resume test's file (other tests share context A's topics). */
function fromResumeFile(c: Collector, topic?: string) {
  return c.events(topic).filter((e) => e.data.meta.source.messageId?.startsWith('resume.ndjson#'));
}

/** Event ids per topic, as sets: what a de-duplicating consumer ends up with. */
function idsByTopic(c: Collector, ctx: TestContext): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const t of CATALOG) {
    out[t] = [...new Set(fromResumeFile(c, ctx.topic(t)).map((e) => e.data.meta.eventId))].sort();
  }
  return out;
}

describe('FHIR bulk import', () => {
  let a: TestContext;
  let b: TestContext;
  let dir: string;
  let tx: TransactionalProducer;
  let adapter: FhirAdapter;
  let auth: { authorization: string };
  const collectors: Collector[] = [];

  beforeAll(async () => {
    a = await createTestContext('fhirimp_a');
    b = await createTestContext('fhirimp_b');
    for (const ctx of [a, b]) ctx.extraTopics.push(ctx.topic('hub.dlq.adapter-fhir'));
    a.extraTopics.push(a.topic('hub.audit.v1'));
    auth = await fhirAuth();
    dir = mkdtempSync(join(tmpdir(), 'fhir-import-'));
    tx = createTransactionalProducer({
      kafka: a.kafka,
      codec: a.codec,
      transactionalId: `tx-${a.id}`,
      topicFor: a.topicFor,
    });
    adapter = buildFhirAdapter(
      {
        db: a.db,
        kafka: a.kafka,
        producer: a.producer,
        txProducer: tx,
        logger: a.logger,
        metrics: createMetrics({ defaultMetrics: false }),
        policy,
        verifier: await fhirTestVerifier(),
      },
      {
        schema: a.schema,
        dlqTopic: a.topic('hub.dlq.adapter-fhir'),
        auditTopic: a.topic('hub.audit.v1'),
        clients: TEST_CLIENTS,
        sourceSystem: TEST_SOURCE,
        maxBodyBytes: 64 * 1024,
        importChunkSize: 3,
      },
    );
    await adapter.start();
  });
  afterAll(async () => {
    for (const c of collectors) await c.stop();
    await adapter?.stop();
    await tx?.disconnect();
    rmSync(dir, { recursive: true, force: true });
    await a.cleanup();
    await b.cleanup();
  });

  it('POST /$import streams NDJSON; invalid lines go to the dead-letter topic with line number and reason, no PHI', async () => {
    const good = [...generateResources(8, { prefix: 'http' })].map((r) => JSON.stringify(r));
    const lines = [
      good[0]!,
      good[1]!,
      `{"resourceType":"Patient","identifier":[{"system":"${MRN_SYSTEM}","value":"X"}],"name":[{"family":"${CANARY}","family":"${CANARY}"}]}`,
      good[2]!,
      `{"resourceType":"Observation","status":"final","code":{"text":"${CANARY}"},"subject":{"reference":"Patient/nobody"},"valueString":"${CANARY}"}`,
      '',
      good[3]!,
      'not json at all',
    ];
    const res = await adapter.http.inject({
      method: 'POST',
      url: '/$import?label=test-batch',
      headers: { 'content-type': 'application/fhir+ndjson', 'x-import-id': 'imp-1', ...auth },
      payload: lines.join('\n'),
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      importKey: 'http:imp-1',
      lastLine: 8,
      counts: { created: 4, invalid: 3 },
      deadLetters: 3,
    });
    const dlq = await startCollector(a, [], [a.topic('hub.dlq.adapter-fhir')]);
    collectors.push(dlq);
    const parked = await dlq.until((r) => (r.length >= 3 ? r : undefined), '3 dead letters');
    expect(parked.map((p) => [p.headers['hub-dlq-line'], p.headers['hub-dlq-reason-code']])).toEqual([
      ['3', 'json-duplicate-key'],
      ['5', 'unmappable'],
      ['8', 'json-invalid-json'],
    ]);
    const body = JSON.parse(parked[1]!.value!.toString()) as {
      line: number;
      issues: { expression: string[] }[];
    };
    expect(body).toMatchObject({
      line: 5,
      importKey: 'http:imp-1',
      issues: [{ expression: ['Observation.subject'] }],
    });
    for (const p of parked)
      expect(`${p.value?.toString()}${JSON.stringify(p.headers)}`).not.toContain(CANARY);

    // The same body again with the same import id: already checkpointed, nothing new.
    const again = await adapter.http.inject({
      method: 'POST',
      url: '/$import',
      headers: { 'content-type': 'application/x-ndjson', 'x-import-id': 'imp-1', ...auth },
      payload: lines.join('\n'),
    });
    expect(again.json()).toMatchObject({ resumedAfterLine: 8, events: 0, counts: { skipped: 7 } });
    const wrongType = await adapter.http.inject({
      method: 'POST',
      url: '/$import',
      headers: { 'content-type': 'text/csv', ...auth },
      payload: 'a,b',
    });
    expect(wrongType.statusCode).toBe(415);
  });

  it('an interrupted import, resumed, leaves the same topic contents as an uninterrupted one', async () => {
    const file = join(dir, 'resume.ndjson');
    writeFileSync(file, ndjson(generateResources(400, { prefix: 'rs' })));

    const whole = await importFile({
      file,
      chunkSize: 50,
      progress: false,
      env: { ...process.env, ...envFor(a) },
    });
    expect(whole).toMatchObject({ lastLine: 400, counts: { created: 400, invalid: 0 } });

    // B: crash after chunk 3's events are acknowledged but before its checkpoint, then resume.
    // The crashing run is importFile's own pipeline with the CLI's key, label and source system.
    const store = createFhirStore(b.db, b.schema);
    await store.migrate();
    await expect(
      runImport(
        {
          store: storeFailingOnSave(store, 3),
          producer: b.producer,
          policy,
          sourceSystem: 'fhir-bulk-import',
          dlqTopic: b.topic('hub.dlq.adapter-fhir'),
          logger: b.logger,
        },
        createReadStream(file),
        {
          importKey: `file:${(await hashAndCount(file)).sha256}`,
          format: 'ndjson',
          label: 'resume.ndjson',
          chunkSize: 50,
        },
      ),
    ).rejects.toThrow(/simulated crash/);
    const resumed = await importFile({
      file,
      chunkSize: 50,
      progress: false,
      env: { ...process.env, ...envFor(b) },
    });
    expect(resumed).toMatchObject({ resumedAfterLine: 100, lastLine: 400, counts: { created: 400 } });

    const ca = await startCollector(
      a,
      CATALOG.map((t) => a.topic(t)),
    );
    const cb = await startCollector(
      b,
      CATALOG.map((t) => b.topic(t)),
    );
    collectors.push(ca, cb);
    // 50 lines of chunk 3 were published twice in B: more records, the same ids.
    await ca.until(() => (fromResumeFile(ca).length >= whole.events ? true : undefined), 'A fully read');
    await cb.until(() => (fromResumeFile(cb).length >= whole.events + 50 ? true : undefined), 'B fully read');
    const idsA = idsByTopic(ca, a);
    expect(Object.values(idsA).flat()).toHaveLength(whole.events);
    expect(idsByTopic(cb, b)).toEqual(idsA);
    // The replayed chunk maps to the same events (same versions and content), so the same ids.
    expect(fromResumeFile(cb).length).toBeGreaterThan(fromResumeFile(ca).length);
    const key = enterprisePatientId([{ system: MRN_SYSTEM, value: 'RS-MRN-0', type: 'MR' }], policy);
    expect(ca.events(a.topic('clinical.encounter.v1')).some((e) => e.data.patientId === key)).toBe(true);
  });

  it('`hub fhir import` (the CLI process) imports a Bundle document and reports counts by outcome', () => {
    const bundle = {
      resourceType: 'Bundle',
      type: 'collection',
      entry: [
        {
          fullUrl: 'urn:uuid:5d6c3a7e-0000-4000-8000-000000000001',
          resource: {
            resourceType: 'Patient',
            identifier: [{ system: MRN_SYSTEM, value: 'CLI-1' }],
            name: [{ family: 'Clitest' }],
          },
        },
        {
          resource: {
            resourceType: 'Encounter',
            status: 'finished',
            class: { code: 'AMB' },
            subject: { reference: 'urn:uuid:5d6c3a7e-0000-4000-8000-000000000001' },
            period: { start: '2026-01-01T08:00:00Z', end: '2026-01-01T09:00:00Z' },
          },
        },
        { resource: { resourceType: 'Encounter', status: 'finished' } },
      ],
    };
    const file = join(dir, 'bundle.json');
    writeFileSync(file, JSON.stringify(bundle, null, 2));
    const r = runHub(['--json', 'fhir', 'import', '--no-progress', file], envFor(b));
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ created: 2, invalid: 1, events: 3, deadLetters: 1 });
    const missing = runHub(['fhir', 'import', join(dir, 'nope.ndjson')], envFor(b));
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('HUB_INPUT_INVALID');
  });
});
