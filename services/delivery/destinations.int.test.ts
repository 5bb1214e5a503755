import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDestinations } from '../../libs/delivery/destinations.js';
import type { SubscriptionInput } from '../../libs/delivery/model.js';
import { createSubscription, deliveryStatus } from '../../libs/delivery/store.js';
import { startDeliveryInProcess } from '../../test/support/delivery.js';
import { patientRegistered } from '../../test/support/fixtures.js';
import { createTestContext, eventually, type TestContext } from '../../test/support/harness.js';
import { freePort, startProcess } from '../../test/support/processes.js';
import { startWebhookReceiver, type WebhookReceiver } from '../../test/support/webhook-receiver.js';
import type { DeliveryService } from './app.js';

/** DELIVERY_ALLOWED_DESTINATIONS: a subscription pointed at a host the site did not allow sends nothing. */
describe('delivery service: allowed destinations', () => {
  let ctx: TestContext;
  let svc: DeliveryService;
  let allowed: WebhookReceiver;
  let other: WebhookReceiver;
  const key = `whsec_${randomBytes(32).toString('base64')}`;

  beforeAll(async () => {
    ctx = await createTestContext('dlv_dest');
    const port = await freePort();
    allowed = await startWebhookReceiver(key, port);
    other = await startWebhookReceiver(key);
    ({ svc } = await startDeliveryInProcess(ctx, { destinations: parseDestinations(`127.0.0.1:${port}`) }));
  }, 120_000);

  afterAll(async () => {
    await svc?.stop();
    await allowed?.close();
    await other?.close();
    await ctx?.cleanup();
  });

  const subscribe = (url: string, name: string) =>
    createSubscription(
      ctx.db,
      ctx.schema,
      {
        name,
        channel: { type: 'webhook', endpoint: url, secret: key, timeoutMs: 5_000 },
      } as SubscriptionInput,
      { id: randomUUID(), now: new Date() },
    );

  it('delivers to an allowed destination; one elsewhere is never started and says why', async () => {
    const ok = await subscribe(allowed.url, 'agreed receiver');
    const refused = await subscribe(other.url, 'unknown receiver');
    const status = await eventually(async () => {
      const s = await deliveryStatus(ctx.db, ctx.schema, refused.id);
      return s?.lastFailureReason ? s : undefined;
    });
    expect(status).toMatchObject({ health: 'error', lastFailureReason: 'destination-not-allowed' });
    await eventually(() => Promise.resolve(svc.supervisor.running().has(ok.id) ? true : undefined));
    expect(svc.supervisor.running().has(refused.id)).toBe(false);

    await ctx.producer.publish([patientRegistered('P-DEST-1', 'Dest', 'dest-1')]);
    await eventually(() => Promise.resolve(allowed.received.length >= 1 ? true : undefined));
    expect(other.received).toHaveLength(0);
  }, 60_000);

  it('refuses to start with a list it cannot read, naming the entry by position', async () => {
    const p = startProcess(['services/delivery/main.ts'], {
      DELIVERY_ALLOWED_DESTINATIONS: 'billing.example, https://x.example/path',
      HTTP_PORT: String(await freePort()),
    });
    const code = await new Promise<number | null>((r) => p.child.once('exit', r));
    expect(code).not.toBe(0);
    expect(p.output()).toContain('DELIVERY_ALLOWED_DESTINATIONS: entry 2 is not host, host:port or *.domain');
    expect(p.output()).not.toContain('x.example/path');
  }, 60_000);
});
