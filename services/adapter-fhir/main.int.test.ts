import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDevKeys, mintToken } from '../../libs/auth/jwt.js';
import { enterprisePatientId } from '../../libs/identity/index.js';
import { startCollector, type Collector } from '../../test/fixtures/fhir/collector.js';
import { createTestContext, type TestContext } from '../../test/support/harness.js';
import { freePort, startProcess, type RunningProcess } from '../../test/support/processes.js';

const MRN = 'urn:oid:2.16.840.1.113883.3.999.1';
const CANARY_FAMILY = 'Zzfhircanary';
const CANARY_MRN = 'MRN-FHIR-CANARY-42';

/** The service as an operator runs it: main.ts in its own process, over a real port. */
describe('adapter-fhir main.ts', () => {
  let ctx: TestContext;
  let svc: RunningProcess | undefined;
  let base: string;
  let topics: Collector;
  let dir: string;
  let token: string;

  beforeAll(async () => {
    ctx = await createTestContext('fhirmain');
    ctx.extraTopics.push(ctx.topic('hub.dlq.adapter-fhir'), ctx.topic('hub.audit.v1'));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    // The local identity provider (dev keys) and the clients file, as `hub auth token` and an operator set them up.
    dir = mkdtempSync(join(tmpdir(), 'fhir-main-'));
    const keys = await ensureDevKeys(join(dir, 'keys'));
    writeFileSync(
      join(dir, 'clients.yaml'),
      'clients:\n  - clientId: lab-system\n    sourceSystems: [lab-system]\n',
    );
    token = await mintToken({
      keys,
      subject: 'lab-system',
      scope: ['system/*.cud'],
      ttlSec: 600,
      audience: 'hub-ingest',
    });
    svc = startProcess([join('services', 'adapter-fhir', 'main.ts')], {
      KAFKA_BROKERS: ctx.ep.kafkaBrokers.join(','),
      SCHEMA_REGISTRY_URL: ctx.ep.registryUrl,
      DATABASE_URL: ctx.ep.databaseUrl,
      HUB_TOPIC_SUFFIX: ctx.id,
      FHIR_STORE_SCHEMA: ctx.schema,
      FHIR_TRANSACTIONAL_ID: `tx-${ctx.id}`,
      HUB_ENTERPRISE_ID_SYSTEMS: MRN,
      HTTP_PORT: String(port),
      AUTH_DEV_KEYS_DIR: join(dir, 'keys'),
      FHIR_CLIENTS_FILE: join(dir, 'clients.yaml'),
      FHIR_BASE_URL: base,
      LOG_LEVEL: 'debug',
    });
    await svc.waitFor(/adapter-fhir ready/);
    topics = await startCollector(ctx, [ctx.topic('clinical.patient.v1')]);
  });
  afterAll(async () => {
    await topics?.stop();
    await svc?.stop();
    await ctx.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('accepts a Patient over HTTP with a token, answers 201 after the event is on the topic, and keeps PHI out of its logs', async () => {
    const body = JSON.stringify({
      resourceType: 'Patient',
      identifier: [{ system: MRN, value: CANARY_MRN }],
      name: [{ family: CANARY_FAMILY }],
      birthDate: '1959-11-30',
    });
    const FHIR = { 'content-type': 'application/fhir+json' };
    const anonymous = await fetch(`${base}/Patient`, { method: 'POST', headers: FHIR, body });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toBe('Bearer realm="hub-ingest"');
    const auth = { authorization: `Bearer ${token}` };
    // A Host header of the client's choosing does not make the links.
    const res = await fetch(`${base}/Patient`, {
      method: 'POST',
      headers: { ...FHIR, ...auth, host: 'evil.example' },
      body,
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toMatch(new RegExp(`^${base}/Patient/[0-9a-f-]+/_history/1$`));
    const key = enterprisePatientId([{ system: MRN, value: CANARY_MRN, type: null }], {
      enterpriseSystems: [MRN],
      authorityAliases: {},
    });
    const e = await topics.until((r) => r.find((x) => x.key === key)?.event, 'the PatientRegistered event');
    expect(e.type).toBe('PatientRegistered');

    const bad = await fetch(`${base}/Patient`, {
      method: 'POST',
      headers: { ...FHIR, ...auth },
      body: `{"resourceType":"Patient","name":[{"family":"${CANARY_FAMILY}"}],"birthDate":"1959-13-30"}`,
    });
    expect(bad.status).toBe(422);
    expect((await fetch(`${base}/ready`)).status).toBe(200);

    expect(await svc!.stop('SIGTERM')).toBe(0);
    const logs = svc!.output();
    svc = undefined;
    expect(logs).toContain('adapter-fhir ready');
    expect(logs).not.toContain(CANARY_FAMILY);
    expect(logs).not.toContain(CANARY_MRN);
    expect(logs).not.toContain('1959-11-30');
  });
});
