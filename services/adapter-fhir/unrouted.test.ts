import type { AuditEvent, OperationOutcome } from '@medplum/fhirtypes';
import knex, { type Knex } from 'knex';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HubError } from '../../libs/errors/index.js';
import { createKafkaClient } from '../../libs/kafka/client.js';
import type { EventProducer, RawRecord } from '../../libs/kafka/producer.js';
import type { TransactionalProducer } from '../../libs/kafka/transactional.js';
import { createLogger } from '../../libs/telemetry/logger.js';
import { createMetrics } from '../../libs/telemetry/metrics.js';
import { MRN_SYSTEM } from '../../test/fixtures/fhir/generate.js';
import { fhirAuth, fhirTestVerifier, TEST_CLIENT, TEST_CLIENTS } from '../../test/support/fhir-adapter.js';
import { buildFhirAdapter, type FhirAdapter } from './app.js';
import { unroutedRoute } from './security.js';

const logger = createLogger({ name: 'test', level: 'silent' });

/**
 * Requests no route of the adapter takes, through the app as main.ts builds it
 * (nothing started: no store, no broker is reached): an OperationOutcome
 * without the path, and an AuditEvent naming the method and area only.
 */
describe('adapter-fhir unrouted requests', () => {
  let adapter: FhirAdapter;
  let db: Knex;
  let audited: AuditEvent[];
  let auditDown: boolean;

  beforeEach(async () => {
    audited = [];
    auditDown = false;
    db = knex({ client: 'pg' });
    const producer: EventProducer = {
      connect: () => Promise.resolve(),
      disconnect: () => Promise.resolve(),
      health: () => ({ ok: true }),
      publish: () => Promise.reject(new HubError('HUB_INTERNAL', 'no clinical event expected')),
      publishRaw(records: readonly RawRecord[]) {
        if (auditDown) return Promise.reject(new HubError('HUB_KAFKA_UNAVAILABLE', 'paused'));
        audited.push(...records.map((r) => JSON.parse(String(r.value)) as AuditEvent));
        return Promise.resolve();
      },
    };
    const txProducer: TransactionalProducer = {
      connect: () => Promise.resolve(),
      disconnect: () => Promise.resolve(),
      health: () => ({ ok: true }),
      publishAtomically: () => Promise.reject(new HubError('HUB_INTERNAL', 'no transaction expected')),
    };
    adapter = buildFhirAdapter(
      {
        db,
        kafka: createKafkaClient({ brokers: ['127.0.0.1:1'], clientId: 'unrouted-test', logger }),
        producer,
        txProducer,
        logger,
        metrics: createMetrics({ defaultMetrics: false }),
        policy: { enterpriseSystems: [MRN_SYSTEM], authorityAliases: {} },
        verifier: await fhirTestVerifier(),
      },
      {
        schema: 'unused',
        dlqTopic: 'unused',
        auditTopic: 'hub.audit.v1',
        clients: TEST_CLIENTS,
        sourceSystem: 'unused',
        maxBodyBytes: 64 * 1024,
      },
    );
    await adapter.http.ready();
  });
  afterEach(async () => {
    await adapter.stop();
    await db.destroy();
  });

  const entityOf = (a: AuditEvent) => a.entity?.map((e) => e.what?.display);

  it('regression (issue 17): the 404 of an unknown route echoed its path (a patient id) and was not audited', async () => {
    const auth = await fhirAuth();
    const r = await adapter.http.inject({ method: 'DELETE', url: '/Patient/PID-4711', headers: auth });
    expect(r.statusCode).toBe(404);
    expect(r.headers['content-type']).toContain('application/fhir+json');
    expect(r.headers['cache-control']).toBe('no-store');
    expect(JSON.parse(r.body) as OperationOutcome).toMatchObject({
      resourceType: 'OperationOutcome',
      issue: [{ code: 'not-found', diagnostics: 'unknown FHIR route' }],
    });
    expect(r.body).not.toContain('PID-4711');
    expect(audited).toHaveLength(1);
    expect(audited[0]).toMatchObject({ outcome: '4', outcomeDesc: 'unrouted' });
    expect(entityOf(audited[0]!)).toEqual(['DELETE /Patient/*']);
    // Who asked, since the token verifies.
    expect(JSON.stringify(audited[0]!.agent)).toContain(TEST_CLIENT);
    expect(JSON.stringify(audited)).not.toContain('PID-4711');
  });

  it('given unrouted paths with and without a token, when asked, then 404 OperationOutcomes, each audited by area only', async () => {
    const urls = ['/Patient/P1/_history/2', '/Smith-John/x/y?name=Smith', '/metrics/P1', '/Patient', '/'];
    const methods = ['GET', 'GET', 'POST', 'GET', 'PATCH'] as const;
    for (const [i, url] of urls.entries()) {
      const r = await adapter.http.inject({ method: methods[i] ?? 'GET', url });
      expect(r.statusCode, url).toBe(404);
      expect(r.body, url).not.toMatch(/P1|Smith|metrics/);
    }
    expect(audited.map((a) => [a.outcomeDesc, entityOf(a)])).toEqual([
      ['unrouted', ['GET /Patient/*']],
      ['unrouted', ['GET /*']],
      ['unrouted', ['POST /*']],
      ['unrouted', ['GET /Patient/*']],
      ['unrouted', ['PATCH /*']],
    ]);
    expect(JSON.stringify(audited[0]!.agent)).toContain('anonymous');
    expect(JSON.stringify(audited)).not.toMatch(/P1|Smith/);
  });

  it('given a URL the router cannot decode, when asked, then 400 OperationOutcome without the path, audited', async () => {
    const r = await adapter.http.inject({ method: 'GET', url: '/Patient/P1%FF' });
    expect(r.statusCode).toBe(400);
    expect(JSON.parse(r.body) as OperationOutcome).toMatchObject({
      resourceType: 'OperationOutcome',
      issue: [{ code: 'invalid', diagnostics: 'the URL is not valid' }],
    });
    expect(r.body).not.toContain('P1');
    expect(audited.map((a) => [a.outcomeDesc, entityOf(a)])).toEqual([['invalid-input', ['GET /Patient/*']]]);
  });

  it('given the audit sink failing, when an unrouted path is asked, then 503 (no record, no answer)', async () => {
    auditDown = true;
    const r = await adapter.http.inject({ method: 'GET', url: '/Patient/P1/x' });
    expect(r.statusCode).toBe(503);
    expect(r.headers['content-type']).toContain('application/fhir+json');
    expect(r.body).not.toContain('P1');
  });

  it('given health, ready and metrics, when asked, then answered and not audited', async () => {
    expect((await adapter.http.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
    expect((await adapter.http.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(200);
    expect(audited).toEqual([]);
  });

  it('given methods and paths, then the pattern names a served resource type or `*`, never a segment as sent', () => {
    expect(unroutedRoute('GET', '/Observation/o1?x=1')).toBe('GET /Observation/*');
    expect(unroutedRoute('GET', '//./Patient/p1')).toBe('GET /Patient/*');
    expect(unroutedRoute('GET', '/Medication/m1')).toBe('GET /*');
    expect(unroutedRoute('get', '/Patient')).toBe('OTHER /Patient/*');
    expect(unroutedRoute('PROPFIND-VERYLONG', '/x')).toBe('OTHER /*');
  });
});
