import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadFhirDefinitions } from '../../../libs/fhir/validate.js';
import { createLogger } from '../../../libs/telemetry/logger.js';
import { generateResources, MRN_SYSTEM } from '../../../test/fixtures/fhir/generate.js';
import {
  memoryFhirStore,
  recordingProducers,
  type RecordingProducers,
} from '../../../test/support/fhir-adapter.js';
import { importRoutes } from './import.js';

/** POST /$import alone, over an in-memory store and recording producers. */
describe('import route', () => {
  let app: FastifyInstance;
  let rec: RecordingProducers;
  let deadLettered: number[];

  beforeAll(() => loadFhirDefinitions());
  beforeEach(async () => {
    rec = recordingProducers();
    deadLettered = [];
    app = Fastify();
    await app.register(importRoutes, {
      deps: {
        store: memoryFhirStore(),
        producer: rec.producer,
        policy: { enterpriseSystems: [MRN_SYSTEM], authorityAliases: {} },
        sourceSystem: 'fhir-test',
        dlqTopic: 'dlq',
        logger: createLogger({ name: 'test', level: 'silent' }),
      },
      chunkSize: 2,
      maxBodyBytes: 1024,
      onDeadLetters: (n) => deadLettered.push(n),
    });
  });
  afterEach(async () => app.close());

  const lines = [...generateResources(4, { prefix: 'imp' })].map((r) => JSON.stringify(r));

  it('streams NDJSON beyond the body limit; an invalid line is dead-lettered and counted', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/$import?label=t',
      headers: { 'content-type': 'application/fhir+ndjson', 'x-import-id': 'i-1' },
      payload: [...lines, 'not json', ' '.repeat(2048)].join('\n'),
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      importKey: 'http:i-1',
      lastLine: 5,
      counts: { created: 4, invalid: 1 },
    });
    expect(rec.raw.map((r) => r.headers?.['hub-dlq-reason-code'])).toEqual(['json-invalid-json']);
    expect(deadLettered).toEqual([1]);

    const again = await app.inject({
      method: 'POST',
      url: '/$import',
      headers: { 'content-type': 'application/x-ndjson', 'x-import-id': 'i-1' },
      payload: lines.join('\n'),
    });
    expect(again.json()).toMatchObject({ resumedAfterLine: 5, events: 0 });
  });

  it.each([
    ['a content type other than NDJSON or FHIR JSON', { 'content-type': 'text/csv' }, 415, 'not-supported'],
    [
      'a malformed X-Import-Id',
      { 'content-type': 'application/fhir+ndjson', 'x-import-id': 'a b' },
      400,
      'invalid',
    ],
  ])('%s: refused with an OperationOutcome', async (_what, headers, status, code) => {
    const res = await app.inject({ method: 'POST', url: '/$import', headers, payload: lines.join('\n') });
    expect(res.statusCode).toBe(status);
    expect(res.json()).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code }] });
    expect(rec.published).toEqual([]);
  });
});
