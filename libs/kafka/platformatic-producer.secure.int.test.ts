import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { patientRegistered } from '../../test/support/fixtures.js';
import { secureBroker, type SecureBroker } from '../../test/support/secure-stack.js';
import { createPlatformaticEventProducer } from './platformatic-producer.js';
import { scanTopic } from './scan.js';

/**
 * The platformatic EventProducer on the secure profile (SASL_SSL, SCRAM-SHA-512,
 * the hub's CA, ACLs; a broker of this test's own): the security settings
 * that configure kafkajs (security.ts) configure it too.
 */
describe('platformatic EventProducer over SASL_SSL', () => {
  let sb: SecureBroker;

  beforeAll(async () => {
    sb = await secureBroker('pltsecure');
  }, 300_000);

  afterAll(async () => {
    await sb?.remove();
  }, 120_000);

  it('given adapter-hl7’s credentials, when it publishes, then the event lands through TLS and SCRAM', async () => {
    const { ctx } = sb;
    const producer = createPlatformaticEventProducer({
      brokers: sb.brokers,
      clientId: `adapter-hl7-${ctx.id}`,
      security: sb.securityOf('adapter-hl7'),
      codec: ctx.codec,
      topicFor: ctx.topicFor,
      ackTimeoutMs: 10_000,
    });
    await producer.connect();
    try {
      const e = patientRegistered('pat-secure-1', 'Secure', 'secure-1');
      await producer.publish([e]);
      const got = await scanTopic(ctx.kafka, ctx.topicFor('PatientRegistered'));
      expect(got.map((r) => r.headers['hub-event-id'])).toContain(e.data.meta.eventId);
    } finally {
      await producer.disconnect();
    }
  });

  it('given a wrong password, then connect fails as a HUB_KAFKA error', async () => {
    const { ctx } = sb;
    const security = sb.securityOf('adapter-hl7');
    const sasl = security.sasl?.mechanism === 'oauthbearer' ? undefined : security.sasl;
    expect(sasl).toBeDefined();
    const producer = createPlatformaticEventProducer({
      brokers: sb.brokers,
      clientId: `wrong-${ctx.id}`,
      security: { ...security, ...(sasl ? { sasl: { ...sasl, password: { value: 'wrong' } } } : {}) },
      codec: ctx.codec,
      topicFor: ctx.topicFor,
      retries: 2,
    });
    const err = await producer.connect().then(
      () => undefined,
      (e: unknown) => e as { code?: string },
    );
    expect(err?.code).toMatch(/^HUB_KAFKA_/);
    await producer.disconnect();
  });
});
