import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { patientRegistered } from '../../../test/support/fixtures.js';
import { createTestContext, type TestContext } from '../../../test/support/harness.js';
import { INGEST_TOPICS } from '../../../libs/events/contracts.js';
import type { ConsoleContext } from '../context.js';
import { createFlowReader } from './reader.js';
import { flowLive } from './render.js';

/** The flow page's reader against the shared test stack's Kafka and Postgres, on this file's own topics and schema. */
describe('flow reader (Kafka and Postgres)', () => {
  let t: TestContext;
  let console: ConsoleContext;
  /** Added to the clock: a reading is fresh for refreshMs, so the test moves time on instead of waiting. */
  let skew = 0;

  beforeAll(async () => {
    t = await createTestContext('flow');
    console = {
      kafka: t.kafka,
      db: t.db,
      logger: t.logger,
      now: () => Date.now() + skew,
      settings: {
        topic: t.topic,
        analyticsSchema: `${t.schema}_analytics`,
        identitySchema: `${t.schema}_identity`,
        opsSchema: `${t.schema}_ops`,
        deliverySchema: `${t.schema}_delivery`,
        auditSchema: `${t.schema}_audit`,
        auditTopic: t.topic('hub.audit.v1'),
        // No service to probe: the traffic and pipeline sections are what is tested here.
        serviceUrls: 'none=http://127.0.0.1:9',
        refreshMs: 1000,
      },
    } as unknown as ConsoleContext;
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it('shows a record on the raw topic as its sender’s row with its count, a refusal in its AE/AR rate, and a FHIR client', async () => {
    // Given two messages from LAB|HOSP accepted (raw topic), one refused with AE (HL7 dead letters),
    // an event of a FHIR client (no raw id), and a projection that checkpointed nothing of the raw topic
    const raw = t.topic(INGEST_TOPICS.hl7Raw);
    const dlq = t.topic(INGEST_TOPICS.hl7Dlq);
    const producer = t.kafka.producer();
    await producer.connect();
    const headers = { 'hl7-sender': 'LAB|HOSP', 'hl7-raw-id': 'r' };
    await producer.send({
      topic: raw,
      messages: [
        { partition: 0, key: 'k1', value: 'MSH|1', headers },
        { partition: 0, key: 'k2', value: 'MSH|2', headers },
      ],
    });
    await producer.send({
      topic: dlq,
      messages: [{ partition: 0, key: 'k3', value: 'MSH|3', headers: { ...headers, 'hl7-ack-code': 'AE' } }],
    });
    await t.producer.publish([patientRegistered('P-FLOW', 'Flow', 'flow-1')]);
    await t.db.schema.createSchema(t.schema);
    await t.db.schema.withSchema(t.schema).createTable('checkpoints', (c) => {
      c.text('topic');
      c.integer('partition');
      c.bigInteger('last_offset');
      c.timestamp('updated_at', { useTz: true });
    });
    await t.db.withSchema(t.schema).into('checkpoints').insert({
      topic: raw,
      partition: 0,
      last_offset: -1,
      updated_at: new Date(),
    });

    // When the flow page reads
    const reader = createFlowReader(console, { projectionSchemas: t.schema, waitMs: 60_000 });
    const v = await reader.read();

    // Then the sender has one row: 3 received, 1 refused (AE): rejecting (over 5 %); the FHIR client its own
    const lab = v.traffic?.value.sources.find((s) => s.source === 'LAB|HOSP');
    expect(lab).toMatchObject({
      kind: 'hl7',
      received: 3,
      rejected: 1,
      rejectedByCode: { AE: 1 },
      state: 'rejecting',
    });
    expect(v.traffic?.value.sources.find((s) => s.source === 'fhir:TEST-EHR')).toMatchObject({ received: 1 });
    expect(v.traffic?.value.skipped).toBe('0');
    // ... the raw topic's rate counts its two records
    expect(v.traffic?.value.topics.find((x) => x.topic === raw)).toMatchObject({ recent: '2', records: '2' });
    // ... the projection is behind by the raw topic's two records
    expect(v.pipeline?.value.projections).toEqual([
      expect.objectContaining({ schema: t.schema, lag: '2', state: 'behind' }),
    ]);
    // ... and the page's row carries the DOM contract
    const page = flowLive(v).toString();
    expect(page).toMatch(/<tr data-source="LAB\|HOSP">[\s\S]*?data-field="received">3</);
    expect(page).toContain(`data-projection="${t.schema}"`);

    // When one more message arrives and the page reads again (after its refresh interval)
    await producer.send({ topic: raw, messages: [{ partition: 1, key: 'k4', value: 'MSH|4', headers }] });
    await producer.disconnect();
    skew += 2000;
    const again = await reader.read();

    // Then the sender's count has grown by it: only the new record was read, the tallies kept
    expect(again.traffic?.value.sources.find((s) => s.source === 'LAB|HOSP')).toMatchObject({ received: 4 });
  }, 120_000);
});
