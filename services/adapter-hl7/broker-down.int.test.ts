import { privateBroker, testHl7Adapter, type PrivateBroker } from '../../test/support/private-broker.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INGEST_TOPICS, catalogTopicDefinitions } from '../../libs/events/contracts.js';
import { ensureTopics } from '../../libs/kafka/admin.js';
import { createKafkaClient, type KafkaClient } from '../../libs/kafka/client.js';
import { createEventProducer, type EventProducer } from '../../libs/kafka/producer.js';
import { createTestContext, eventually, type TestContext } from '../../test/support/harness.js';
import { type Hl7Adapter } from './app.js';
import { adtA01 } from '../../test/support/hl7-fixtures.js';
import { RawMllpClient, ackField } from '../../test/support/raw-mllp-client.js';
import { readTopic } from '../../libs/hl7/raw-store.js';

const EVENT_TOPICS = ['clinical.patient.v1', 'clinical.encounter.v1'];

/**
 * The durability promise with the broker stopped mid-stream. A private
 * Kafka (own ports, own data dir; the shared registry is reused, nothing
 * shared is stopped) is stopped while senders stream; afterwards every
 * message that was answered AA must be in Kafka, and after a restart the
 * senders' resends must land exactly once in effect (distinct event ids).
 */
describe('adapter-hl7 with the broker stopped mid-stream', () => {
  let ctx: TestContext;
  let broker: PrivateBroker;
  let kafka: KafkaClient;
  let producer: EventProducer;
  let adapter: Hl7Adapter;
  let port: number;

  beforeAll(async () => {
    ctx = await createTestContext('hl7down');
    broker = await privateBroker(ctx, 'hl7-broker');
    await broker.start();
    kafka = createKafkaClient({ brokers: broker.brokers, clientId: ctx.id, logger: ctx.logger });
    await ensureTopics(kafka, catalogTopicDefinitions(ctx.topic));
    producer = createEventProducer({ kafka, codec: ctx.codec, topicFor: ctx.topicFor, retries: 2 });
    await producer.connect();
    adapter = testHl7Adapter(ctx, producer, { controlIdPrefix: 'A' });
    port = (await adapter.start()).port;
  }, 240_000);

  afterAll(async () => {
    await adapter?.stop();
    await producer?.disconnect().catch(() => undefined);
    await broker?.remove();
    await ctx?.cleanup();
  }, 120_000);

  it('never answers AA for a message Kafka does not hold; resends after restart land once', async () => {
    const senders = 4;
    const perSender = 15;
    const ids = (s: number) => Array.from({ length: perSender }, (_, j) => `BD-${s}-${j}`);
    const clients = await Promise.all(Array.from({ length: senders }, () => RawMllpClient.connect(port)));

    // A fresh broker elects partition leaders after its topics exist; a
    // sender retries on AR until the first AA, as it would in production.
    await eventually(
      async () => {
        await clients[0]!.send(adtA01('BD-WARM', 'MRN-BD-WARM'));
        return ackField(await clients[0]!.nextAck(60_000), 'MSA', 1) === 'AA' ? true : undefined;
      },
      { timeoutMs: 60_000, what: 'first AA from the private broker' },
    );

    // Phase 1: stream; once 12 messages are AA'd, stop the broker. Each
    // sender, like an original-mode sender, stops at its first non-AA and
    // later resends from there.
    const t0 = Date.now();
    const codes = new Map<string, string>();
    const firstRefused: number[] = Array.from({ length: senders }, () => perSender);
    let aa = 0;
    let stopped: Promise<void> | undefined;
    await Promise.all(
      clients.map(async (c, s) => {
        for (const [j, id] of ids(s).entries()) {
          await c.send(adtA01(id, `MRN-BD-${s}`));
          const code = ackField(await c.nextAck(120_000), 'MSA', 1);
          codes.set(id, code);
          if (code !== 'AA') {
            firstRefused[s] = j;
            return;
          }
          if (++aa === 12) stopped = broker.stop();
        }
      }),
    );
    await stopped;
    const phase1Aa = [...codes].filter(([, c]) => c === 'AA').map(([id]) => id);
    const refused = [...codes].filter(([, c]) => c !== 'AA');
    expect(phase1Aa.length).toBeGreaterThanOrEqual(12);
    // The stop happened mid-stream, and what could not be stored was refused with AR (207), never AA.
    expect(refused.length).toBeGreaterThan(0);
    expect(new Set(refused.map(([, c]) => c))).toEqual(new Set(['AR']));
    expect((await adapter.http.inject({ method: 'GET', url: '/ready' })).statusCode).toBe(503);

    // What was AA'd before the stop is in the log (the broker's data dir survives the stop).
    const t1 = Date.now();
    await broker.start();
    process.stderr.write(`[broker-down] phase 1 ${t1 - t0} ms, restart ${Date.now() - t1} ms\n`);

    // Phase 2: each sender resends from its last AA'd message on (a duplicate) to the end.
    await Promise.all(
      clients.map(async (c, s) => {
        for (const id of ids(s).slice(Math.max(0, firstRefused[s]! - 1))) {
          await eventually(
            async () => {
              await c.send(adtA01(id, `MRN-BD-${s}`));
              return ackField(await c.nextAck(120_000), 'MSA', 1) === 'AA' ? true : undefined;
            },
            { timeoutMs: 90_000, what: `AA for ${id} after the restart` },
          );
        }
      }),
    );
    for (const c of clients) c.close();

    // Every message is in Kafka, each with exactly its two distinct events; the raw topic holds each.
    const eventIds = new Map<string, Set<string>>();
    const recordsOf = new Map<string, number>();
    let records = 0;
    for (const t of EVENT_TOPICS) {
      for (const r of await readTopic(kafka, ctx.topic(t))) {
        const e = await ctx.codec.decode(r.value);
        const id = e.data.meta.source.messageId ?? '';
        const set = eventIds.get(id) ?? new Set<string>();
        set.add(e.data.meta.eventId);
        eventIds.set(id, set);
        recordsOf.set(id, (recordsOf.get(id) ?? 0) + 1);
        records++;
      }
    }
    const raw = await readTopic(kafka, ctx.topic(INGEST_TOPICS.hl7Raw));
    const rawIds = new Set(raw.map((r) => r.headers['hl7-control-id']));
    for (let s = 0; s < senders; s++) {
      for (const id of ids(s)) {
        expect(eventIds.get(id)?.size, id).toBe(2);
        expect(rawIds.has(id), id).toBe(true);
      }
    }
    // The messages AA'd before the stop were not written again when resent (recent-id cache).
    expect(records).toBeGreaterThanOrEqual(senders * perSender * 2);
    process.stderr.write(
      `[broker-down] phase 1: ${phase1Aa.length} AA, ${refused.length} AR; event records ${records} for ${senders * perSender * 2} distinct events\n`,
    );
    // A resend of a message already AA'd is answered from the recent-id cache, not written again.
    for (const id of phase1Aa) expect(recordsOf.get(id), id).toBe(2);
  }, 300_000);
});
