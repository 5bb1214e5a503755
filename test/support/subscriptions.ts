import type { LightMyRequestResponse } from 'fastify';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { createDb, dropSchema, type Knex } from '../../libs/db/index.js';
import { BACKPORT_EXT, BACKPORT_SUBSCRIPTION, topicOf } from '../../libs/delivery/fhir.js';
import { migrateDelivery } from '../../libs/delivery/store.js';
import { SUBSCRIPTION_PRINCIPALS, startFakeApi, type FakeApi } from './api.js';
import { endpoints, uniqueId } from './harness.js';

/**
 * A client's backport-subscription: the IG's R4 example Subscription, on the
 * hub's Encounter topic, with a bearer header; `over` replaces top-level
 * elements, `channel` channel elements (undefined removes one).
 */
export function backportSubscription(
  over: Record<string, unknown> = {},
  channel: Record<string, unknown> = {},
) {
  return {
    resourceType: 'Subscription',
    meta: { profile: [BACKPORT_SUBSCRIPTION] },
    status: 'requested',
    reason: 'Admissions for the care-management app',
    criteria: topicOf('Encounter'),
    _criteria: { extension: [{ url: BACKPORT_EXT.filter, valueString: 'Encounter?patient=Patient/P1' }] },
    channel: {
      extension: [
        { url: BACKPORT_EXT.heartbeat, valueUnsignedInt: 120 },
        { url: BACKPORT_EXT.timeout, valueUnsignedInt: 30 },
        { url: BACKPORT_EXT.maxCount, valuePositiveInt: 20 },
      ],
      type: 'rest-hook',
      endpoint: 'https://care.example.org/fhir/$subscription-hook',
      payload: 'application/fhir+json',
      _payload: { extension: [{ url: BACKPORT_EXT.payload, valueCode: 'id-only' }] },
      header: ['Authorization: Bearer secret-token-abc-123'],
      ...channel,
    },
    ...over,
  };
}

export type SubscriptionCaller = keyof typeof SUBSCRIPTION_PRINCIPALS | 'admin' | 'staff';

/** The fake API with the subscription routes over a delivery schema of this test file, in real Postgres. */
export interface SubscriptionApiTest {
  db: () => Knex;
  schema: () => string;
  start: () => Promise<FakeApi>;
  api: () => FakeApi;
  /** A request with the bearer token of `as` and a JSON body of `type`. */
  call(
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    url: string,
    as?: SubscriptionCaller,
    body?: unknown,
    type?: string,
  ): Promise<LightMyRequestResponse>;
}

/** For a test file: its own delivery schema (migrated once, emptied after each test, dropped at the end). */
export function subscriptionApiPerFile(prefix: string): SubscriptionApiTest {
  let db: Knex | undefined;
  let schema = '';
  let api: FakeApi | undefined;
  beforeAll(async () => {
    db = createDb(endpoints().databaseUrl);
    schema = uniqueId(prefix);
    await migrateDelivery(db, schema);
  }, 60_000);
  afterEach(async () => {
    await api?.close();
    api = undefined;
    await db?.withSchema(schema).from('subscriptions').delete();
  });
  afterAll(async () => {
    if (!db) return;
    await dropSchema(db, schema);
    await db.destroy();
  });
  const must = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`${what} not started`);
    return v;
  };
  return {
    db: () => must(db, 'database'),
    schema: () => schema,
    start: async () =>
      (api = await startFakeApi(
        {},
        { subscriptions: { db: must(db, 'database'), schema }, principals: SUBSCRIPTION_PRINCIPALS },
      )),
    api: () => must(api, 'api'),
    call: (method, url, as, body, type = 'application/json') =>
      must(api, 'api').http.inject({
        method,
        url,
        headers: {
          ...(as ? { authorization: `Bearer tok-${as}` } : {}),
          ...(body !== undefined ? { 'content-type': type } : {}),
        },
        ...(body !== undefined ? { payload: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
      }),
  };
}
