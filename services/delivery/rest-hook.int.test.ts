import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Bundle, Parameters } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topicOf } from '../../libs/delivery/fhir.js';
import { createSubscription } from '../../libs/delivery/store.js';
import { parseSubscription } from '../../libs/delivery/input.js';
import { loadFhirDefinitions } from '../../libs/fhir/validate.js';
import { expectBackportNotification } from '../../test/support/backport.js';
import { startDeliveryInProcess } from '../../test/support/delivery.js';
import { patientRegistered, patientUpdated } from '../../test/support/fixtures.js';
import { createTestContext, eventually, type TestContext } from '../../test/support/harness.js';
import type { DeliveryService } from './app.js';

/** A FHIR endpoint: every notification Bundle as received, with its Authorization header. */
async function fhirEndpoint() {
  const got: { bundle: Bundle; authorization: string | undefined; contentType: string | undefined }[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({
        bundle: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Bundle,
        authorization: req.headers.authorization,
        contentType: req.headers['content-type'],
      });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/fhir-notify`,
    got,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const statusOf = (b: Bundle) => b.entry?.[0]?.resource as Parameters;
const param = (p: Parameters, name: string) => p.parameter?.find((x) => x.name === name);

describe('delivery service: FHIR rest-hook notifications (R4 backport) through Kafka', () => {
  let ctx: TestContext;
  let svc: DeliveryService;

  beforeAll(async () => {
    loadFhirDefinitions();
    ctx = await createTestContext('dlv_rest');
    ({ svc } = await startDeliveryInProcess(ctx));
  }, 120_000);

  afterAll(async () => {
    await svc?.stop();
    await ctx?.cleanup();
  });

  it('sends event notifications that meet the backport profile, numbered from 1, with the bearer token, then heartbeats', async () => {
    const endpoint = await fhirEndpoint();
    const input = parseSubscription({
      name: 'care management',
      channel: {
        type: 'rest-hook',
        endpoint: endpoint.url,
        topic: topicOf('Patient'),
        payload: 'full-resource',
        auth: { type: 'bearer', token: 'receiver-token-123' },
        heartbeatSeconds: 2,
      },
    });
    const sub = await createSubscription(ctx.db, ctx.schema, input, { id: randomUUID(), now: new Date() });
    await eventually(() => Promise.resolve(svc.supervisor.running().has(sub.id) ? true : undefined));
    const stored = { ...sub };

    await ctx.producer.publish([
      patientRegistered('P-REST-1', 'Resthook', 'rest-1'),
      patientUpdated('P-REST-1', 'Resthook-Changed', 'rest-2'),
    ]);
    const events = await eventually(() => {
      const n = endpoint.got.filter(
        (g) => param(statusOf(g.bundle), 'type')?.valueCode === 'event-notification',
      );
      return Promise.resolve(n.length >= 2 ? n : undefined);
    });
    for (const [i, g] of events.entries()) {
      expect(g.authorization).toBe('Bearer receiver-token-123');
      expect(g.contentType).toMatch(/^application\/fhir\+json/);
      const status = expectBackportNotification(g.bundle, stored, 'event-notification');
      expect(param(status, 'events-since-subscription-start')?.valueString).toBe(String(i + 1));
      // full-resource: the Patient itself travels in the bundle.
      expect(g.bundle.entry?.some((e) => e.resource?.resourceType === 'Patient')).toBe(true);
    }

    // Nothing more to send: a heartbeat within its period, counting what was sent.
    const beat = await eventually(
      () =>
        Promise.resolve(
          endpoint.got.find((g) => param(statusOf(g.bundle), 'type')?.valueCode === 'heartbeat'),
        ),
      { timeoutMs: 20_000, what: 'a heartbeat' },
    );
    const status = expectBackportNotification(beat.bundle, stored, 'heartbeat');
    expect(param(status, 'events-since-subscription-start')?.valueString).toBe('2');
    await endpoint.close();
  }, 120_000);
});
