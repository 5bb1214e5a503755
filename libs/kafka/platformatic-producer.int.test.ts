import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, eventually, type TestContext } from '../../test/support/harness.js';
import { privateBroker, type PrivateBroker } from '../../test/support/private-broker.js';
import { patientRegistered } from '../../test/support/fixtures.js';
import { freePort } from '../../test/support/processes.js';
import { isRetriable } from '../errors/index.js';
import { ensureTopics } from './admin.js';
import { createKafkaClient, type KafkaClient } from './client.js';
import { createPlatformaticEventProducer } from './platformatic-producer.js';
import type { EventProducer, RawRecord } from './producer.js';
import { partitionOffsets, scanTopic } from './scan.js';

/**
 * The @platformatic/kafka EventProducer against the test stack's Kafka: the
 * same promises as the kafkajs one (producer.ts), since adapters answer AA
 * on them, and the same partition for a key, since co-partitioning and a
 * patient's order depend on it.
 */
describe('platformatic EventProducer (real Kafka)', () => {
  let ctx: TestContext;
  let producer: EventProducer;
  const rawTopic = () => `kc.raw.${ctx.id}`;

  beforeAll(async () => {
    ctx = await createTestContext('pltprod');
    ctx.extraTopics.push(rawTopic());
    await ensureTopics(ctx.kafka, [
      { name: rawTopic(), partitions: 6, replicationFactor: 1, retentionMs: -1 },
    ]);
    producer = createPlatformaticEventProducer({
      brokers: ctx.ep.kafkaBrokers,
      clientId: ctx.id,
      codec: ctx.codec,
      topicFor: ctx.topicFor,
      ackTimeoutMs: 10_000,
      maxInFlight: 4,
    });
    await producer.connect();
  });

  afterAll(async () => {
    await producer?.disconnect().catch(() => undefined);
    await ctx?.cleanup();
  });

  const raw = (key: string, n: number): RawRecord => ({
    topic: rawTopic(),
    key,
    value: Buffer.from(`${key}#${n}`),
    headers: { 'hl7-raw-id': `${key}-${n}`, multi: ['a', 'b'] },
  });

  it('given a publish, when it resolves, then the events are below the high watermark with the hub headers', async () => {
    const topic = ctx.topicFor('PatientRegistered');
    const before = await partitionOffsets(ctx.kafka, topic);
    const events = [1, 2, 3].map((i) => patientRegistered(`pat-ack-${i}`, 'Ack', `ack-${i}`));
    const published = await producer.publish(events, { 'hl7-raw-id': 'raw-ack' });
    expect(published.map((p) => p.eventId)).toEqual(events.map((e) => e.data.meta.eventId));
    // The high watermark moves only once every in-sync replica has the record: acks=all.
    const after = await partitionOffsets(ctx.kafka, topic);
    let added = 0n;
    for (const [p, { high }] of after) added += high - (before.get(p)?.high ?? 0n);
    expect(added).toBe(3n);
    const got = await scanTopic(ctx.kafka, topic);
    const mine = got.filter((r) => r.headers['hl7-raw-id'] === 'raw-ack');
    expect(mine.map((r) => r.headers['hub-event-type'])).toEqual(Array(3).fill('PatientRegistered'));
    expect(new Set(mine.map((r) => r.headers['hub-event-id']))).toEqual(
      new Set(events.map((e) => e.data.meta.eventId)),
    );
    expect(mine.every((r) => r.headers['hub-source'] === 'TEST-EHR')).toBe(true);
    const decoded = await ctx.codec.decode(mine[0]!.value!);
    expect(decoded.type).toBe('PatientRegistered');
  });

  it('given many callers with several batches in flight, then each key keeps its order, once each, in kafkajs’s partition', async () => {
    const keys = Array.from({ length: 40 }, (_, i) => `pat-order-${i}`);
    const perKey = 50;
    const writes: Promise<void>[] = [];
    for (let n = 0; n < perKey; n++) {
      for (const k of keys) writes.push(producer.publishRaw([raw(k, n)]));
      // A new batch every few rounds, sent while the earlier ones wait for acks.
      if (n % 5 === 4) await new Promise<void>((r) => setImmediate(r));
    }
    await Promise.all(writes);
    // The same keys through kafkajs (the harness's producer) into the same topic.
    await ctx.producer.publishRaw(keys.map((k) => raw(k, -1)));

    const got = await scanTopic(ctx.kafka, rawTopic());
    const byKey = new Map<string, { n: number; partition: number; offset: bigint }[]>();
    for (const r of got) {
      const [k, n] = r.value!.toString().split('#') as [string, string];
      const list = byKey.get(k) ?? [];
      list.push({ n: Number(n), partition: r.partition, offset: BigInt(r.offset) });
      byKey.set(k, list);
    }
    for (const k of keys) {
      const list = byKey.get(k)!.filter((x) => x.n >= 0);
      const kafkajs = byKey.get(k)!.find((x) => x.n === -1)!;
      // no duplicate, none missing
      expect(list.map((x) => x.n).sort((a, b) => a - b)).toEqual(Array.from({ length: perKey }, (_, i) => i));
      // one partition, kafkajs's
      expect(new Set(list.map((x) => x.partition))).toEqual(new Set([kafkajs.partition]));
      // the order of the calls
      const inLog = [...list].sort((a, b) => (a.offset < b.offset ? -1 : 1)).map((x) => x.n);
      expect(inLog).toEqual(Array.from({ length: perKey }, (_, i) => i));
    }
    // a null value stays null (a tombstone's dead letter)
    await producer.publishRaw([{ topic: rawTopic(), key: 'tomb', value: null }]);
    const tomb = (await scanTopic(ctx.kafka, rawTopic())).filter((r) => r.key?.toString() === 'tomb');
    expect(tomb.map((r) => r.value)).toEqual([null]);
    // a repeated header keeps both values
    const one = got.find((r) => r.value!.toString() === `${keys[0]}#0`)!;
    expect(one.headers['multi']).toBeDefined();
  });

  it('given a broker nobody listens on, then connect fails as retriable HUB_KAFKA_UNAVAILABLE within the ack deadline', async () => {
    const port = await freePort();
    const dead = createPlatformaticEventProducer({
      brokers: [`127.0.0.1:${port}`],
      clientId: `${ctx.id}-dead`,
      codec: ctx.codec,
      topicFor: ctx.topicFor,
      ackTimeoutMs: 10_000,
      retries: 2,
    });
    const t0 = Date.now();
    const err = await dead.connect().then(
      () => 'connected',
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'HUB_KAFKA_UNAVAILABLE' });
    expect(isRetriable(err)).toBe(true);
    expect(Date.now() - t0).toBeLessThan(10_000);
    // and a write without a connection is refused the same way, at once
    await expect(dead.publishRaw([raw('x', 0)])).rejects.toMatchObject({ code: 'HUB_KAFKA_UNAVAILABLE' });
    await dead.disconnect();
  });
});

