import { privateBroker, testHl7Adapter, type PrivateBroker } from '../../test/support/private-broker.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INGEST_TOPICS, catalogTopicDefinitions } from '../../libs/events/contracts.js';
import { type IdentityPolicy } from '../../libs/identity/index.js';
import { ensureTopics } from '../../libs/kafka/admin.js';
import { createKafkaClient, type KafkaClient } from '../../libs/kafka/client.js';
import { createEventProducer, type EventProducer } from '../../libs/kafka/producer.js';
import { createTransactionalProducer, type TransactionalProducer } from '../../libs/kafka/transactional.js';
import { createMetrics } from '../../libs/telemetry/metrics.js';
import { createTestContext, eventually, type TestContext } from '../../test/support/harness.js';
import { buildFhirAdapter, type FhirAdapter } from '../adapter-fhir/app.js';
import { TEST_CLIENTS, TEST_SOURCE, fhirAuth, fhirTestVerifier } from '../../test/support/fhir-adapter.js';
import { type Hl7Adapter } from './app.js';
import { adtA01 } from '../../test/support/hl7-fixtures.js';
import { RawMllpClient, ackField } from '../../test/support/raw-mllp-client.js';
import { readTopic } from '../../libs/hl7/raw-store.js';

const ACK_TIMEOUT_MS = 1_500;
const MRN_SYSTEM = 'urn:oid:2.16.840.1.113883.3.999.1';
const FHIR_POLICY: IdentityPolicy = {
  enterpriseSystems: [MRN_SYSTEM],
  authorityAliases: { HOSP: MRN_SYSTEM },
};

/**
 * A hung broker, not a dead one: a private Kafka (own ports and data; the
 * shared registry is reused and nothing shared is touched) is paused with
 * SIGSTOP. Its sockets stay open and nothing answers, which kafkajs alone
 * would wait out for its 30 s request timeout per attempt while senders hang.
 */
