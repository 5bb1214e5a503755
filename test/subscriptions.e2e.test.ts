import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIT_TOPIC } from '../libs/audit/topic.js';
import { scanTopic } from '../libs/kafka/scan.js';
import { patientRegistered, patientUpdated } from './support/fixtures.js';
import { createTestContext, eventually, type TestContext } from './support/harness.js';
import { freePort, runHub, startProcess, type RunningProcess } from './support/processes.js';
import { startWebhookReceiver, type WebhookReceiver } from './support/webhook-receiver.js';

/**
 * The operator's path (issue 20): `hub subscriptions` against the delivery
 * service running as its own process, as `hub up` runs it, with real Kafka,
 * registry and Postgres, and a receiver that checks every signature.
 */
describe('hub subscriptions with the delivery service', () => {
  let ctx: TestContext;
  let svc: RunningProcess;
  let receiver: WebhookReceiver;
  let env: Record<string, string>;
  let metricsUrl: string;
  const secret = `whsec_${randomBytes(32).toString('base64')}`;

  const hub = (...args: string[]) => runHub(['--json', 'subscriptions', ...args], env);
  const events = (tag: string, n: number) =>
    Array.from({ length: n }, (_, i) =>
      i < 5
        ? patientRegistered(`P-${tag}-${i}`, `F${i}`, `${tag}-${i}`)
        : patientUpdated(`P-${tag}-${i % 5}`, `G${i}`, `${tag}-${i}`),
    );

  beforeAll(async () => {
    ctx = await createTestContext('subs_e2e');
    ctx.extraTopics.push(ctx.topic(AUDIT_TOPIC), ctx.topic('hub.dlq.delivery'));
    const port = await freePort();
    env = {
      KAFKA_BROKERS: ctx.ep.kafkaBrokers.join(','),
      SCHEMA_REGISTRY_URL: ctx.ep.registryUrl,
      DATABASE_URL: ctx.ep.databaseUrl,
      HUB_TOPIC_SUFFIX: ctx.id,
      DELIVERY_SCHEMA: ctx.schema,
      HUB_OPERATOR: 'interface-team',
    };
    metricsUrl = `http://127.0.0.1:${port}/metrics`;
    svc = startProcess(['services/delivery/main.ts'], {
      ...env,
      HTTP_PORT: String(port),
      DELIVERY_POLL_MS: '200',
      LOG_LEVEL: 'info',
    });
    await svc.waitFor(/delivery ready/, 120_000);
    receiver = await startWebhookReceiver(secret);
  }, 180_000);

  afterAll(async () => {
    await svc?.stop();
    await receiver?.close();
    await ctx?.cleanup();
  });

  it('create from the beginning, status, pause, resume and replay, each audited', async () => {
    const first = events('a', 30);
    await ctx.producer.publish(first);

    const created = hub(
      'create',
      '--name',
      'research registry',
      '--channel',
      'webhook',
      '--endpoint',
      receiver.url,
      '--secret',
      secret,
      '--from',
      'beginning',
    );
    expect(created.status, created.stderr).toBe(0);
    const sub = JSON.parse(created.stdout) as { id: string; channel: { secret: string } };
    await eventually(() => Promise.resolve(receiver.received.length >= 30 ? true : undefined), {
      what: '30 deliveries',
    });

    const status = JSON.parse(hub('status', sub.id).stdout) as {
      status: { eventsSinceStart: number; health: string };
    };
    expect(status.status).toMatchObject({ eventsSinceStart: 30, health: 'active' });
    // Listing never shows the secret.
    expect(hub('list').stdout).not.toContain(secret);

    expect(hub('pause', sub.id).status).toBe(0);
    await eventually(
      async () => {
        const text = await (await fetch(metricsUrl)).text();
        return text.includes(
          `hub_delivery_subscription{subscription="${sub.id}",channel="webhook",state="paused"} 1`,
        )
          ? true
          : undefined;
      },
      { what: 'the service to see the pause' },
    );
    const whilePaused = events('b', 10);
    await ctx.producer.publish(whilePaused);
    expect(hub('resume', sub.id).status).toBe(0);
    await eventually(() => Promise.resolve(receiver.received.length >= 40 ? true : undefined), {
      what: 'the events published while paused',
    });
    expect(
      receiver.received
        .slice(30)
        .map((r) => r.event.meta.eventId)
        .sort(),
    ).toEqual(whilePaused.map((e) => e.data.meta.eventId).sort());

    // Log append time separates what is replayed from what is not.
    await new Promise((r) => setTimeout(r, 1_100));
    const from = new Date().toISOString();
    const last = events('c', 10);
    await ctx.producer.publish(last);
    await eventually(() => Promise.resolve(receiver.received.length >= 50 ? true : undefined));
    expect(hub('replay', sub.id, '--from', from).status).toBe(0);
    await eventually(() => Promise.resolve(receiver.received.length >= 60 ? true : undefined), {
      what: 'the replay',
    });
    expect(
      receiver.received
        .slice(50)
        .map((r) => r.event.meta.eventId)
        .sort(),
    ).toEqual(last.map((e) => e.data.meta.eventId).sort());
    expect(receiver.badSignatures).toBe(0);

    const audit = (await scanTopic(ctx.kafka, ctx.topic(AUDIT_TOPIC))).map(
      (r) =>
        JSON.parse(r.value?.toString('utf8') ?? '{}') as {
          subtype?: { code: string }[];
          agent?: { who?: { identifier?: { value?: string } } }[];
        },
    );
    const actions = audit.map((e) => e.subtype?.[0]?.code);
    for (const a of [
      'subscription.create',
      'subscription.pause',
      'subscription.resume',
      'subscription.replay',
    ]) {
      expect(actions).toContain(a);
    }
    const operatorActions = audit.filter((e) => e.subtype?.[0]?.code?.startsWith('subscription.'));
    expect(operatorActions.every((e) => e.agent?.[0]?.who?.identifier?.value === 'interface-team')).toBe(
      true,
    );
    expect(actions.filter((a) => a === 'subscription-delivery').length).toBeGreaterThanOrEqual(60);
  }, 240_000);

  it('refuses a subscription it cannot honour with a specific error, exit 2, and creates nothing', () => {
    const before = JSON.parse(hub('list').stdout) as unknown[];
    const r = hub('create', '--name', 'bad', '--channel', 'webhook', '--endpoint', 'ftp://example.org/hook');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('HUB_INPUT_INVALID');
    expect(r.stderr).toContain('channel.endpoint');
    const unknown = hub(
      'create',
      '--name',
      'bad',
      '--channel',
      'webhook',
      '--endpoint',
      receiver.url,
      '--event-types',
      'PatientExploded',
    );
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('criteria.eventTypes');
    expect(JSON.parse(hub('list').stdout)).toHaveLength(before.length);
  }, 60_000);
});
