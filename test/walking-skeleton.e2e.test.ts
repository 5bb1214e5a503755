import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDevKeys, mintToken } from '../libs/auth/jwt.js';
import { HUB_SCOPES } from '../libs/auth/scopes.js';
import { OPERATOR_AUDIENCE } from '../libs/http/operator.js';
import { dropReadModel } from '../libs/projections/versions.js';
import { PATIENT_TOPIC } from '../services/patient-directory/projection.js';
import { createTestContext, eventually, type TestContext } from './support/harness.js';
import { freePort, repoDir, runHub, startProcess, type RunningProcess } from './support/processes.js';

const CANARY_FAMILY = 'Zzcanaryfamily';
const CANARY_MRN = 'MRN-CANARY-7731';

function event(patientId: string, family: string, messageId: string, type = 'PatientRegistered') {
  return {
    type,
    data: {
      meta: { occurredAt: Date.UTC(2026, 1, 1), source: { system: 'E2E-EHR', facility: 'E2E', messageId } },
      patientId,
      demographics: {
        identifiers: [{ system: 'urn:oid:2.16.840.1.113883.3.999.1', value: CANARY_MRN, type: 'MR' }],
        names: [{ family, given: ['Walking'], use: 'official' }],
        birthDate: '1961-07-04',
      },
    },
  };
}

const pythonReader = '/usr/bin/python3';
const hasIndependentReader =
  existsSync(pythonReader) &&
  spawnSync(pythonReader, ['-c', 'import confluent_kafka.avro, avro, requests']).status === 0;

/**
 * The walking skeleton through public interfaces only: the `hub publish` CLI
 * writes a PatientRegistered event to Kafka; the patient-directory service
 * (its own process, started from main.ts) projects it into Postgres, where a
 * downstream team reads it in SQL (the service's port serves no patient: PHI
 * over HTTP goes through the API only). Then a restart must resume without
 * duplicates.
 */
