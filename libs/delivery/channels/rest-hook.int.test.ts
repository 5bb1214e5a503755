import { validateResource } from '@medplum/core';
import type { Bundle, Parameters } from '@medplum/fhirtypes';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { allergy } from '../../../test/support/clinical-facts.js';
import { loadFhirDefinitions } from '../../fhir/validate.js';
import { topicOf } from '../fhir.js';
import { idempotencyKey, type Delivery, type RestHookChannel, type Subscription } from '../model.js';
import { createRestHookSender, FHIR_JSON_UTF8 } from './rest-hook.js';

beforeAll(() => loadFhirDefinitions(), 30_000);

const NOW = Date.parse('2026-03-02T12:00:00.000Z');
const SECRET = `whsec_${Buffer.alloc(32, 9).toString('base64')}`;

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A receiver on this machine: records each request and answers what the test says. */
interface Receiver {
  url: string;
  received: Received[];
  answer: (status: number, body?: string) => void;
  /** Accept connections but never answer. */
  hang: () => void;
  close: () => Promise<void>;
}

let servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  servers = [];
});

async function startReceiver(): Promise<Receiver> {
  const received: Received[] = [];
  let status = 200;
  let text = '';
  let hanging = false;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      if (hanging) return;
      res.writeHead(status, { 'content-type': 'text/plain' }).end(text);
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/fhir/$subscription-hook`,
    received,
    answer: (s, b = '') => {
      status = s;
      text = b;
    },
    hang: () => {
      hanging = true;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

function channel(endpoint: string, over: Partial<RestHookChannel> = {}): RestHookChannel {
  return {
    type: 'rest-hook',
    endpoint,
    topic: topicOf('AllergyIntolerance'),
    payload: 'full-resource',
    auth: { type: 'bearer', token: 'receiver-token-1234' },
    heartbeatSeconds: 60,
    timeoutMs: 2000,
    ...over,
  };
}

function deliveryTo(c: RestHookChannel): Delivery {
  const sub: Subscription = {
    id: '5f0c2d1e-3b4a-4c5d-8e6f-7a8b9c0d1e2f',
    name: 'allergies',
    state: 'active',
    generation: 1,
    createdAt: new Date(NOW).toISOString(),
    updatedAt: new Date(NOW).toISOString(),
    criteria: {
      eventTypes: [],
      resourceTypes: ['AllergyIntolerance'],
      facilities: [],
      orderCodes: [],
      patients: [],
    },
    channel: c,
    start: { from: 'now' },
    retry: { maxBackoffSeconds: 60, giveUpAfterSeconds: 3600 },
  };
  const event = allergy();
  return {
    subscription: sub,
    record: { topic: 'clinical.patient.v1', partition: 0, offset: 5n, key: 'P1', timestamp: NOW, event },
    eventNumber: 3,
    idempotencyKey: idempotencyKey(sub.id, event.data.meta.eventId),
  };
}

const opts = { now: () => NOW, fhirBase: 'https://hub.test/fhir' };

describe('FHIR rest-hook sender against a local HTTP receiver', () => {
  it('given a bearer subscription, when an event is delivered twice, then the same valid notification bundle, key and token each time', async () => {
    const r = await startReceiver();
    const c = channel(r.url);
    const sender = createRestHookSender(c, opts);
    const d = deliveryTo(c);
    expect(await sender.deliver(d)).toEqual({ kind: 'delivered', status: '200' });
    expect(await sender.deliver(d)).toEqual({ kind: 'delivered', status: '200' });
    expect(r.received).toHaveLength(2);
    const [first, second] = r.received;
    expect(first?.headers['content-type']).toBe(FHIR_JSON_UTF8);
    expect(first?.headers.authorization).toBe('Bearer receiver-token-1234');
    expect(first?.headers['idempotency-key']).toBe(d.idempotencyKey);
    expect(second?.body).toBe(first?.body);
    const bundle = JSON.parse(first?.body ?? '{}') as Bundle;
    validateResource(bundle);
    expect(bundle).toMatchObject({ resourceType: 'Bundle', type: 'history', id: d.idempotencyKey });
    expect(bundle.entry?.[1]).toMatchObject({
      fullUrl: 'https://hub.test/fhir/AllergyIntolerance/AL1',
      resource: { resourceType: 'AllergyIntolerance', id: 'AL1' },
    });
  });

  it('given an HMAC subscription, when delivered, then the receiver verifies the Standard Webhooks signature and no bearer is sent', async () => {
    const r = await startReceiver();
    const c = channel(r.url, { auth: { type: 'hmac', secret: SECRET } });
    await createRestHookSender(c, opts).deliver(deliveryTo(c));
    const got = r.received[0]!;
    expect(got.headers.authorization).toBeUndefined();
    const h = got.headers as Record<string, string>;
    // The receiver's own check (the reference library), with the time of sending.
    const verifier = new Webhook(SECRET);
    const at = new Date(Number(h['webhook-timestamp']) * 1000);
    expect(verifier.sign(h['webhook-id'] ?? '', at, got.body)).toBe(h['webhook-signature']);
    expect(h['webhook-id']).toBe(h['idempotency-key']);
    const tampered = got.body.replace('AL1', 'AL2');
    expect(verifier.sign(h['webhook-id'] ?? '', at, tampered)).not.toBe(h['webhook-signature']);
  });

  it('given receiver answers, when delivered, then 2xx delivered, 408/429/5xx unreachable, other 4xx rejected with the body start', async () => {
    const r = await startReceiver();
    const c = channel(r.url);
    const sender = createRestHookSender(c, opts);
    const d = deliveryTo(c);
    const cases: [number, unknown][] = [
      [202, { kind: 'delivered', status: '202' }],
      [408, { kind: 'unreachable', reason: 'http-408' }],
      [429, { kind: 'unreachable', reason: 'http-429' }],
      [500, { kind: 'unreachable', reason: 'http-500' }],
      [503, { kind: 'unreachable', reason: 'http-503' }],
      [404, { kind: 'rejected', reason: 'http-404', detail: 'http 404: not here' }],
    ];
    for (const [status, outcome] of cases) {
      r.answer(status, status === 404 ? 'not here' : 'x');
      expect(await sender.deliver(d), String(status)).toEqual(outcome);
    }
    const long = `${'y'.repeat(600)}`;
    r.answer(422, long);
    expect(await sender.deliver(d)).toEqual({
      kind: 'rejected',
      reason: 'http-422',
      detail: `http 422: ${'y'.repeat(500)}`,
    });
  });

  it('given a receiver that is down or never answers, when delivered, then unreachable (retried), never thrown', async () => {
    const r = await startReceiver();
    const url = r.url;
    await r.close();
    const down = await createRestHookSender(channel(url), opts).deliver(deliveryTo(channel(url)));
    expect(down).toEqual({ kind: 'unreachable', reason: 'econnrefused' });
    const slow = await startReceiver();
    slow.hang();
    const c = channel(slow.url, { timeoutMs: 200 });
    expect(await createRestHookSender(c, opts).deliver(deliveryTo(c))).toEqual({
      kind: 'unreachable',
      reason: 'timeout',
    });
  });

  it('given a quiet subscription, when a heartbeat is sent, then a heartbeat bundle with the count so far', async () => {
    const r = await startReceiver();
    const c = channel(r.url, { auth: { type: 'hmac', secret: SECRET } });
    const d = deliveryTo(c);
    const sender = createRestHookSender(c, opts);
    expect(await sender.heartbeat?.(d.subscription, 41)).toEqual({ kind: 'delivered', status: '200' });
    const bundle = JSON.parse(r.received[0]?.body ?? '{}') as Bundle;
    validateResource(bundle);
    const p = bundle.entry?.[0]?.resource as Parameters;
    expect(p.parameter?.find((x) => x.name === 'type')?.valueCode).toBe('heartbeat');
    expect(p.parameter?.find((x) => x.name === 'events-since-subscription-start')?.valueString).toBe('41');
    expect(r.received[0]?.headers['webhook-id']).toBe(bundle.id);
    await sender.close();
  });
});
