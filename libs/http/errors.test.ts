import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { HubError } from '../errors/index.js';
import { createLogger } from '../telemetry/logger.js';
import { FHIR_JSON, fhirErrorHandler, jsonErrorHandler } from './errors.js';

const CANARY = 'duplicate key value violates unique constraint "patients_pkey": (mrn)=(Zzcanary)';

interface Outcome {
  resourceType: string;
  issue: { severity: string; code: string; diagnostics: string }[];
}

/**
 * One app, two dialects: JSON under /json (the app's handler), FHIR under
 * /fhir (an encapsulated plugin with its own handler, as the services do).
 * Each has a route that throws what the request names and one that parses a
 * JSON body under a small body limit.
 */
function build(logs: string[]): FastifyInstance {
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(chunk.toString('utf8'));
      done();
    },
  });
  const opts: FastifyServerOptions = {
    loggerInstance: createLogger({ name: 'test', destination }),
    bodyLimit: 64,
  };
  const app = Fastify(opts);
  const throwing: Record<string, () => Error> = {
    forbidden: () => new HubError('HUB_FORBIDDEN', 'access denied (patient-mismatch)'),
    'db-down': () => new HubError('HUB_DB_UNAVAILABLE', 'query exceeded 300 ms'),
    'db-error': () => new HubError('HUB_DB_ERROR', CANARY),
    'event-invalid': () => new HubError('HUB_EVENT_INVALID', 'Patient.birthDate does not match the contract'),
    driver: () => new Error(CANARY),
  };
  const routes = (scope: FastifyInstance) => {
    scope.get<{ Params: { what: string } }>('/throw/:what', (req) => {
      throw throwing[req.params.what]?.() ?? new Error('unknown case');
    });
    scope.post('/echo', (req) => ({ got: req.body }));
  };
  app.setErrorHandler(jsonErrorHandler);
  void app.register(
    (scope, _o, done) => {
      routes(scope);
      done();
    },
    { prefix: '/json' },
  );
  void app.register(
    (scope, _o, done) => {
      scope.setErrorHandler(fhirErrorHandler);
      routes(scope);
      done();
    },
    { prefix: '/fhir' },
  );
  return app;
}

describe('jsonErrorHandler and fhirErrorHandler', () => {
  let app: FastifyInstance;
  let logs: string[];
  const start = async () => {
    logs = [];
    app = build(logs);
    await app.ready();
  };
  /** The same failure through both dialects. */
  const both = async (what: string) => ({
    json: await app.inject({ url: `/json/throw/${what}` }),
    fhir: await app.inject({ url: `/fhir/throw/${what}` }),
  });
  afterEach(async () => {
    await app.close();
  });

  /** Per HubError thrown: status, JSON body, OperationOutcome issue, and how many 5xx log lines (by code). */
  const HUB_CASES = [
    {
      given: 'a 4xx code (its own message; not logged)',
      what: 'forbidden',
      status: 403,
      body: { code: 'HUB_FORBIDDEN', message: 'access denied (patient-mismatch)', retriable: false },
      issue: { severity: 'error', code: 'forbidden', diagnostics: 'access denied (patient-mismatch)' },
      logged: 0,
    },
    {
      given: 'HUB_EVENT_INVALID (422, the most specific of the old tables)',
      what: 'event-invalid',
      status: 422,
      body: {
        code: 'HUB_EVENT_INVALID',
        message: 'Patient.birthDate does not match the contract',
        retriable: false,
      },
      issue: {
        severity: 'error',
        code: 'processing',
        diagnostics: 'Patient.birthDate does not match the contract',
      },
      logged: 0,
    },
    {
      given: 'a retriable code (503 transient, the description; logged by code)',
      what: 'db-down',
      status: 503,
      body: { code: 'HUB_DB_UNAVAILABLE', message: 'PostgreSQL is unreachable', retriable: true },
      issue: {
        severity: 'fatal',
        code: 'transient',
        diagnostics: 'HUB_DB_UNAVAILABLE: PostgreSQL is unreachable',
      },
      logged: 2,
    },
  ];

  it.each(HUB_CASES)('given $given, when thrown, then both dialects answer by its code', async (c) => {
    await start();
    const { json, fhir } = await both(c.what);
    expect([json.statusCode, fhir.statusCode]).toEqual([c.status, c.status]);
    expect(json.json()).toEqual(c.body);
    expect(fhir.headers['content-type']).toBe(FHIR_JSON);
    expect(fhir.json<Outcome>()).toEqual({ resourceType: 'OperationOutcome', issue: [c.issue] });
    const logged = logs
      .filter((l) => l.includes('request failed'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logged).toHaveLength(c.logged);
    for (const l of logged)
      expect(l).toMatchObject({ level: 50, code: c.body.code, retriable: c.body.retriable });
  });

  it.each(['driver', 'db-error'])(
    'given %s text that quotes data, when thrown, then 500 and neither body nor log echoes it',
    async (what) => {
      await start();
      const { json, fhir } = await both(what);
      expect(json.statusCode).toBe(500);
      expect(fhir.statusCode).toBe(500);
      const code = what === 'driver' ? 'HUB_INTERNAL' : 'HUB_DB_ERROR';
      expect(json.json()).toMatchObject({ code, retriable: false });
      expect(fhir.json<Outcome>().issue).toEqual([
        {
          severity: 'fatal',
          code: 'exception',
          diagnostics: expect.stringMatching(new RegExp(`^${code}: `)) as string,
        },
      ]);
      for (const text of [json.body, fhir.body, ...logs]) expect(text).not.toContain('Zzcanary');
      expect(logs.filter((l) => l.includes(code))).toHaveLength(2);
    },
  );

  it("given a body that is not JSON, when posted, then the framework's 400 and its message, not logged", async () => {
    await start();
    const post = (url: string) =>
      app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload: '{"a":' });
    const json = await post('/json/echo');
    expect(json.statusCode).toBe(400);
    expect(json.json()).toEqual({ code: 'HUB_INPUT_INVALID', message: expect.any(String) as string });

    const fhir = await post('/fhir/echo');
    expect(fhir.statusCode).toBe(400);
    expect(fhir.json<Outcome>().issue).toEqual([
      { severity: 'error', code: 'invalid', diagnostics: json.json<{ message: string }>().message },
    ]);
    expect(logs.filter((l) => l.includes('request failed'))).toEqual([]);
  });

  it('given a body above the limit, when posted, then 413 (too-costly in FHIR)', async () => {
    await start();
    const payload = JSON.stringify({ a: 'x'.repeat(200) });
    const post = (url: string) =>
      app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload });
    const json = await post('/json/echo');
    expect(json.statusCode).toBe(413);
    expect(json.json()).toMatchObject({ code: 'HUB_INPUT_INVALID' });
    const fhir = await post('/fhir/echo');
    expect(fhir.statusCode).toBe(413);
    expect(fhir.json<Outcome>().issue[0]).toMatchObject({ severity: 'error', code: 'too-costly' });
  });

  it('given an unsupported content type, when posted to the FHIR scope, then 415 not-supported', async () => {
    await start();
    const fhir = await app.inject({
      method: 'POST',
      url: '/fhir/echo',
      headers: { 'content-type': 'application/fhir+xml' },
      payload: '<Patient/>',
    });
    expect(fhir.statusCode).toBe(415);
    expect(fhir.json<Outcome>().issue[0]).toMatchObject({ code: 'not-supported' });
  });
});
