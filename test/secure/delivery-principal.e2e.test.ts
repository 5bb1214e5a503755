import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIT_TOPIC } from '../../libs/audit/topic.js';
import type { SubscriptionInput } from '../../libs/delivery/model.js';
import {
  createSubscription,
  deleteSubscription,
  listDeadLetters,
  requestRedrive,
} from '../../libs/delivery/store.js';
import { deliveryGroupId } from '../../libs/delivery/worker.js';
import { dlqTopicFor } from '../../libs/kafka/dlq.js';
import { scanTopic } from '../../libs/kafka/scan.js';
import { createMetrics } from '../../libs/telemetry/metrics.js';
import { buildDeliveryService, type DeliveryService } from '../../services/delivery/app.js';
import { patientRegistered } from '../support/fixtures.js';
import { eventually } from '../support/harness.js';
import { secureBroker, type SecureBroker } from '../support/secure-stack.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.js';

/**
 * The delivery service under its own principal on the secure profile
 * (libs/stack/secure.ts `delivery`: read the clinical topics, its groups
 * `hub.delivery.*`, write its dead-letter topic and the audit topic, no
 * CREATE): it starts on the topics the operator made, delivers, audits,
 * redrives under its own group prefix and deletes a deleted subscription's
 * group; it cannot write a clinical topic.
 */
describe('secure profile: the delivery service as the delivery principal', () => {
  let sb: SecureBroker;
  let svc: DeliveryService;
  let receiver: WebhookReceiver;
  const key = `whsec_${randomBytes(32).toString('base64')}`;

  beforeAll(async () => {
    sb = await secureBroker('delivery');
    const { ctx } = sb;
    const d = sb.as('delivery');
    await d.producer.connect();
    receiver = await startWebhookReceiver(key);
    svc = buildDeliveryService(
      {
        db: ctx.db,
        kafka: d.kafka,
        codec: ctx.codec,
        producer: d.producer,
        logger: ctx.logger,
        metrics: createMetrics({ defaultMetrics: false }),
      },
      {
        schema: ctx.schema,
        auditTopic: ctx.topic(AUDIT_TOPIC),
        dlqTopic: dlqTopicFor('delivery', ctx.topic),
        topic: ctx.topic,
        pollMs: 200,
        fhirBase: 'http://127.0.0.1:8098/fhir',
        portalSchema: `${ctx.schema}_portal`,
      },
    );
    // Start-up ensures the audit and dead-letter topics: with no CREATE, it must only describe them.
    await svc.start();
  }, 180_000);

  afterAll(async () => {
    await svc?.stop();
    await receiver?.close();
    await sb?.remove();
  });

  it('delivers and audits, dead-letters a refusal and redrives it, and deletes a deleted subscription’s group', async () => {
    const { ctx } = sb;
    // given a subscription from the beginning and events, one of which the receiver refuses
    const events = [1, 2, 3].map((i) => patientRegistered(`P-SEC-${i}`, `Fam${i}`, `sec-${i}`));
    const poison = events[1]!;
    receiver.refuse.add(poison.data.meta.eventId);
    await ctx.producer.publish(events);
    const input = {
      name: 'secure webhook',
      channel: { type: 'webhook', endpoint: receiver.url, secret: key, timeoutMs: 5_000 },
      start: { from: 'beginning' },
    } as SubscriptionInput;
    const sub = await createSubscription(ctx.db, ctx.schema, input, { id: randomUUID(), now: new Date() });
    // when it runs: the others arrive and the refused one is a dead letter
    await eventually(() => Promise.resolve(receiver.received.length >= 2 ? true : undefined), {
      what: 'the two accepted events',
    });
    await eventually(async () =>
      (await listDeadLetters(ctx.db, ctx.schema, sub.id)).length === 1 ? true : undefined,
    );
    // and once the receiver accepts it, a redrive (which reads the event back from the log) delivers it
    receiver.refuse.clear();
    await requestRedrive(ctx.db, ctx.schema, sub.id, new Date());
    const [redriven] = await eventually(async () => {
      const rows = await listDeadLetters(ctx.db, ctx.schema, sub.id);
      return rows[0]?.redrivenAt ? rows : undefined;
    });
    expect(redriven?.redriveOutcome).toBe('delivered');
    expect(receiver.received.map((r) => r.event.meta.eventId).sort()).toEqual(
      events.map((e) => e.data.meta.eventId).sort(),
    );
    // then every delivery is on the audit trail, written as the delivery principal
    const audited = await eventually(async () => {
      const recs = await scanTopic(ctx.kafka, ctx.topic(AUDIT_TOPIC));
      const mine = recs.filter((r) => r.value?.toString('utf8').includes(sub.id));
      return mine.length >= 3 ? mine : undefined;
    });
    expect(audited.length).toBeGreaterThanOrEqual(3);
    // and deleting the subscription deletes its consumer group
    const admin = ctx.kafka.admin();
    await admin.connect();
    try {
      expect((await admin.listGroups()).groups.map((g) => g.groupId)).toContain(deliveryGroupId(sub.id));
      await deleteSubscription(ctx.db, ctx.schema, sub.id);
      await eventually(async () =>
        (await admin.listGroups()).groups.some((g) => g.groupId.startsWith(deliveryGroupId(sub.id)))
          ? undefined
          : true,
      );
    } finally {
      await admin.disconnect();
    }
  });

  it('refuses the delivery principal a write to a clinical topic', async () => {
    // given the delivery principal's own client
    const d = sb.as('delivery');
    const p = d.kafka.producer({ idempotent: true, maxInFlightRequests: 1, retry: { retries: 1 } });
    await p.connect();
    try {
      // when it produces to the patient topic
      const refusal = await p
        .send({ topic: sb.ctx.topic('clinical.patient.v1'), acks: -1, messages: [{ key: 'p', value: 'p' }] })
        .then(
          () => 'allowed',
          (err: unknown) => {
            const e = err as { name?: unknown; type?: unknown; message?: unknown };
            return `${String(e.name)} ${String(e.type)} ${String(e.message)}`;
          },
        );
      // then the broker refuses it
      expect(refusal).toMatch(/AUTHORIZATION_FAILED|not authorized/i);
    } finally {
      await p.disconnect().catch(() => undefined);
    }
  });
});
