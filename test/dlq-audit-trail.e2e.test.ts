import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completeEvent } from '../cli/publish.js';
import { listAudit } from '../libs/audit/store.js';
import { ensureTopics } from '../libs/kafka/admin.js';
import { dlqTopicFor } from '../libs/kafka/dlq.js';
import { scanTopic } from '../libs/kafka/scan.js';
import { startTestApi, type TestApi } from './support/api.js';
import { createTestContext, eventually, type TestContext } from './support/harness.js';
import { runHub } from './support/processes.js';

const PATIENT_TOPIC = 'clinical.patient.v1';

/**
 * Regression: `hub dlq` wrote its own JSON shape to the audit topic, which
 * the audit projector skips, so redrive, discard and show-with-PHI never
 * reached the hash-chained audit table. Here the API runs its audit
 * projector, the CLI runs as an operator runs it, and the table (not the
 * topic) must hold one verified row per action.
 */
describe('regression: dead-letter actions reach the audit table that `hub audit verify` covers', () => {
  let ctx: TestContext;
  let api: TestApi;
  let dlq: string;
  let env: Record<string, string>;
  let auditSchema: string;

  beforeAll(async () => {
    ctx = await createTestContext('dlqaudit');
    dlq = dlqTopicFor('patient-directory', ctx.topic);
    ctx.extraTopics.push(dlq);
    await ensureTopics(ctx.kafka, [{ name: dlq, partitions: 1, replicationFactor: 1, retentionMs: -1 }]);
    api = await startTestApi(ctx, {
      portalSchema: `${ctx.schema}_portal`,
      clinicalTopics: [],
      auditProjector: true,
      subject: 'unused',
    });
    auditSchema = `${ctx.schema}_audit`;

    // Three events on their topic, parked as the consumer runner parks a record it cannot apply.
    await ctx.producer.publish(
      ['DLQA-1', 'DLQA-2', 'DLQA-3'].map((patientId, i) =>
        completeEvent(
          {
            type: 'PatientRegistered',
            data: {
              meta: { occurredAt: Date.UTC(2026, 1, 1), source: { system: 'AUDIT-EHR', messageId: `m${i}` } },
              patientId,
              demographics: {
                identifiers: [{ system: 'urn:oid:1.2.3', value: `MRN-${patientId}`, type: 'MR' }],
                names: [{ family: 'Zzauditcanary', given: ['X'], use: 'official' }],
              },
            },
          },
          i + 1,
          Date.now(),
        ),
      ),
    );
    const source = await eventually(async () => {
      const r = await scanTopic(ctx.kafka, ctx.topic(PATIENT_TOPIC));
      return r.length === 3 ? r : undefined;
    });
    await ctx.producer.publishRaw(
      source.map((r) => ({
        topic: dlq,
        key: r.key,
        value: r.value,
        headers: {
          ...r.headers,
          'hub-dlq-reason-code': 'HUB_PROJECTION_FAILED',
          'hub-dlq-reason': 'patient-directory rejected the event',
          'hub-dlq-consumer': 'hub.projection.patient-directory',
          'hub-dlq-source-topic': r.topic,
          'hub-dlq-source-partition': String(r.partition),
          'hub-dlq-source-offset': r.offset,
          'hub-dlq-failed-at': new Date().toISOString(),
        },
      })),
    );
    env = {
      KAFKA_BROKERS: ctx.ep.kafkaBrokers.join(','),
      SCHEMA_REGISTRY_URL: ctx.ep.registryUrl,
      DATABASE_URL: ctx.ep.databaseUrl,
      HUB_TOPIC_SUFFIX: ctx.id,
      HUB_OPS_SCHEMA: ctx.schema,
      HUB_OPERATOR: 'e2e-auditor',
      AUDIT_SCHEMA: auditSchema,
    };
  });
  afterAll(async () => {
    await api?.stop();
    await ctx?.cleanup();
  });

  const hub = (args: string[]) => {
    const r = runHub(args, env);
    expect(r.status, r.stderr).toBe(0);
    return r.stdout;
  };

  it('given dead letters, when an operator shows one with PHI, redrives one and discards one, then each is a verified row naming who, what, which record and why', async () => {
    const where = (offset: number) => `${dlq}/0/${offset}`;
    // when
    expect(hub(['dlq', 'show', dlq, '0', '0', '--include-phi', '--reason', 'INC-7 wrong mapping'])).toContain(
      'Zzauditcanary',
    );
    hub(['dlq', 'redrive', '--topic', dlq, '--at', '0:1', '--reason', 'mapping fixed in 1.4']);
    hub(['dlq', 'discard', '--topic', dlq, '--at', '0:2', '--reason', 'test data only']);

    // then: the audit table has one row per action, in order
    const rows = await eventually(
      async () => {
        const r = await listAudit(ctx.db, auditSchema, { limit: 10 }).catch(() => []);
        return r.length === 3 ? [...r].reverse() : undefined;
      },
      { what: 'three audit rows' },
    );
    expect(rows).toEqual([
      expect.objectContaining({
        action: 'dlq.show.include-phi',
        agent: 'e2e-auditor',
        route: where(0),
        patientId: 'DLQA-1',
        outcome: '0',
      }),
      expect.objectContaining({
        action: 'dlq.redrive',
        agent: 'e2e-auditor',
        route: where(1),
        patientId: 'DLQA-2',
      }),
      expect.objectContaining({
        action: 'dlq.discard',
        agent: 'e2e-auditor',
        route: where(2),
        patientId: 'DLQA-3',
      }),
    ]);
    // the reason and where the record went are in the chained event itself
    const events = await ctx.db
      .withSchema(auditSchema)
      .from('audit_log')
      .orderBy('seq')
      .select<{ event: { purposeOfEvent?: { text: string }[]; entity: { detail?: unknown[] }[] } }[]>(
        'event',
      );
    expect(events.map((e) => e.event.purposeOfEvent?.[0]?.text)).toEqual([
      'INC-7 wrong mapping',
      'mapping fixed in 1.4',
      'test data only',
    ]);
    expect(events[1]!.event.entity.at(-1)!.detail).toEqual([
      { type: 'to', valueString: ctx.topic(PATIENT_TOPIC) },
    ]);

    // and `hub audit verify` walks them: the chain holds and ends at the last of them
    const verdict = JSON.parse(hub(['--json', 'audit', 'verify'])) as { ok: boolean; rows: number };
    expect(verdict).toMatchObject({ ok: true, rows: 3 });
    // a patient's access report lists the PHI read of their record
    const forPatient = JSON.parse(hub(['audit', 'list', '--patient', 'DLQA-1'])) as { action: string }[];
    expect(forPatient.map((r) => r.action)).toEqual(['dlq.show.include-phi']);
  });
});