describe('walking skeleton: CLI -> Kafka -> projection -> Postgres read model', () => {
  let ctx: TestContext;
  let env: Record<string, string>;
  let svc: RunningProcess | undefined;
  let port: number;
  const logs: string[] = [];

  beforeAll(async () => {
    ctx = await createTestContext('skeleton');
    port = await freePort();
    env = {
      KAFKA_BROKERS: ctx.ep.kafkaBrokers.join(','),
      SCHEMA_REGISTRY_URL: ctx.ep.registryUrl,
      DATABASE_URL: ctx.ep.databaseUrl,
      HUB_TOPIC_SUFFIX: ctx.id,
      PROJECTION_SCHEMA: ctx.schema,
      HTTP_PORT: String(port),
      LOG_LEVEL: 'debug',
    };
    ctx.extraTopics.push(`hub.dlq.patient-directory.${ctx.id}`);
  });
  afterAll(async () => {
    if (svc) {
      await svc.stop();
      logs.push(svc.output());
    }
    await dropReadModel(ctx.db, ctx.schema);
    await ctx.cleanup();
  });

  async function startService(): Promise<RunningProcess> {
    const p = startProcess([join('services', 'patient-directory', 'main.ts')], env);
    await p.waitFor(/patient-directory ready/);
    return p;
  }

  const get = async (path: string, token?: string) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, {
      ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  /** The row a downstream team reads: the stable schema's view, in SQL. */
  const patient = async (id: string) =>
    (await ctx.db.withSchema(ctx.schema).from('patients').where({ patient_id: id }).first()) as
      Record<string, unknown> | undefined;

  it('publishes with the CLI and reads the patient back from the read model', async () => {
    svc = await startService();
    const pub = runHub(['publish', '-'], env, JSON.stringify(event('E2E-1', CANARY_FAMILY, 'msg-1')));
    expect(pub.stderr).toBe('');
    expect(pub.status).toBe(0);
    expect(pub.stdout).toContain(`${PATIENT_TOPIC}.${ctx.id}`);

    const found = await eventually(() => patient('E2E-1'));
    expect(found).toMatchObject({
      patient_id: 'E2E-1',
      family: CANARY_FAMILY,
      birth_date: '1961-07-04',
      version: 1,
    });
    // The service's own port serves no patient, and /version only to an operator token (#17).
    const served = await get('/patients/E2E-1');
    expect(served.status).toBe(404);
    expect(JSON.stringify(served.body)).not.toContain(CANARY_FAMILY);
    expect((await get('/version')).status).toBe(401);
    // An operator token signed by the dev key the service verifies (no AUTH_JWKS_URL here) opens it.
    const keys = await ensureDevKeys(join(repoDir, '.hub', 'dev-keys'));
    const mint = (scope: string[]) =>
      mintToken({ keys, subject: 'ops', scope, audience: OPERATOR_AUDIENCE, ttlSec: 300 });
    expect((await get('/version', await mint([HUB_SCOPES.admin]))).status).toBe(403);
    expect(await get('/version', await mint([HUB_SCOPES.operator]))).toMatchObject({
      status: 200,
      body: { stable: ctx.schema, schema: `${ctx.schema}_v1` },
    });
    expect((await get('/ready')).status).toBe(200);
    expect((await get('/health')).status).toBe(200);
  });

  it.runIf(hasIndependentReader || process.env['HUB_REQUIRE_INDEPENDENT_READER'] === '1')(
    'is readable by a consumer that is not the hub code (python confluent-kafka + registry)',
    () => {
      const r = spawnSync(
        pythonReader,
        [
          join(repoDir, 'deploy', 'local', 'independent-reader.py'),
          '--brokers',
          ctx.ep.kafkaBrokers.join(','),
          '--registry',
          ctx.ep.registryUrl,
          '--topic',
          `${PATIENT_TOPIC}.${ctx.id}`,
          '--count',
          '1',
        ],
        { encoding: 'utf8', timeout: 60_000 },
      );
      expect(r.status, r.stderr).toBe(0);
      const rec = JSON.parse(r.stdout.trim().split('\n')[0]!) as {
        key: string;
        value: { patientId: string; meta: { eventType: string; source: { messageId: string } } };
      };
      expect(rec.key).toBe('E2E-1');
      expect(rec.value.patientId).toBe('E2E-1');
      expect(rec.value.meta.eventType).toBe('PatientRegistered');
      expect(rec.value.meta.source.messageId).toBe('msg-1');
    },
  );

  it('resumes after a restart from its stored offsets, without duplicating rows', async () => {
    const code = await svc!.stop('SIGTERM');
    logs.push(svc!.output());
    svc = undefined;
    expect(code).toBe(0);

    // While it is down: an update, a new patient, and a resend of the first message.
    const batch = [
      event('E2E-1', `${CANARY_FAMILY}-upd`, 'msg-2', 'PatientUpdated'),
      event('E2E-2', CANARY_FAMILY, 'msg-3'),
      event('E2E-1', CANARY_FAMILY, 'msg-1'),
    ];
    const pub = runHub(['publish', '-'], env, batch.map((b) => JSON.stringify(b)).join('\n'));
    expect(pub.status, pub.stderr).toBe(0);

    svc = await startService();
    const p2 = await eventually(() => patient('E2E-2'));
    expect(p2).toMatchObject({ version: 1 });
    const p1 = await eventually(async () => {
      const r = await patient('E2E-1');
      return r?.['version'] === 2 ? r : undefined;
    });
    expect(p1).toMatchObject({ family: `${CANARY_FAMILY}-upd` });

    // What an analyst sees in SQL: one row per patient, each event applied once.
    const rows = (await ctx.db.withSchema(ctx.schema).from('patients').select('patient_id')) as unknown[];
    expect(rows).toHaveLength(2);
    // The runner's bookkeeping is private to the version schema (readers see views of the rest).
    const applied: { n: string }[] = await ctx.db
      .withSchema(`${ctx.schema}_v1`)
      .from('applied_events')
      .count({ n: '*' });
    expect(Number(applied[0]?.n)).toBe(3);
  });

  it('keeps PHI out of the service logs', async () => {
    await svc?.stop();
    logs.push(svc?.output() ?? '');
    svc = undefined;
    const all = logs.join('\n');
    expect(all).toContain('patient-directory ready');
    expect(all).not.toContain(CANARY_FAMILY);
    expect(all).not.toContain(CANARY_MRN);
    expect(all).not.toContain('1961-07-04');
  });
});
