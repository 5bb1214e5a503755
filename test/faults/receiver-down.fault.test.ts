import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIT_TOPIC } from '../../libs/audit/topic.js';
import type { SubscriptionInput } from '../../libs/delivery/model.js';
import { createSubscription, deliveryStatus, listDeadLetters } from '../../libs/delivery/store.js';
import { patientUpdated } from '../support/fixtures.js';
import { createTestContext, eventually, type TestContext } from '../support/harness.js';
import { freePort, startProcess, type RunningProcess } from '../support/processes.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.js';

/**
 * Issue 20: "a receiver that is down for 10 minutes loses nothing and gets
 * the backlog in order when it returns; one slow subscriber never delays
 * another". The receiver's port is closed (connection refused) for the
 * outage while a clinic's traffic goes on; a second subscriber stays up.
 * Full size: a 600 s outage; HUB_FAULT_SCALE=0.05 runs it in 30 s.
 */
const SCALE = Number(process.env['HUB_FAULT_SCALE'] ?? 1);
const OUTAGE_MS = Math.round(600_000 * SCALE);
const PATIENTS = 40;
const RATE_PER_S = 4;

describe('receiver down for the outage (delivery fault)', () => {
  let ctx: TestContext;
  let svc: RunningProcess;
  const keyDown = `whsec_${randomBytes(32).toString('base64')}`;
  const keyUp = `whsec_${randomBytes(32).toString('base64')}`;
  let down: WebhookReceiver;
  let up: WebhookReceiver;
  let downPort: number;

  beforeAll(async () => {
    ctx = await createTestContext('rcvdown');
    ctx.extraTopics.push(ctx.topic(AUDIT_TOPIC), ctx.topic('hub.dlq.delivery'));
    const port = await freePort();
    svc = startProcess(['services/delivery/main.ts'], {
      KAFKA_BROKERS: ctx.ep.kafkaBrokers.join(','),
      SCHEMA_REGISTRY_URL: ctx.ep.registryUrl,
      DATABASE_URL: ctx.ep.databaseUrl,
      HUB_TOPIC_SUFFIX: ctx.id,
      DELIVERY_SCHEMA: ctx.schema,
      HTTP_PORT: String(port),
      // The ready line is at info.
      LOG_LEVEL: 'info',
    });
    await svc.waitFor(/delivery ready/, 120_000);
    downPort = await freePort();
    down = await startWebhookReceiver(keyDown, downPort);
    up = await startWebhookReceiver(keyUp);
  }, 300_000);

  afterAll(async () => {
    await svc?.stop();
    await down?.close().catch(() => undefined);
    await up?.close().catch(() => undefined);
    await ctx?.cleanup();
  });

  it(`loses nothing over a ${OUTAGE_MS / 1000} s outage, delivers the backlog in per-patient order, and the other subscriber is not held up`, async () => {
    const mk = (name: string, url: string, secret: string) =>
      createSubscription(
        ctx.db,
        ctx.schema,
        { name, channel: { type: 'webhook', endpoint: url, secret, timeoutMs: 5_000 } } as SubscriptionInput,
        { id: randomUUID(), now: new Date() },
      );
    const subDown = await mk('goes down', down.url, keyDown);
    await mk('stays up', up.url, keyUp);

    let seq = 0;
    /** Publish time by event id. */
    const sentAt = new Map<string, number>();
    const publishFor = async (ms: number) => {
      const end = Date.now() + ms;
      while (Date.now() < end) {
        const patientId = `P-down-${seq % PATIENTS}`;
        const family = `F${String(seq).padStart(6, '0')}`;
        const e = patientUpdated(patientId, family, `down-${seq}`);
        sentAt.set(e.data.meta.eventId, Date.now());
        await ctx.producer.publish([e]);
        seq++;
        await new Promise((r) => setTimeout(r, 1000 / RATE_PER_S));
      }
    };

    await publishFor(5_000);
    await eventually(() => Promise.resolve(down.received.length >= seq ? true : undefined), {
      what: 'before the outage',
    });
    const beforeOutage = down.received;
    await down.close();
    const outageStart = Date.now();
    await publishFor(OUTAGE_MS);
    const status = await deliveryStatus(ctx.db, ctx.schema, subDown.id);
    expect(status?.health).toBe('error');
    expect(status?.lastFailureReason).toBe('econnrefused');

    down = await startWebhookReceiver(keyDown, downPort);
    const back = Date.now();
    await eventually(
      () => Promise.resolve(beforeOutage.length + down.received.length >= seq ? true : undefined),
      {
        timeoutMs: 600_000,
        intervalMs: 500,
        what: 'the backlog',
      },
    );
    const drained = Date.now();

    // Nothing lost, nothing dead-lettered, each patient's events in the order they were published.
    const all = [...beforeOutage, ...down.received];
    const got = all.map(
      (r) =>
        `${r.event.patientId}:${(r.event as unknown as { demographics: { names: { family: string }[] } }).demographics.names[0]?.family}`,
    );
    expect(new Set(got).size).toBe(seq);
    const byPatient = new Map<string, string[]>();
    for (const r of all) {
      const f =
        (r.event as unknown as { demographics: { names: { family: string }[] } }).demographics.names[0]
          ?.family ?? '';
      byPatient.set(r.event.patientId, [...(byPatient.get(r.event.patientId) ?? []), f]);
    }
    for (const families of byPatient.values()) expect(families).toEqual([...families].sort());
    expect(await listDeadLetters(ctx.db, ctx.schema, subDown.id)).toHaveLength(0);
    expect(down.badSignatures).toBe(0);

    // The other subscriber kept up through the outage.
    expect(up.received.length).toBe(seq);
    const upLagMs = up.received.map((r) => r.at - (sentAt.get(r.event.meta.eventId) ?? r.at));
    const upMaxLag = Math.max(...upLagMs);
    // Seconds, not the outage's minutes: the other subscription never waited on this receiver.
    expect(upMaxLag).toBeLessThan(10_000);
    const healthy = await eventually(async () => {
      const s = await deliveryStatus(ctx.db, ctx.schema, subDown.id);
      return s?.health === 'active' ? s : undefined;
    });
    process.stdout.write(
      `[receiver-down] outage ${((back - outageStart) / 1000).toFixed(0)} s, ${seq} events in all, ` +
        `backlog ${down.received.length} delivered ${((drained - back) / 1000).toFixed(1)} s after the receiver returned, ` +
        `0 lost, 0 dead letters; the other subscriber had ${up.received.length}, at most ${upMaxLag} ms after publishing; status after: ${healthy.health}\n`,
    );
  });
});
