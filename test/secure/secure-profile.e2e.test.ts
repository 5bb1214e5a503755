import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIT_TABLE } from '../../libs/audit/store.js';
import { AUDIT_TOPIC, auditDlqTopic } from '../../libs/audit/topic.js';
import { ensureTopics } from '../../libs/kafka/admin.js';
import type { KafkaClient } from '../../libs/kafka/client.js';
import { dlqTopicFor } from '../../libs/kafka/dlq.js';
import { createKafkaClient } from '../../libs/kafka/client.js';
import type { ProjectorService } from '../../libs/projections/service.js';
import { clinicalTopics } from '../../libs/projections/topics.js';
import { dropReadModel } from '../../libs/projections/versions.js';
import { kafkaAnswers } from '../../libs/stack/probes.js';
import { createMetrics } from '../../libs/telemetry/metrics.js';
import type { Hl7Adapter } from '../../services/adapter-hl7/app.js';
import { buildPortalProjector } from '../../services/projector-portal/app.js';
import { startTestApi, type TestApi } from '../support/api.js';
import { eventually } from '../support/harness.js';
import { adtA01, CANARY_FAMILY } from '../support/hl7-fixtures.js';
import { testHl7Adapter } from '../support/private-broker.js';
import { ackField, RawMllpClient } from '../support/raw-mllp-client.js';
import { secureBroker, type SecureBroker } from '../support/secure-stack.js';

const MRN = 'MRN-SECURE-0001';

/** What a client saw when it tried: `refused <reason>` or `allowed`. */
type Outcome = { refused: true; reason: string } | { refused: false };

/** The refusal's reason, or `allowed`: one string to assert on. */
const said = (o: Outcome): string => (o.refused ? o.reason : 'allowed');

function reasonOf(err: unknown): string {
  const e = err as { name?: unknown; type?: unknown; message?: unknown };
  const type = typeof e.type === 'string' ? `${e.type} ` : '';
  return `${String(e.name)}: ${type}${String(e.message).split('\n')[0]}`;
}

/** One produce as `kafka`'s principal, without the hub's retries: the broker's verdict, as it is. */
async function tryProduce(kafka: KafkaClient, topic: string): Promise<Outcome> {
  const p = kafka.producer({ idempotent: true, maxInFlightRequests: 1, retry: { retries: 1 } });
  try {
    await p.connect();
    await p.send({ topic, acks: -1, messages: [{ key: 'probe', value: 'probe' }] });
    return { refused: false };
  } catch (err) {
    return { refused: true, reason: reasonOf(err) };
  } finally {
    await p.disconnect().catch(() => undefined);
  }
}

/**
 * Connects and lists topics: what any client does first. A client the broker
 * keeps closing retries with backoff (the hub's client: 8 retries); after
 * `withinMs` without a session it counts as refused, saying so.
 */
async function tryConnect(kafka: KafkaClient, withinMs = 30_000): Promise<Outcome> {
  const admin = kafka.admin();
  let timer: NodeJS.Timeout | undefined;
  const attempt = (async (): Promise<Outcome> => {
    await admin.connect();
    await admin.listTopics();
    return { refused: false };
  })().catch((err: unknown): Outcome => ({ refused: true, reason: reasonOf(err) }));
  const bound = new Promise<Outcome>((resolve) => {
    timer = setTimeout(
      () =>
        resolve({ refused: true, reason: `no session within ${withinMs / 1000} s, every attempt closed` }),
      withinMs,
    );
  });
  try {
    return await Promise.race([attempt, bound]);
  } finally {
    clearTimeout(timer);
    // Not awaited: kafkajs' disconnect waits for a connect that is still retrying.
    void attempt.finally(() => admin.disconnect().catch(() => undefined));
  }
}

