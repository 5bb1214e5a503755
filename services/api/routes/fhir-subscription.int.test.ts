import { validateResource } from '@medplum/core';
import type {
  Bundle,
  CapabilityStatement,
  OperationOutcome,
  Parameters,
  Subscription,
} from '@medplum/fhirtypes';
import type { LightMyRequestResponse } from 'fastify';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Knex } from '../../../libs/db/index.js';
import { BACKPORT_EXT, BACKPORT_SUBSCRIPTION, HUB_EXT, TOPICS } from '../../../libs/delivery/fhir.js';
import { loadFhirDefinitions } from '../../../libs/fhir/validate.js';
import type { FakeApi } from '../../../test/support/api.js';
import { backportSubscription, subscriptionApiPerFile } from '../../../test/support/subscriptions.js';

const t = subscriptionApiPerFile('fhir_sub');
let db: Knex;
let schema: string;
let api: FakeApi;
beforeAll(() => {
  // The test's own validateResource calls need the R4 definitions, whatever the routes loaded.
  loadFhirDefinitions();
  db = t.db();
  schema = t.schema();
});
const start = async () => (api = await t.start());
const call: typeof t.call = (method, url, as, body, type = 'application/fhir+json') =>
  t.call(method, url, as, body, type);

const parsed = <T>(r: LightMyRequestResponse) => JSON.parse(r.body) as T;

/** The shared fixture, with two patients, a heartbeat, full-resource and a token of its own. */
const clientSubscription = (over: Record<string, unknown> = {}, channel: Record<string, unknown> = {}) =>
  backportSubscription(
    {
      _criteria: {
        extension: [{ url: BACKPORT_EXT.filter, valueString: 'Encounter?patient=Patient/P1,P2' }],
      },
      ...over,
    },
    {
      extension: [{ url: BACKPORT_EXT.heartbeat, valueUnsignedInt: 300 }],
      _payload: { extension: [{ url: BACKPORT_EXT.payload, valueCode: 'full-resource' }] },
      header: ['Authorization: Bearer care-app-token-123'],
      ...channel,
    },
  );

const hmacOf = (s: Subscription) =>
  s.channel.extension?.find((e) => e.url === HUB_EXT.hmacSecret)?.valueString;

