import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_IDENTITY_POLICY } from '../../libs/identity/index.js';
import { createEventProducer, type EventProducer } from '../../libs/kafka/producer.js';
import type { Hl7Adapter } from '../../services/adapter-hl7/app.js';
import { reportFault } from '../support/fault-report.js';
import { faultScale, settle, startFaultRig, type FaultRig } from '../support/fault-rig.js';
import { ResendingSender, senderStats, type Answer } from '../support/fault-senders.js';
import { startTestFhirAdapter, testPatient, type TestFhirAdapter } from '../support/fhir-adapter.js';
import { adtA01 } from '../support/hl7-fixtures.js';
import { testHl7Adapter } from '../support/private-broker.js';

const HL7_MESSAGES = faultScale(200, 20);
const FHIR_REQUESTS = faultScale(20, 4);
const CONNECTIONS = 4;
/**
 * The stated bounds when Kafka does not acknowledge: the HL7 adapter answers
 * within KAFKA_ACK_TIMEOUT_MS (5 s by default, configurable); the FHIR
 * adapter within twice that (the events' write times out, then the
 * AuditEvent of the refusal: no audit record, no answer). Each plus a
 * margin for a loaded machine; a sender waiting longer counts "no answer".
 */
const ACK_TIMEOUT_MS = Number(process.env['KAFKA_ACK_TIMEOUT_MS_FAULT'] ?? 5_000);
const MARGIN_MS = 3_000;

/**
 * Fault 2 (issue 19): two of three brokers stopped, below
 * min.insync.replicas 2. No AA may be sent for a message Kafka does not hold;
 * the HL7 adapter answers AR (ERR 207, "resend") within the bound, the FHIR
 * adapter 503 with an OperationOutcome. Once the brokers are back, the
 * senders' resends land exactly once in every read model.
 */
