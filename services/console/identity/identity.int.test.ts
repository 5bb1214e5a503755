import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIT_TOPIC, createAuditSink, ensureAuditTopic } from '../../../libs/audit/topic.js';
import { createDb, dropSchema, type Knex } from '../../../libs/db/index.js';
import { createEventCodec } from '../../../libs/events/codec.js';
import { createRegistryClient } from '../../../libs/events/registry.js';
import { applyDecision, upsertRecord } from '../../../libs/identity/matcher/state.js';
import { toMatchRecord } from '../../../libs/identity/matching/normalise.js';
import { migrateIdentity, pairKeyOf } from '../../../libs/identity/store.js';
import { deleteTopics } from '../../../libs/kafka/admin.js';
import { createKafkaClient, type KafkaClient } from '../../../libs/kafka/client.js';
import { createEventProducer, type EventProducer } from '../../../libs/kafka/producer.js';
import { scanTopic } from '../../../libs/kafka/scan.js';
import { createLogger } from '../../../libs/telemetry/logger.js';
import {
  consoleTestApp,
  devSignIn,
  TEST_CONSOLE_SETTINGS,
  type ConsoleTestApp,
} from '../../../test/support/console-app.js';
import { endpoints, eventually, uniqueId } from '../../../test/support/harness.js';
import { demographicsOf, type Person } from '../../../test/support/identity.js';

/** Made up; registered twice (two facilities, two MRNs), so the matcher would propose the pair. */
const bea: Person = {
  given: 'Bea',
  family: 'Marsh',
  birthDate: '1984-11-30',
  sex: 'female',
  line: '7 Canal Row',
  postalCode: '40402',
  phone: '555-0142',
};

/**
 * The identity review page against Postgres (the master patient index's
 * own tables, as the matcher writes them) and Kafka (the audit topic): the
 * worklist shows a proposed pair and puts one AuditEvent per patient on the
 * audit topic; a link goes through the command table the matcher reads.
 */
describe('console identity review (Postgres, Kafka)', () => {
  let db: Knex;
  let kafka: KafkaClient;
  let producer: EventProducer;
  let t: ConsoleTestApp;
  const schema = uniqueId('console_identity').toLowerCase();
  const auditTopic = `${AUDIT_TOPIC}.${uniqueId('console_identity')}`;
  const now = new Date('2026-01-15T10:00:00Z');
  const [a, b] = [uniqueId('E'), uniqueId('E')];

  async function record(id: string, facility: string): Promise<void> {
    const demographics = demographicsOf(bea, facility, `MRN-${id}`);
    await db.transaction((trx) =>
      upsertRecord(trx, schema, {
        record: toMatchRecord(id, demographics),
        demographics,
        keys: ['k1'],
        source: { system: 'TEST-EHR', facility },
        now,
      }),
    );
  }

  beforeAll(async () => {
    const ep = endpoints();
    db = createDb(ep.databaseUrl);
    const logger = createLogger({ name: 'console-identity-int', level: 'silent' });
    kafka = createKafkaClient({ brokers: ep.kafkaBrokers, clientId: schema, logger });
    producer = createEventProducer({ kafka, codec: createEventCodec(createRegistryClient(ep.registryUrl)) });
    await producer.connect();
    await ensureAuditTopic(kafka, auditTopic);
    await migrateIdentity(db, schema);
    await record(a, 'NORTH');
    await record(b, 'SOUTH');
    const { pairKey, lo, hi } = pairKeyOf(a, b);
    await db.transaction((trx) =>
      applyDecision(trx, schema, {
        eventId: `${pairKey}-proposed`,
        type: 'PatientLinkProposed',
        pairKey,
        patientId: lo,
        otherPatientId: hi,
        score: 18.5,
        weightsVersion: 'w1',
        evidence: [
          { field: 'given', level: 'exact', weight: 6 },
          { field: 'identifier', level: 'conflict', weight: -4 },
        ],
        rules: [],
        decidedBy: 'identity-matcher',
        reason: null,
        basis: 'auto',
        decidedAt: now,
      }),
    );
    t = await consoleTestApp({
      ctx: {
        db,
        audit: createAuditSink(producer, auditTopic),
        settings: {
          ...TEST_CONSOLE_SETTINGS,
          identitySchema: schema,
          auditTopic,
        },
      },
    });
  }, 120_000);

  afterAll(async () => {
    await t.close();
    await producer.disconnect().catch(() => undefined);
    await deleteTopics(kafka, [auditTopic]);
    await dropSchema(db, schema);
    await db.destroy();
  });

  it('given a proposed pair, when a steward opens /identity, then the pair is shown side by side and one AuditEvent per patient is on the audit topic', async () => {
    const { cookie } = await devSignIn(t, ['steward'], 'steward-ann');
    const res = await t.app.inject({ method: 'GET', url: '/identity', headers: { cookie } });
    expect(res.statusCode).toBe(200);
    const { lo, hi } = pairKeyOf(a, b);
    expect(res.body).toContain(`data-pair="${lo}|${hi}"`);
    expect(res.body).toContain(`MRN-${a}`);
    expect(res.body).toContain(`MRN-${b}`);
    expect(res.body).toContain('data-evidence="identifier"');
    expect(res.body).toContain('value="reject">Not the same person</button>');
    // Acknowledged before the answer: the events are on the topic already.
    const records = await scanTopic(kafka, auditTopic);
    const events = records.map((r) => JSON.parse(r.value?.toString('utf8') ?? '{}') as { entity?: unknown });
    const patients = records.map((r) => r.key?.toString('utf8')).sort();
    expect(patients).toEqual([lo, hi].sort());
    expect(events).toHaveLength(2);
    expect(JSON.stringify(events)).toContain('steward-ann');
    expect(JSON.stringify(events)).not.toContain('Marsh');
  });

  it('given the worklist, when the steward links the pair with a reason and the matcher applies it, then the page says linked, the command names the steward', async () => {
    const { cookie, csrf } = await devSignIn(t, ['steward'], 'steward-bob');
    const answer = t.app.inject({
      method: 'POST',
      url: '/identity/decide',
      headers: {
        cookie,
        'x-csrf-token': csrf,
        'hx-request': 'true',
        'content-type': 'application/x-www-form-urlencoded',
      },
      payload: new URLSearchParams({
        kind: 'link',
        patientId: a,
        otherPatientId: b,
        reason: 'same person, new MRN',
      }).toString(),
    });
    // The matcher's part, done by hand: it marks the command done with the event it published.
    const command = await eventually(
      async () => {
        const row = await db
          .withSchema(schema)
          .from('commands')
          .where({ status: 'pending' })
          .first<{ id: string; decided_by: string; reason: string } | undefined>();
        return row;
      },
      { what: 'the steward command' },
    );
    expect([command.decided_by, command.reason]).toEqual(['steward-bob', 'same person, new MRN']);
    await db
      .withSchema(schema)
      .from('commands')
      .where({ id: command.id })
      .update({ status: 'done', event_id: 'ev-linked' });
    const res = await answer;
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('data-outcome="done"');
    expect(res.body).toContain('ev-linked');
  });
});