/**
 * A broker that stops answering (a private one, paused with SIGSTOP; the
 * shared stack is never touched): callers that reject at the ack deadline
 * get HUB_KAFKA_UNAVAILABLE, health() turns not ok, and a write whose
 * request timed out is retried after the broker resumes and lands once
 * (idempotence: the retry carries the same producer id and sequence).
 */
describe('platformatic EventProducer with a hung broker', () => {
  let ctx: TestContext;
  let broker: PrivateBroker;
  let kafka: KafkaClient;
  let keeping: EventProducer;
  let rejecting: EventProducer;
  let pid = 0;
  const topic = () => `kc.hang.${ctx.id}`;

  beforeAll(async () => {
    ctx = await createTestContext('plthang');
    broker = await privateBroker(ctx, 'plt-hang-broker');
    await broker.start();
    kafka = createKafkaClient({ brokers: broker.brokers, clientId: ctx.id, logger: ctx.logger });
    await ensureTopics(kafka, [{ name: topic(), partitions: 3, replicationFactor: 1, retentionMs: -1 }]);
    const common = { brokers: broker.brokers, codec: ctx.codec, topicFor: ctx.topicFor, ackTimeoutMs: 2_000 };
    keeping = createPlatformaticEventProducer({
      ...common,
      clientId: `${ctx.id}-k`,
      rejectAtAckTimeout: false,
      requestTimeoutMs: 3_000,
      retries: 20,
    });
    rejecting = createPlatformaticEventProducer({ ...common, clientId: `${ctx.id}-r` });
    await keeping.connect();
    await rejecting.connect();
  }, 240_000);

  afterAll(async () => {
    if (pid) process.kill(pid, 'SIGCONT');
    await keeping?.disconnect().catch(() => undefined);
    await rejecting?.disconnect().catch(() => undefined);
    await broker?.remove();
    await ctx?.cleanup();
  }, 120_000);

  const rec = (n: number): RawRecord => ({ topic: topic(), key: `k-${n % 7}`, value: Buffer.from(`v-${n}`) });

  it('given the broker paused past the request timeout, then writes are refused in time, health is not ok, and a retried write lands once', async () => {
    await keeping.publishRaw([rec(0)]);
    await rejecting.publishRaw([rec(1)]);
    pid = await broker.pid();
    process.kill(pid, 'SIGSTOP');
    try {
      const t0 = Date.now();
      const refused = rejecting.publishRaw([rec(2)]).then(
        () => 'resolved',
        (e: unknown) => e,
      );
      const kept = keeping.publishRaw(Array.from({ length: 20 }, (_, i) => rec(100 + i)));
      const err = await refused;
      expect(err).toMatchObject({ code: 'HUB_KAFKA_UNAVAILABLE' });
      expect(Date.now() - t0).toBeLessThan(5_000);
      await eventually(() => Promise.resolve(keeping.health().ok ? undefined : true), {
        what: 'health not ok',
      });
      // Past the 3 s request timeout: the library gives up on that request
      // and will resend it. Nothing to await here but the time itself.
      await new Promise((r) => setTimeout(r, 4_000));
      process.kill(pid, 'SIGCONT');
      pid = 0;
      await kept;
    } finally {
      if (pid) process.kill(pid, 'SIGCONT');
      pid = 0;
    }
    expect(keeping.health()).toEqual({ ok: true });
    const got = (await scanTopic(kafka, topic())).map((r) => r.value!.toString());
    const retried = got.filter((v) => /^v-1\d\d$/.test(v));
    expect(retried.sort()).toEqual(Array.from({ length: 20 }, (_, i) => `v-${100 + i}`).sort());
  }, 120_000);
});