describe('two of three brokers stopped (below min.insync.replicas)', () => {
  let rig: FaultRig;
  let hl7: Hl7Adapter;
  let port: number;
  let fhirProducer: EventProducer;
  let fhir: TestFhirAdapter;

  beforeAll(async () => {
    rig = await startFaultRig('belowisr', { ackTimeoutMs: ACK_TIMEOUT_MS });
    hl7 = testHl7Adapter(rig.ctx, rig.producer, {
      controlIdPrefix: 'BMACK',
      cfg: { ackTimeoutMs: ACK_TIMEOUT_MS },
    });
    port = (await hl7.start()).port;
    // As adapter-fhir's main.ts configures it: writes rejected at the ack timeout.
    fhirProducer = createEventProducer({
      kafka: rig.kafka,
      codec: rig.ctx.codec,
      topicFor: rig.ctx.topicFor,
      ackTimeoutMs: ACK_TIMEOUT_MS,
    });
    await fhirProducer.connect();
    fhir = await startTestFhirAdapter(
      { ...rig.ctx, producer: fhirProducer },
      { policy: DEFAULT_IDENTITY_POLICY, maxBodyBytes: 1024 * 1024 },
    );
  }, 600_000);

  afterAll(async () => {
    await hl7?.stop();
    await fhir?.stop().catch(() => undefined);
    await fhirProducer?.disconnect().catch(() => undefined);
    await rig?.cleanup();
  }, 300_000);

  const putPatient = async (n: number) => {
    const t0 = performance.now();
    const res = await fhir.adapter.http.inject({
      method: 'PUT',
      url: `/Patient/bm-${n}`,
      headers: { ...fhir.auth, 'content-type': 'application/fhir+json', 'x-request-id': `BM-FHIR-${n}` },
      payload: JSON.stringify(testPatient(`MRN-BM-FHIR-${n}`, { id: `bm-${n}` })),
    });
    const body = res.body ? (JSON.parse(res.body) as { resourceType?: string }) : {};
    return {
      status: res.statusCode,
      outcome: body.resourceType === 'OperationOutcome',
      ms: performance.now() - t0,
    };
  };

  it('answers errors within the bound, never AA, and lands the resends once after recovery', async () => {
    // Given a healthy cluster that has accepted a message through each adapter.
    const stats = senderStats();
    const senders = Array.from(
      { length: CONNECTIONS },
      () => new ResendingSender(() => port, stats, { ackTimeoutMs: ACK_TIMEOUT_MS + MARGIN_MS }),
    );
    await senders[0]!.deliver('BM-WARM', adtA01('BM-WARM', 'MRN-BM-WARM'));
    expect((await putPatient(0)).status).toBeLessThan(300);

    // When two of the three brokers are stopped.
    const [, b, c] = rig.cluster.nodeIds as [number, number, number];
    await rig.cluster.stopNode(b);
    await rig.cluster.stopNode(c);
    const aaBefore = stats.aa;
    const ids = Array.from({ length: HL7_MESSAGES }, (_, i) => `BM-${i}`);
    const answers = new Map<Answer, number>();
    await Promise.all(
      senders.map(async (s, k) => {
        for (const id of ids.filter((_, i) => i % CONNECTIONS === k)) {
          const { answer } = await s.once(id, adtA01(id, `MRN-${id}`));
          answers.set(answer, (answers.get(answer) ?? 0) + 1);
        }
      }),
    );
    const outageMaxAnswerMs = Math.round(stats.maxAnswerMs);
    const fhirAnswers = [];
    for (let n = 1; n <= FHIR_REQUESTS; n++) fhirAnswers.push(await putPatient(n));

    // Then the brokers return and every sender resends until accepted.
    const t0 = performance.now();
    await Promise.all([rig.cluster.startNode(b), rig.cluster.startNode(c)]);
    const brokersBackMs = Math.round(performance.now() - t0);
    let firstAaMs = -1;
    await Promise.all(
      senders.map(async (s, k) => {
        for (const id of ids.filter((_, i) => i % CONNECTIONS === k)) {
          await s.deliver(id, adtA01(id, `MRN-${id}`));
          if (firstAaMs < 0) firstAaMs = Math.round(performance.now() - t0);
        }
      }),
    );
    const fhirResent: number[] = [];
    for (let n = 1; n <= FHIR_REQUESTS; n++) {
      for (;;) {
        const r = await putPatient(n);
        if (r.status < 300) break;
        fhirResent.push(r.status);
      }
    }
    for (const s of senders) s.close();
    const expected = [...ids, ...Array.from({ length: FHIR_REQUESTS }, (_, n) => `BM-FHIR-${n + 1}`)];
    const s = await settle(rig, expected);
    const fhir503 = fhirAnswers.filter((a) => a.status === 503 && a.outcome).length;
    reportFault('below-min-isr', 'two of three brokers stopped (below min.insync.replicas 2)', {
      hl7Sent: HL7_MESSAGES,
      aaDuringOutage: answers.get('AA') ?? 0,
      errorAcks: (answers.get('AR') ?? 0) + (answers.get('AE') ?? 0),
      noAnswer: answers.get('none') ?? 0,
      hl7BoundMs: ACK_TIMEOUT_MS,
      maxAnswerMs: outageMaxAnswerMs,
      fhirSent: FHIR_REQUESTS,
      fhir503WithOperationOutcome: fhir503,
      fhirBoundMs: 2 * ACK_TIMEOUT_MS,
      fhirMaxAnswerMs: Math.round(Math.max(...fhirAnswers.map((a) => a.ms))),
      // Every message of the outage is sent again once the brokers are back, some more than once.
      resentHl7: HL7_MESSAGES + stats.resent,
      resentFhir: FHIR_REQUESTS + fhirResent.length,
      ...s.figures,
      landedAfterRecovery: s.t ? expected.length - s.t.lost : 'not checked',
      brokersBackMs,
      recoveryMs: firstAaMs,
      firstAaAfterBrokersUpMs: firstAaMs - brokersBackMs,
    });
    if (s.failure) throw s.failure;
    expect(stats.aa - aaBefore).toBe(HL7_MESSAGES);
    expect(answers.get('AA') ?? 0).toBe(0);
    expect(answers.get('none') ?? 0).toBe(0);
    expect(outageMaxAnswerMs).toBeLessThanOrEqual(ACK_TIMEOUT_MS + MARGIN_MS);
    expect(fhir503).toBe(FHIR_REQUESTS);
    expect(Math.max(...fhirAnswers.map((a) => a.ms))).toBeLessThanOrEqual(2 * ACK_TIMEOUT_MS + MARGIN_MS);
    expect(s.f!.notInLog).toEqual([]);
    expect(s.t!.lost).toBe(0);
    expect(s.t!.duplicated).toBe(0);
  });
});
