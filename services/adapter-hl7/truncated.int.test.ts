import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INGEST_TOPICS, catalogTopicDefinitions } from '../../libs/events/contracts.js';
import { createTestContext, type TestContext } from '../../test/support/harness.js';
import { testHl7Adapter } from '../../test/support/private-broker.js';
import type { Hl7Adapter } from './app.js';
import { RawMllpClient, ackField } from '../../test/support/raw-mllp-client.js';
import { readTopic } from '../../libs/hl7/raw-store.js';

/**
 * Issue 15, item 4: a message cut off inside a segment is not a result. Over
 * a real MLLP socket against real Kafka: a lab result whose last OBX was cut
 * inside OBX-5 (so it has no OBX-11, the required result status) and that has
 * no final segment terminator gets AE with ERR at OBX-11, publishes nothing on
 * any topic, and is dead-lettered with its reason. The same message complete
 * (still without the final terminator) is accepted, so the pipeline works.
 */
const whole = (controlId: string) =>
  [
    `MSH|^~\\&|LIS|GENHOSP|HUB|HUB|20260101130000+0000||ORU^R01^ORU_R01|${controlId}|P|2.5.1`,
    'PID|1||MRNTRUNC1^^^HOSP^MR||Cutoff^Carla||19800101|F',
    `OBR|1|PL-${controlId}^EHR|FL-${controlId}^LIS|24323-8^Comprehensive metabolic panel^LN|||20260101123000+0000|||||||||||||||20260101125900+0000|||F`,
    'OBX|1|NM|2345-7^Glucose^LN||98|mg/dL|70-99||||F|||20260101125900+0000',
    'OBX|2|NM|2823-3^Potassium^LN||4.1|mmol/L|3.5-5.1||||F|||20260101125900+0000',
  ].join('\r');

/** Cut inside the potassium value: "4.1" arrives as "4". No final CR. */
const truncated = (controlId: string) => {
  const t = whole(controlId);
  return t.slice(0, t.lastIndexOf('4.1|') + 1);
};

describe('adapter-hl7: a truncated ORU is refused, published nowhere and dead-lettered', () => {
  let ctx: TestContext;
  let adapter: Hl7Adapter;
  let port: number;

  beforeAll(async () => {
    ctx = await createTestContext('hl7trunc');
    adapter = testHl7Adapter(ctx, ctx.producer, { controlIdPrefix: 'TRUNCACK' });
    port = (await adapter.start()).port;
  });

  afterAll(async () => {
    await adapter?.stop();
    await ctx?.cleanup();
  });

  it('answers AE with ERR naming OBX #2 field 11, writes no event and no raw record, and dead-letters it with the reason', async () => {
    const cut = truncated('TRUNC-1');
    expect(cut.endsWith('||4')).toBe(true);
    const c = await RawMllpClient.connect(port);
    let ack: string;
    let okAck: string;
    try {
      await c.send(cut);
      ack = await c.nextAck();
      // Control: the complete message, also without a final terminator, is a result.
      await c.send(whole('TRUNC-OK'));
      okAck = await c.nextAck();
    } finally {
      c.close();
    }

    expect(ackField(ack, 'MSA', 1)).toBe('AE');
    expect(ackField(ack, 'MSA', 2)).toBe('TRUNC-1');
    expect(ackField(ack, 'ERR', 2)).toBe('OBX^2^11');
    expect(ackField(ack, 'ERR', 3)).toBe('101^Required field missing^HL70357');
    expect(ackField(okAck, 'MSA', 1)).toBe('AA');

    // Every topic of the test's catalog (events, raw, attachments): nothing from the truncated message.
    const dlqTopic = ctx.topic(INGEST_TOPICS.hl7Dlq);
    const rawTopic = ctx.topic(INGEST_TOPICS.hl7Raw);
    let okEvents = 0;
    for (const { name } of catalogTopicDefinitions(ctx.topic)) {
      if (name === dlqTopic) continue;
      for (const r of await readTopic(ctx.kafka, name, { timeoutMs: 60_000 })) {
        if (name === rawTopic) {
          expect(r.headers['hl7-control-id']).not.toBe('TRUNC-1');
          continue;
        }
        const event = await ctx.codec.decode(r.value);
        expect(event.data.meta.source.messageId).not.toBe('TRUNC-1');
        if (event.data.meta.source.messageId === 'TRUNC-OK') okEvents++;
      }
    }
    expect(okEvents).toBe(1);

    const dlq = (await readTopic(ctx.kafka, dlqTopic)).filter(
      (r) => r.headers['hl7-control-id'] === 'TRUNC-1',
    );
    expect(dlq).toHaveLength(1);
    expect(dlq[0]!.value.toString('utf8')).toBe(cut);
    expect(dlq[0]!.headers).toMatchObject({
      'hub-reason-code': 'HUB_INPUT_INVALID:101',
      'hl7-ack-code': 'AE',
      'hl7-error-code': '101',
      'hl7-error-location': 'OBX-11',
    });
    const reason = String(dlq[0]!.headers['hub-error-message']);
    expect(reason).toContain('OBX-11');
    expect(reason).toContain('truncated');
    // The reason names fields, never values (the cut value "4" or the patient).
    expect(reason).not.toContain('Cutoff');
    expect(reason).not.toContain('MRNTRUNC1');
  }, 180_000);
});