/**
 * The secure profile end to end (#17): a broker with only a SASL_SSL listener,
 * SCRAM users per service and StandardAuthorizer ACLs (libs/stack/secure.ts).
 * The HL7 adapter, the portal projector and the API run in-process, each with
 * its own principal's credentials as its env file gives them; an ADT A01 over
 * MLLP reaches the API. Then the refusals: a projector producing to the
 * patient topic, the HL7 adapter writing the audit topic, anonymous clients
 * (plaintext, TLS without SASL) and a wrong password. Each refusal is printed.
 */
describe('secure profile: HL7 → Kafka (SASL_SSL, SCRAM, ACLs) → portal → API, and the refusals', () => {
  let sb: SecureBroker;
  let adapter: Hl7Adapter;
  let mllpPort: number;
  let portal: ProjectorService;
  let api: TestApi;
  let portalSchema: string;
  /** Started early: an anonymous client retries for ~20 s before it gives up; meanwhile the rest runs. */
  let anonymous: Promise<Outcome>;
  let tlsOnly: Promise<Outcome>;
  const seen: string[] = [];
  const report = (who: string, what: string, o: Outcome): void => {
    const line = `${who} ${what}: ${o.refused ? `REFUSED (${o.reason})` : 'allowed'}`;
    seen.push(line);
    process.stdout.write(`[secure-profile] ${line}\n`);
  };

  beforeAll(async () => {
    sb = await secureBroker('secure');
    const { ctx } = sb;
    anonymous = tryConnect(
      createKafkaClient({ brokers: sb.brokers, clientId: 'anonymous', logger: ctx.logger }),
    );
    tlsOnly = tryConnect(
      createKafkaClient({
        brokers: sb.brokers,
        clientId: 'anonymous-tls',
        logger: ctx.logger,
        security: { protocol: 'SSL', tls: { caFile: sb.access.material.caFile } },
      }),
    );
    const metrics = () => createMetrics({ defaultMetrics: false });

    const hl7 = sb.as('adapter-hl7');
    await hl7.producer.connect();
    adapter = testHl7Adapter(ctx, hl7.producer, { controlIdPrefix: 'SEC' });
    mllpPort = (await adapter.start()).port;

    const pp = sb.as('projector-portal');
    await pp.producer.connect();
    portalSchema = `${ctx.schema}_portal`;
    portal = buildPortalProjector(
      {
        db: ctx.db,
        kafka: pp.kafka,
        codec: ctx.codec,
        producer: pp.producer,
        logger: ctx.logger,
        metrics: metrics(),
      },
      {
        stableSchema: portalSchema,
        dlqTopic: dlqTopicFor('projector-portal', ctx.topic),
        topicFor: ctx.topic,
        followEveryMs: 500,
      },
    );
    await portal.start();

    // startTestApi leaves the audit dead letters on the default (unsuffixed) topic: made here, as the operator.
    await ensureTopics(ctx.kafka, [
      { name: auditDlqTopic(), partitions: 1, replicationFactor: 1, retentionMs: -1 },
    ]);
    const a = sb.as('api');
    await a.producer.connect();
    api = await startTestApi(
      { ...ctx, kafka: a.kafka, producer: a.producer },
      {
        portalSchema,
        clinicalTopics: clinicalTopics(ctx.topic),
        auditProjector: true,
        subject: 'nurse-secure',
      },
    );
  }, 180_000);

  afterAll(async () => {
    await Promise.all([anonymous, tlsOnly]);
    await api?.stop();
    await adapter?.stop();
    await portal?.stop();
    if (sb) await dropReadModel(sb.ctx.db, portalSchema).catch(() => undefined);
    await sb?.remove();
    process.stdout.write(`[secure-profile] refusals observed:\n  ${seen.join('\n  ')}\n`);
  });

  it('carries an ADT A01 from MLLP to the API, every hop under its own principal', async () => {
    const client = await RawMllpClient.connect(mllpPort);
    try {
      await client.send(adtA01('SEC-1', MRN));
      const ack = await client.nextAck();
      expect(ackField(ack, 'MSA', 1)).toBe('AA');
    } finally {
      client.close();
    }
    const patientId = await eventually(
      async () => {
        const s = portal.activeSchema();
        if (!s) return undefined;
        const rows = await sb.ctx.db
          .withSchema(s)
          .from('patients')
          .select<{ patient_id: string }[]>('patient_id');
        return rows[0]?.patient_id;
      },
      { what: 'the portal read model to hold the patient', timeoutMs: 30_000 },
    );
    // The encounter may be applied before the registration (another topic): a placeholder first, then the patient.
    const res = await eventually(
      async () => {
        const r = await api.get(`/fhir/Patient/${encodeURIComponent(patientId)}`);
        return r.statusCode === 200 && r.body.includes(CANARY_FAMILY) ? r : undefined;
      },
      { what: 'the API to serve the registered patient', timeoutMs: 30_000 },
    );
    expect(res.statusCode, res.body).toBe(200);
    // The API wrote the read's AuditEvent (WRITE on hub.audit.v1) and projected it (READ, its group).
    await eventually(
      async () => {
        const rows = await sb.ctx.db
          .withSchema(`${sb.ctx.schema}_audit`)
          .from(AUDIT_TABLE)
          .select<{ audit_id: string }[]>('audit_id')
          .limit(1);
        return rows.length > 0 ? true : undefined;
      },
      { what: 'the audit table to hold the read', timeoutMs: 30_000 },
    );
  });

  it('refuses a projector principal that produces to clinical.patient.v1 (TOPIC_AUTHORIZATION_FAILED)', async () => {
    const topic = sb.ctx.topic('clinical.patient.v1');
    const projector = await tryProduce(sb.as('projector-portal').kafka, topic);
    report('projector-portal', `produce to ${topic}`, projector);
    expect(said(projector)).toContain('TOPIC_AUTHORIZATION_FAILED');
    // Only the API (and the audited FHIR adapter) may write the audit trail.
    const audit = sb.ctx.topic(AUDIT_TOPIC);
    const hl7 = await tryProduce(sb.as('adapter-hl7').kafka, audit);
    report('adapter-hl7', `produce to ${audit}`, hl7);
    expect(said(hl7)).toMatch(/not authorized|AUTHORIZATION_FAILED/i);
    // The same produce by the adapter whose role it is goes through.
    const allowed = await tryProduce(sb.as('adapter-hl7').kafka, topic);
    report('adapter-hl7', `produce to ${topic}`, allowed);
    expect(allowed).toEqual({ refused: false });
  });

  it('refuses anonymous clients entirely: plaintext and TLS without SASL', async () => {
    const port = Number(sb.brokers[0]?.split(':')[1]);
    // A plaintext Kafka request to the TLS port: the broker closes without an answer.
    const raw = await kafkaAnswers('127.0.0.1', port, 3000);
    report(
      'anonymous (raw plaintext ApiVersions)',
      'connect',
      raw ? { refused: false } : { refused: true, reason: 'connection closed without a Kafka response' },
    );
    expect(raw).toBe(false);
    const tls = await tlsOnly;
    report('anonymous (TLS, no SASL)', 'connect + list topics', tls);
    expect(tls.refused).toBe(true);
    const plain = await anonymous;
    report('anonymous (hub client, PLAINTEXT)', 'connect + list topics', plain);
    expect(plain.refused).toBe(true);
  }, 90_000);

  it('refuses a wrong password', async () => {
    const outcome = await tryConnect(
      createKafkaClient({
        brokers: sb.brokers,
        clientId: 'wrong-password',
        logger: sb.ctx.logger,
        security: {
          protocol: 'SASL_SSL',
          tls: { caFile: sb.access.material.caFile },
          sasl: {
            mechanism: 'scram-sha-512',
            username: 'projector-portal',
            password: { value: 'not-the-password' },
          },
        },
      }),
    );
    report('projector-portal (wrong password)', 'connect + list topics', outcome);
    expect(said(outcome)).toMatch(/SASL.*authentication failed/i);
  });
});