describe('adapters with the broker paused (SIGSTOP)', () => {
  let ctx: TestContext;
  let broker: PrivateBroker;
  let kafkaPid = 0;
  let kafka: KafkaClient;
  let producer: EventProducer;
  let fhirProducer: EventProducer;
  let tx: TransactionalProducer;
  let hl7: Hl7Adapter;
  let fhir: FhirAdapter;
  let port: number;

  const pause = () => process.kill(kafkaPid, 'SIGSTOP');
  const resume = () => process.kill(kafkaPid, 'SIGCONT');

  beforeAll(async () => {
    ctx = await createTestContext('paused');
    broker = await privateBroker(ctx, 'paused-broker');
    await broker.start();
    kafkaPid = await broker.pid();
    kafka = createKafkaClient({ brokers: broker.brokers, clientId: ctx.id, logger: ctx.logger });
    await ensureTopics(kafka, catalogTopicDefinitions(ctx.topic));

    // As adapter-hl7's main.ts wires it: the adapter keeps each write past the deadline.
    producer = createEventProducer({
      kafka,
      codec: ctx.codec,
      topicFor: ctx.topicFor,
      ackTimeoutMs: ACK_TIMEOUT_MS,
      rejectAtAckTimeout: false,
    });
    await producer.connect();
    hl7 = testHl7Adapter(ctx, producer, { controlIdPrefix: 'P', cfg: { ackTimeoutMs: ACK_TIMEOUT_MS } });
    port = (await hl7.start()).port;

    // As adapter-fhir's main.ts wires it: callers are answered at the deadline.
    fhirProducer = createEventProducer({
      kafka,
      codec: ctx.codec,
      topicFor: ctx.topicFor,
      ackTimeoutMs: ACK_TIMEOUT_MS,
    });
    await fhirProducer.connect();
    tx = createTransactionalProducer({
      kafka,
      codec: ctx.codec,
      topicFor: ctx.topicFor,
      transactionalId: `tx-${ctx.id}`,
      ackTimeoutMs: ACK_TIMEOUT_MS,
    });
    await tx.connect();
    const dlq = `hub.dlq.adapter-fhir.${ctx.id}`;
    fhir = buildFhirAdapter(
      {
        db: ctx.db,
        kafka,
        producer: fhirProducer,
        txProducer: tx,
        logger: ctx.logger,
        metrics: createMetrics({ defaultMetrics: false }),
        policy: FHIR_POLICY,
        verifier: await fhirTestVerifier(),
      },
      {
        schema: ctx.schema,
        dlqTopic: dlq,
        auditTopic: `hub.audit.v1.${ctx.id}`,
        clients: TEST_CLIENTS,
        sourceSystem: TEST_SOURCE,
        maxBodyBytes: 64 * 1024,
      },
    );
    await fhir.start();
  }, 240_000);

  afterAll(async () => {
    if (kafkaPid) process.kill(kafkaPid, 'SIGCONT');
    await hl7?.stop();
    await fhir?.stop();
    await producer?.disconnect().catch(() => undefined);
    await fhirProducer?.disconnect().catch(() => undefined);
    await tx?.disconnect().catch(() => undefined);
    await broker?.remove();
    await ctx?.cleanup();
  }, 120_000);

  it('regression: a hung broker gets error ACKs and 503s within the ack timeout, /ready turns not-ready, resends land once', async () => {
    const client = await RawMllpClient.connect(port);
    const send = async (controlId: string) => {
      const t0 = Date.now();
      await client.send(adtA01(controlId, 'MRN-PAUSED-1'));
      const ack = await client.nextAck(60_000);
      return { code: ackField(ack, 'MSA', 1), err: ackField(ack, 'ERR', 3), ms: Date.now() - t0 };
    };
    const ready = async (app: Hl7Adapter | FhirAdapter) => {
      const r = await app.http.inject({ method: 'GET', url: '/ready' });
      return {
        status: r.statusCode,
        body: r.json<{ checks: Record<string, { ok: boolean; detail?: string }> }>(),
      };
    };

    // Given a broker that answers (a fresh one elects leaders first: resend until AA)
    await eventually(async () => ((await send('PAUSE-WARM')).code === 'AA' ? true : undefined), {
      timeoutMs: 60_000,
      what: 'first AA from the private broker',
    });
    expect((await ready(hl7)).status).toBe(200);

    // When the broker hangs
    pause();
    const pausedAt = Date.now();
    try {
      // Then the sender gets an error ACK (AR, 207) after the ack timeout, not after the pause
      const first = await send('PAUSE-1');
      expect(first.code).toBe('AR');
      expect(first.err).toContain('207');
      expect(first.ms).toBeGreaterThanOrEqual(ACK_TIMEOUT_MS - 50);
      expect(first.ms).toBeLessThan(ACK_TIMEOUT_MS + 3_000);
      // ... /ready says why
      const notReady = await ready(hl7);
      expect(notReady.status).toBe(503);
      expect(notReady.body.checks['kafka']?.ok).toBe(false);
      // ... and its resend, while the first write may still land, is refused again, not written again
      const resend = await send('PAUSE-1');
      expect(resend.code).toBe('AR');

      // And a FHIR client gets 503 with an OperationOutcome within two ack timeouts
      const t0 = Date.now();
      const res = await fhir.http.inject({
        method: 'POST',
        url: '/Patient',
        headers: { 'content-type': 'application/fhir+json', ...(await fhirAuth()) },
        payload: JSON.stringify({
          resourceType: 'Patient',
          identifier: [{ system: MRN_SYSTEM, value: 'MRN-PAUSED-F1' }],
          name: [{ family: 'Pausedperson', given: ['Alex'] }],
        }),
      });
      const fhirMs = Date.now() - t0;
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code: 'transient' }] });
      // The write's ack timeout, then its audit record's (every answer is audited, this 503 too).
      expect(fhirMs).toBeLessThan(2 * ACK_TIMEOUT_MS + 3_000);
      expect((await ready(fhir)).status).toBe(503);
      process.stderr.write(
        `[broker-paused] AR after ${first.ms} ms, resend AR after ${resend.ms} ms, FHIR 503 after ${fhirMs} ms, paused ${Date.now() - pausedAt} ms\n`,
      );
    } finally {
      resume();
    }

    // When the broker resumes, then /ready recovers once the held writes are acknowledged
    const resumedAt = Date.now();
    await eventually(async () => ((await ready(hl7)).status === 200 ? true : undefined), {
      timeoutMs: 60_000,
      what: 'adapter-hl7 ready after resume',
    });
    process.stderr.write(`[broker-paused] hl7 /ready 200 ${Date.now() - resumedAt} ms after resume\n`);
    await eventually(async () => ((await ready(fhir)).status === 200 ? true : undefined), {
      timeoutMs: 60_000,
      what: 'adapter-fhir ready after resume',
    });
    // ... and the sender's next resend is AA
    expect((await send('PAUSE-1')).code).toBe('AA');
    client.close();

    // The message is on the log exactly once: one raw record, each event once
    const raw = await readTopic(kafka, ctx.topic(INGEST_TOPICS.hl7Raw));
    expect(raw.filter((r) => r.headers['hl7-control-id'] === 'PAUSE-1')).toHaveLength(1);
    const ids: string[] = [];
    for (const t of ['clinical.patient.v1', 'clinical.encounter.v1']) {
      for (const r of await readTopic(kafka, ctx.topic(t))) {
        const e = await ctx.codec.decode(r.value);
        if (e.data.meta.source.messageId === 'PAUSE-1') ids.push(e.data.meta.eventId);
      }
    }
    expect(ids).toHaveLength(2);
    expect(new Set(ids).size).toBe(2);
  }, 180_000);
});