describe('/fhir/Subscription (backport R4)', () => {
  it('given a client Subscription, when created, then 201 with a valid redacted resource, stored as a rest-hook', async () => {
    await start();
    const r = await call('POST', '/fhir/Subscription', 'subWriter', clientSubscription());
    expect(r.statusCode).toBe(201);
    expect(r.headers['content-type']).toContain('application/fhir+json');
    const sub = parsed<Subscription>(r);
    validateResource(sub);
    expect(r.headers.location).toBe(`https://api.test/fhir/Subscription/${sub.id ?? ''}`);
    expect(r.body).not.toContain('care-app-token-123');
    expect(sub).toMatchObject({
      status: 'active',
      criteria: TOPICS.Encounter,
      meta: { profile: [BACKPORT_SUBSCRIPTION] },
      channel: { type: 'rest-hook', header: ['Authorization: Bearer ***'] },
    });
    const row = await db
      .withSchema(schema)
      .from('subscriptions')
      .where({ id: sub.id })
      .first<{ spec: { channel: unknown; criteria: unknown } }>();
    expect(row?.spec.channel).toMatchObject({
      type: 'rest-hook',
      payload: 'full-resource',
      heartbeatSeconds: 300,
      auth: { type: 'bearer', token: 'care-app-token-123' },
    });
    expect(row?.spec.criteria).toMatchObject({ resourceTypes: ['Encounter'], patients: ['P1', 'P2'] });
    // The hub's own view of the same subscription.
    expect((await call('GET', `/subscriptions/${sub.id ?? ''}`, 'subReader')).statusCode).toBe(200);
  });

  it('given no auth header, when created, then a generated HMAC secret shown once in the answer, *** afterwards', async () => {
    await start();
    const r = await call(
      'POST',
      '/fhir/Subscription',
      'subWriter',
      clientSubscription({}, { header: undefined }),
    );
    const sub = parsed<Subscription>(r);
    expect(hmacOf(sub)).toMatch(/^whsec_/);
    const again = parsed<Subscription>(await call('GET', `/fhir/Subscription/${sub.id ?? ''}`, 'subReader'));
    expect(hmacOf(again)).toBe('***');
    // Sent back unchanged (secret redacted), the update keeps the stored secret.
    const put = await call('PUT', `/fhir/Subscription/${sub.id ?? ''}`, 'subWriter', {
      ...again,
      reason: 'renamed',
      status: 'off',
    });
    expect(put.statusCode).toBe(200);
    expect(parsed<Subscription>(put)).toMatchObject({ reason: 'renamed', status: 'off' });
    const row = await db
      .withSchema(schema)
      .from('subscriptions')
      .where({ id: sub.id })
      .first<{ state: string; spec: { channel: { auth: unknown } } }>();
    expect(row?.state).toBe('paused');
    expect(row?.spec.channel.auth).toEqual({ type: 'hmac', secret: hmacOf(sub) });
  });

  it('given subscriptions, when searched, read, $status-ed and deleted, then FHIR answers; other channels are not FHIR subscriptions', async () => {
    await start();
    const sub = parsed<Subscription>(
      await call('POST', '/fhir/Subscription', 'subWriter', clientSubscription({ status: 'off' })),
    );
    expect(sub.status).toBe('off');
    const hook = await call(
      'POST',
      '/subscriptions',
      'subWriter',
      { name: 'plain', channel: { type: 'webhook', endpoint: 'https://x.example.org/' } },
      'application/json',
    );
    const webhookId = (JSON.parse(hook.body) as { id: string }).id;
    const search = parsed<Bundle>(await call('GET', '/fhir/Subscription', 'subReader'));
    validateResource(search);
    expect(search).toMatchObject({ type: 'searchset', total: 1 });
    expect(search.entry?.[0]?.fullUrl).toBe(`https://api.test/fhir/Subscription/${sub.id ?? ''}`);
    expect((await call('GET', `/fhir/Subscription/${webhookId}`, 'subReader')).statusCode).toBe(404);
    const status = parsed<Bundle>(
      await call('GET', `/fhir/Subscription/${sub.id ?? ''}/$status`, 'subReader'),
    );
    validateResource(status);
    const p = status.entry?.[0]?.resource as Parameters;
    expect(
      p.parameter?.map((x) => [
        x.name,
        x.valueCode ?? x.valueString ?? x.valueCanonical ?? x.valueReference?.reference,
      ]),
    ).toEqual([
      ['subscription', `https://api.test/fhir/Subscription/${sub.id ?? ''}`],
      ['topic', TOPICS.Encounter],
      ['status', 'off'],
      ['type', 'query-status'],
      ['events-since-subscription-start', '0'],
    ]);
    expect((await call('DELETE', `/fhir/Subscription/${sub.id ?? ''}`, 'subWriter')).statusCode).toBe(204);
    expect((await call('GET', `/fhir/Subscription/${sub.id ?? ''}`, 'subReader')).statusCode).toBe(404);
  });

  it('given invalid resources, when created, then 400 OperationOutcomes naming the element, never the value', async () => {
    await start();
    const phi = 'MRN-4711-SECRET';
    const cases: [unknown, RegExp][] = [
      [clientSubscription({ status: 'bogus' }), /status/],
      [clientSubscription({ reason: 42 }), /not a valid FHIR R4 Subscription at Subscription.reason/],
      [clientSubscription({ unknownElement: phi }), /unknown query parameter|unknownElement/],
      [
        clientSubscription({ criteria: `Encounter?patient=${phi}` }),
        /Subscription.criteria must be the canonical URL/,
      ],
      [clientSubscription({}, { endpoint: `http://${phi}.example.org/` }), /Subscription.channel.endpoint/],
      [`{"resourceType":"Subscription","reason":"a","reason":"b"}`, /duplicate|Duplicate/],
    ];
    for (const [body, message] of cases) {
      const r = await call('POST', '/fhir/Subscription', 'subWriter', body);
      expect(r.statusCode, String(message)).toBe(400);
      const oo = parsed<OperationOutcome>(r);
      expect(oo.resourceType).toBe('OperationOutcome');
      expect(JSON.stringify(oo.issue)).toMatch(message);
      expect(r.body).not.toContain(phi);
    }
    expect(
      (
        await call(
          'PUT',
          `/fhir/Subscription/${'1'.repeat(8)}-1111-4111-8111-${'1'.repeat(12)}`,
          'subWriter',
          clientSubscription({ id: 'other' }),
        )
      ).statusCode,
    ).toBe(400);
    expect(await db.withSchema(schema).from('subscriptions').count<{ n: string }[]>({ n: '*' })).toEqual([
      { n: '0' },
    ]);
  });

  it('given tokens without the Subscription scopes, when the FHIR routes are called, then 401/403 OperationOutcomes, audited', async () => {
    await start();
    expect((await call('GET', '/fhir/Subscription')).statusCode).toBe(401);
    for (const as of ['wildcard', 'staff', 'admin'] as const) {
      const r = await call('POST', '/fhir/Subscription', as, clientSubscription());
      expect(r.statusCode, as).toBe(403);
      expect(parsed<OperationOutcome>(r).resourceType).toBe('OperationOutcome');
    }
    expect((await call('POST', '/fhir/Subscription', 'subReader', clientSubscription())).statusCode).toBe(
      403,
    );
    expect(api.audits.length).toBe(5);
    expect(api.audits.every((a) => a.outcome === '4')).toBe(true);
  });

  it('given the CapabilityStatement, when read, then Subscription with the backport profile, $status and the topics', async () => {
    await start();
    const cs = parsed<CapabilityStatement>(await call('GET', '/fhir/metadata'));
    validateResource(cs);
    const sub = cs.rest?.[0]?.resource?.find((r) => r.type === 'Subscription');
    expect(sub?.supportedProfile).toEqual([BACKPORT_SUBSCRIPTION]);
    expect(sub?.operation?.map((o) => o.name)).toEqual(['status']);
    expect(sub?.extension?.map((e) => e.valueCanonical).sort()).toEqual(Object.values(TOPICS).sort());
    expect(cs.instantiates).toEqual([
      'http://hl7.org/fhir/uv/subscriptions-backport/CapabilityStatement/backport-subscription-server-r4',
    ]);
  });
});
