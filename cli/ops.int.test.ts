import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpApp } from '../libs/http/index.js';
import { createLogger } from '../libs/telemetry/logger.js';
import { endpoints } from '../test/support/harness.js';
import { freePort } from '../test/support/processes.js';
import { collectStatus, probeServices, statusText } from './ops.js';

/** `hub status` probing services: real HTTP servers, a port nobody listens on, the real stack. */
describe('hub status service probes', () => {
  const logger = createLogger({ name: 'ops-int', level: 'silent' });
  let readyApp: FastifyInstance;
  let stuckApp: FastifyInstance;
  let targets: { name: string; url: string }[];

  beforeAll(async () => {
    // given one ready service, one alive but not ready, and one not running
    readyApp = createHttpApp({ logger, readiness: { kafka: () => Promise.resolve({ ok: true }) } });
    stuckApp = createHttpApp({
      logger,
      readiness: {
        postgres: () => Promise.resolve({ ok: true }),
        consumer: () => Promise.resolve({ ok: false, detail: 'no progress for 61000 ms' }),
      },
    });
    targets = [
      { name: 'svc-ready', url: await readyApp.listen({ host: '127.0.0.1', port: 0 }) },
      { name: 'svc-stuck', url: await stuckApp.listen({ host: '127.0.0.1', port: 0 }) },
      { name: 'svc-off', url: `http://127.0.0.1:${await freePort()}` },
    ];
  });
  afterAll(async () => {
    await readyApp.close();
    await stuckApp.close();
  });

  it('regression: a service that is not running shows as "not running", not as a failure of the status', async () => {
    // when the default (hub up) services are probed
    const r = await probeServices(targets, false);
    // then each has its state, and only the one that runs but is not ready is a problem
    expect(r.services).toEqual([
      { service: 'svc-ready', url: targets[0]!.url, state: 'ready', alive: true, ready: true, failing: '' },
      {
        service: 'svc-stuck',
        url: targets[1]!.url,
        state: 'not-ready',
        alive: true,
        ready: false,
        failing: 'consumer: no progress for 61000 ms',
      },
      {
        service: 'svc-off',
        url: targets[2]!.url,
        state: 'not running',
        alive: false,
        ready: false,
        failing: '',
      },
    ]);
    expect(r.problems).toEqual(['service svc-stuck not-ready: consumer: no progress for 61000 ms']);
  });

  it('services named in HUB_SERVICE_URLS that are not running are problems', async () => {
    // when the same services are probed as explicitly configured / then
    expect((await probeServices(targets, true)).problems).toEqual([
      'service svc-stuck not-ready: consumer: no progress for 61000 ms',
      'service svc-off not running',
    ]);
  });

  it('regression: hub status shows the services it probes without HUB_SERVICE_URLS, with their readiness', async () => {
    // given the real stack and the three services
    const ep = endpoints();
    const env = {
      ...process.env,
      KAFKA_BROKERS: ep.kafkaBrokers.join(','),
      SCHEMA_REGISTRY_URL: ep.registryUrl,
      DATABASE_URL: ep.databaseUrl,
      HUB_SERVICE_URLS: undefined,
    };
    // when the status is collected
    const s = await collectStatus({
      env,
      schemaLike: 'no_such_schema',
      sourceSample: 1,
      defaultServices: targets,
    });
    // then every dependency is up, the services show their state, and "not running" is no problem
    expect(s.dependencies.every((d) => d.up)).toBe(true);
    expect(s.services.map((x) => [x.service, x.state])).toEqual([
      ['svc-ready', 'ready'],
      ['svc-stuck', 'not-ready'],
      ['svc-off', 'not running'],
    ]);
    expect(s.problems.filter((p) => p.startsWith('service '))).toEqual([
      'service svc-stuck not-ready: consumer: no progress for 61000 ms',
    ]);
    const text = statusText(s);
    expect(text).toMatch(/svc-off\s+\|?\s*not running/);
    expect(text).toContain('consumer: no progress for 61000 ms');
  });
});
