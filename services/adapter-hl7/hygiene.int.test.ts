import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INGEST_TOPICS } from '../../libs/events/contracts.js';
import { mllpFrame } from '../../libs/hl7/mllp.js';
import { createTestContext, type TestContext } from '../../test/support/harness.js';
import { startHl7Adapter } from '../../test/support/hl7-adapter.js';
import type { Hl7Adapter } from './app.js';
import { adtA01 } from '../../test/support/hl7-fixtures.js';
import { RawMllpClient, ackField } from '../../test/support/raw-mllp-client.js';
import { readTopic } from '../../libs/hl7/raw-store.js';

/**
 * Identifier hygiene and text validity through the real HL7 adapter (MLLP
 * socket, real Kafka and registry): an MRN with a zero-width space, or a
 * UTF-8 message with invalid bytes in a name, is answered AE 102 with the
 * field in ERR-2, dead-lettered with its reason, and nothing about it
 * reaches a clinical topic.
 */
describe('adapter-hl7: identifiers are what they look like', () => {
  let ctx: TestContext;
  let adapter: Hl7Adapter;
  let port: number;
  let dlqTopic: string;

  beforeAll(async () => {
    ctx = await createTestContext('hl7hyg');
    dlqTopic = ctx.topic(INGEST_TOPICS.hl7Dlq);
    ({ adapter, port } = await startHl7Adapter(ctx, {}, { clock: () => Date.UTC(2026, 2, 3, 4, 5, 6) }));
  });

  afterAll(async () => {
    await adapter?.stop();
    await ctx?.cleanup();
  });

  async function sendBytes(bytes: Buffer): Promise<string> {
    const c = await RawMllpClient.connect(port);
    try {
      await c.write(mllpFrame(bytes));
      return await c.nextAck();
    } finally {
      c.close();
    }
  }

  /** Every record of the clinical topics that came from this control id. */
  async function clinicalRecordsOf(controlId: string): Promise<number> {
    let n = 0;
    for (const t of [
      'clinical.patient.v1',
      'clinical.encounter.v1',
      'clinical.order.v1',
      'clinical.result.v1',
    ]) {
      for (const r of await readTopic(ctx.kafka, ctx.topic(t))) {
        const e = await ctx.codec.decode(r.value);
        if (e.data.meta.source.messageId === controlId) n++;
      }
    }
    return n;
  }

  it('given an ADT^A01 whose MRN holds a zero-width space, then AE 102 naming PID-3, a dead letter, and nothing on the topics', async () => {
    const ack = await sendBytes(Buffer.from(adtA01('ZW-1', 'MRN\u200b77001'), 'utf8'));
    expect(ackField(ack, 'MSA', 1)).toBe('AE');
    expect(ackField(ack, 'MSA', 2)).toBe('ZW-1');
    expect(ackField(ack, 'ERR', 2)).toBe('PID^1^3');
    expect(ackField(ack, 'ERR', 3)).toBe('102^Data type error^HL70357');
    expect(ack).not.toContain('77001');
    const dlq = (await readTopic(ctx.kafka, dlqTopic)).filter((r) => r.headers['hl7-control-id'] === 'ZW-1');
    expect(dlq).toHaveLength(1);
    expect(dlq[0]!.headers).toMatchObject({ 'hl7-ack-code': 'AE', 'hl7-error-code': '102' });
    expect(await clinicalRecordsOf('ZW-1')).toBe(0);
  });

  it('given the same MRN without the zero-width space, then AA and the events are published (control)', async () => {
    const ack = await sendBytes(Buffer.from(adtA01('ZW-2', 'MRN77001'), 'utf8'));
    expect(ackField(ack, 'MSA', 1)).toBe('AA');
    expect(await clinicalRecordsOf('ZW-2')).toBeGreaterThan(0);
  });

  it('given a message declared UTF-8 with an invalid byte in the family name, then AE 102 naming PID-5 and nothing on the topics', async () => {
    const text = adtA01('BADUTF-1').replace('|P|2.5.1', '|P|2.5.1||||||UNICODE UTF-8');
    const good = Buffer.from(text, 'utf8');
    const at = good.indexOf('Zzqcanary');
    const bytes = Buffer.concat([good.subarray(0, at + 3), Buffer.from([0xff, 0xfe]), good.subarray(at + 3)]);
    const ack = await sendBytes(bytes);
    expect(ackField(ack, 'MSA', 1)).toBe('AE');
    expect(ackField(ack, 'ERR', 2)).toBe('PID^1^5');
    expect(ackField(ack, 'ERR', 3)).toMatch(/^102\^/);
    expect(await clinicalRecordsOf('BADUTF-1')).toBe(0);
  });
});
