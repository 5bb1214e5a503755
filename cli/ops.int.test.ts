import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../libs/db/index.js';
import { subscriptionInputSchema } from '../libs/delivery/model.js';
import { createSubscription, migrateDelivery } from '../libs/delivery/store.js';
import { createHttpApp } from '../libs/http/index.js';
import { createLogger } from '../libs/telemetry/logger.js';
import { endpoints, uniqueId } from '../test/support/harness.js';
import { freePort } from '../test/support/processes.js';
import { probeServices } from '../libs/ops/services.js';
import { collectStatus, statusText } from './ops.js';

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

/** `hub status` showing outbound subscriptions from the delivery schema (issue 20), on the real stack. */
describe('hub status subscriptions', () => {
  const ep = endpoints();
  const schema = uniqueId('status_delivery');
  const db = createDb(ep.databaseUrl);
  const env = () => ({
    ...process.env,
    KAFKA_BROKERS: ep.kafkaBrokers.join(','),
    SCHEMA_REGISTRY_URL: ep.registryUrl,
    DATABASE_URL: ep.databaseUrl,
    HUB_SERVICE_URLS: undefined,
    DELIVERY_SCHEMA: schema,
  });
  const status = () =>
    collectStatus({ env: env(), schemaLike: 'no_such_schema', sourceSample: 1, defaultServices: [] });

  afterAll(async () => {
    await db.raw('drop schema if exists ?? cascade', [schema]);
    await db.destroy();
  });

  it('given no delivery schema yet, then the section says none and nothing is a problem', async () => {
    const s = await status();
    expect(s.subscriptions).toMatchObject({ schema, present: false, subscriptions: [] });
    expect(statusText(s)).toContain(`== subscriptions (none: schema ${schema} does not exist yet)`);
    expect(s.problems.filter((p) => p.includes('subscription'))).toEqual([]);
  });

  it('given a delivering, a failing and a paused subscription, then each shows its health, deliveries and dead letters', async () => {
    // given the delivery schema with three subscriptions, as the store writes them
    await migrateDelivery(db, schema);
    const now = new Date('2026-12-06T05:00:00.000Z');
    const make = (name: string, minute: number) =>
      createSubscription(
        db,
        schema,
        subscriptionInputSchema.parse({
          name,
          channel: { type: 'webhook', endpoint: 'http://127.0.0.1:9/hook' },
        }),
        { id: randomUUID(), now: new Date(now.getTime() + minute * 60_000) },
      );
    const ok = await make('billing feed', 1);
    const down = await make('registry feed', 2);
    const paused = await make('care app', 3);
    await db
      .withSchema(schema)
      .from('delivery_state')
      .where({ subscription_id: ok.id })
      .update({ events_delivered: 12 });
    await db
      .withSchema(schema)
      .from('delivery_state')
      .where({ subscription_id: down.id })
      .update({ events_delivered: 3, failing_since: now, last_failure_reason: 'econnrefused' });
    await db.withSchema(schema).into('dead_letters').insert({
      subscription_id: down.id,
      topic: 'clinical.patient.v1',
      partition: 0,
      offset: 7,
      event_id: randomUUID(),
      event_type: 'PatientRegistered',
      patient_id: 'P-1',
      reason: 'http-422',
      event_number: 4,
      created_at: now,
    });
    await db.withSchema(schema).from('subscriptions').where({ id: paused.id }).update({ state: 'paused' });
    // when hub status runs
    const s = await status();
    // then the counts, the rows and the problems say it
    expect(s.subscriptions?.counts).toEqual({ active: 1, error: 1, paused: 1 });
    expect(s.subscriptions?.subscriptions.map((r) => [r.name, r.health, r.delivered, r.deadLetters])).toEqual(
      [
        ['billing feed', 'active', 12, 0],
        ['registry feed', 'error', 3, 1],
        ['care app', 'paused', 0, 0],
      ],
    );
    expect(s.problems).toEqual(
      expect.arrayContaining([
        `subscription ${down.id} (registry feed): receiver failing since ${now.toISOString()} (econnrefused): run \`hub subscriptions status ${down.id}\``,
        `1 dead letter(s) on subscription ${down.id} (registry feed): run \`hub subscriptions dead-letters ${down.id}\``,
      ]),
    );
    expect(statusText(s)).toContain('== subscriptions (3: 1 active, 1 error, 1 paused;');
  });
});
