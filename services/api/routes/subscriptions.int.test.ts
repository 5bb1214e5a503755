import type { LightMyRequestResponse } from 'fastify';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Knex } from '../../../libs/db/index.js';
import type { FakeApi } from '../../../test/support/api.js';
import { subscriptionApiPerFile } from '../../../test/support/subscriptions.js';

const t = subscriptionApiPerFile('sub_api');
let db: Knex;
let schema: string;
let api: FakeApi;
beforeAll(() => {
  db = t.db();
  schema = t.schema();
});
const start = async () => (api = await t.start());
const { call } = t;

const json = (r: LightMyRequestResponse) =>
  JSON.parse(r.body) as Record<string, unknown> & { channel: Record<string, unknown>; id: string };

const webhook = {
  name: 'billing vendor',
  criteria: { eventTypes: ['EncounterStarted', 'EncounterEnded'], facilities: ['ACME'] },
  channel: { type: 'webhook', endpoint: 'https://billing.example.org/hub-events' },
  start: { from: 'beginning' },
};

describe('/subscriptions (hub resource)', () => {
  it('given a writer, when a webhook is created without a secret, then a whsec_ secret is shown once, then only as ***', async () => {
    await start();
    const created = await call('POST', '/subscriptions', 'subWriter', webhook);
    expect(created.statusCode).toBe(201);
    const sub = json(created);
    expect(created.headers.location).toBe(`/subscriptions/${sub.id}`);
    const secret = String(sub.channel.secret);
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(secret.slice(6), 'base64')).toHaveLength(32);
    expect(sub).toMatchObject({ name: 'billing vendor', state: 'active', start: { from: 'beginning' } });
    const read = await call('GET', `/subscriptions/${sub.id}`, 'subReader');
    expect(read.statusCode).toBe(200);
    expect(json(read).channel.secret).toBe('***');
    const list = await call('GET', '/subscriptions', 'subReader');
    expect(list.body).not.toContain(secret);
    expect((JSON.parse(list.body) as unknown[]).length).toBe(1);
    // The secret is stored as generated: the delivery service signs with it.
    const row = await db
      .withSchema(schema)
      .from('subscriptions')
      .where({ id: sub.id })
      .first<{ spec: { channel: { secret: string } } }>();
    expect(row?.spec.channel.secret).toBe(secret);
  });

  it('given a stored secret, when updated with *** or no secret, then it is kept; a new one replaces it', async () => {
    await start();
    const sub = json(await call('POST', '/subscriptions', 'subWriter', webhook));
    const stored = async () =>
      (
        await db
          .withSchema(schema)
          .from('subscriptions')
          .where({ id: sub.id })
          .first<{ spec: { channel: { secret: string } } }>()
      )?.spec.channel.secret;
    const first = await stored();
    const kept = await call('PUT', `/subscriptions/${sub.id}`, 'subWriter', {
      ...webhook,
      name: 'renamed',
      channel: { ...webhook.channel, secret: '***' },
    });
    expect(kept.statusCode).toBe(200);
    expect(json(kept)).toMatchObject({ name: 'renamed', channel: { secret: '***' } });
    expect(await stored()).toBe(first);
    await call('PUT', `/subscriptions/${sub.id}`, 'subWriter', webhook);
    expect(await stored()).toBe(first);
    const replaced = `whsec_${Buffer.alloc(32, 1).toString('base64')}`;
    await call('PUT', `/subscriptions/${sub.id}`, 'subWriter', {
      ...webhook,
      channel: { ...webhook.channel, secret: replaced },
    });
    expect(await stored()).toBe(replaced);
  });

  it('given a subscription, when paused, resumed, replayed and deleted, then each is stored and the status follows', async () => {
    await start();
    const sub = json(await call('POST', '/subscriptions', 'subWriter', webhook));
    const paused = await call('POST', `/subscriptions/${sub.id}/pause`, 'subWriter');
    expect(json(paused)).toMatchObject({ state: 'paused', generation: 2 });
    expect(json(await call('GET', `/subscriptions/${sub.id}/status`, 'subReader'))).toMatchObject({
      eventsSinceStart: 0,
      deadLetters: 0,
      health: 'paused',
    });
    expect(json(await call('POST', `/subscriptions/${sub.id}/resume`, 'subWriter'))).toMatchObject({
      state: 'active',
      generation: 3,
    });
    const replay = await call('POST', `/subscriptions/${sub.id}/replay`, 'subWriter', {
      from: '2026-03-01T00:00:00Z',
    });
    expect(replay.statusCode).toBe(200);
    const row = await db
      .withSchema(schema)
      .from('subscriptions')
      .where({ id: sub.id })
      .first<{ replay_from: Date }>();
    expect(row?.replay_from.toISOString()).toBe('2026-03-01T00:00:00.000Z');
    expect((await call('DELETE', `/subscriptions/${sub.id}`, 'subWriter')).statusCode).toBe(204);
    expect((await call('GET', `/subscriptions/${sub.id}`, 'subReader')).statusCode).toBe(404);
    expect((await call('DELETE', `/subscriptions/${sub.id}`, 'subWriter')).statusCode).toBe(404);
  });

  it('given a rest-hook and an MLLP channel, when created, then stored; a bearer token is never shown back', async () => {
    await start();
    const restHook = {
      name: 'care app',
      channel: {
        type: 'rest-hook',
        endpoint: 'https://care.example.org/hook',
        topic: 'https://clinical-hub.example/fhir/SubscriptionTopic/Encounter',
        auth: { type: 'bearer', token: 'care-app-token-123' },
      },
    };
    const r = await call('POST', '/subscriptions', 'subWriter', restHook);
    expect(r.statusCode).toBe(201);
    expect(r.body).not.toContain('care-app-token-123');
    expect(json(r).channel).toMatchObject({ auth: { type: 'bearer', token: '***' }, payload: 'id-only' });
    // The topic's resource type is the criteria's.
    expect(json(r).criteria).toMatchObject({ resourceTypes: ['Encounter'] });
    const elsewhere = { ...restHook.channel, topic: 'https://elsewhere.example.org/SubscriptionTopic/x' };
    const refused = await call('POST', '/subscriptions', 'subWriter', { ...restHook, channel: elsewhere });
    expect(JSON.parse(refused.body)).toMatchObject({
      message: 'channel.topic: not a SubscriptionTopic of this hub',
    });
    const otherType = await call('POST', '/subscriptions', 'subWriter', {
      ...restHook,
      criteria: { resourceTypes: ['Patient'] },
    });
    expect(otherType.statusCode).toBe(400);
    const mllp = await call('POST', '/subscriptions', 'subWriter', {
      name: 'lab',
      channel: { type: 'mllp', host: 'lis.example.org', port: 2575 },
    });
    expect(json(mllp).channel).toMatchObject({ type: 'mllp', version: '2.5.1' });
  });

  it('given invalid input, when created, then 400 naming the field, never its value; unknown ids 404; bad ids 400', async () => {
    await start();
    const bad = await call('POST', '/subscriptions', 'subWriter', {
      ...webhook,
      channel: { type: 'webhook', endpoint: 'http://phi-host-MRN4711.example.org/' },
    });
    expect(bad.statusCode).toBe(400);
    expect(json(bad)).toMatchObject({ code: 'HUB_INPUT_INVALID' });
    expect(String(json(bad).message)).toMatch(/^invalid subscription: channel.endpoint: /);
    expect(bad.body).not.toContain('MRN4711');
    const unknown = await call('POST', '/subscriptions', 'subWriter', { ...webhook, owner: 'x' });
    expect(unknown.statusCode).toBe(400);
    expect(
      (
        await call(
          'PUT',
          `/subscriptions/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}`,
          'subWriter',
          webhook,
        )
      ).statusCode,
    ).toBe(404);
    expect((await call('GET', '/subscriptions/not-a-uuid', 'subReader')).statusCode).toBe(400);
    expect(
      (
        await call('POST', '/subscriptions', 'subWriter', {
          ...webhook,
          channel: { ...webhook.channel, secret: '***' },
        })
      ).statusCode,
    ).toBe(400);
  });

  it('given tokens without the Subscription scopes, when any route is called, then 401/403 and nothing is stored', async () => {
    await start();
    expect((await call('GET', '/subscriptions')).statusCode).toBe(401);
    for (const as of ['wildcard', 'admin', 'staff'] as const) {
      expect((await call('GET', '/subscriptions', as)).statusCode, as).toBe(403);
      expect((await call('POST', '/subscriptions', as, webhook)).statusCode, as).toBe(403);
    }
    const denied = await call('POST', '/subscriptions', 'subReader', webhook);
    expect(denied.statusCode).toBe(403);
    expect(denied.headers['www-authenticate']).toContain('scope="system/Subscription.c"');
    expect(await db.withSchema(schema).from('subscriptions').count<{ n: string }[]>({ n: '*' })).toEqual([
      { n: '0' },
    ]);
  });

  it('given any call, when answered, then it is audited as a Subscription interaction naming no patient', async () => {
    await start();
    const sub = json(
      await call('POST', '/subscriptions', 'subWriter', { ...webhook, criteria: { patients: ['P1'] } }),
    );
    await call('DELETE', `/subscriptions/${sub.id}`, 'subWriter');
    await call('GET', '/subscriptions', 'wildcard');
    const seen = api.audits.map((a) => ({
      action: a.action,
      outcome: a.outcome,
      type: a.entity?.find((e) => e.what?.reference?.startsWith('Patient/')) ? 'patient' : 'none',
      route: a.subtype?.[0]?.code,
    }));
    expect(seen).toEqual([
      { action: 'C', outcome: '0', type: 'none', route: 'create' },
      { action: 'D', outcome: '0', type: 'none', route: 'delete' },
      { action: 'R', outcome: '4', type: 'none', route: 'search-type' },
    ]);
    expect(api.logLines.join('\n')).not.toContain('whsec_');
  });
});
