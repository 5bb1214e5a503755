import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateProjection, storedOffsets } from '../../libs/projections/runner.js';
import type { ProjectorService } from '../../libs/projections/service.js';
import { dropReadModel, resolveActiveVersion } from '../../libs/projections/versions.js';
import { endOffsets } from '../../libs/kafka/admin.js';
import { createMetrics } from '../../libs/telemetry/metrics.js';
import { patientRegistered, patientUpdated, patientsMerged } from '../../test/support/fixtures.js';
import { createTestContext, eventually, uniqueId, type TestContext } from '../../test/support/harness.js';
import { buildPatientDirectory } from './app.js';
import { adoptUnversionedSchema } from './legacy.js';
import { directoryModel, findPatient, patientDirectoryProjection } from './projection.js';

/** The service on the projector kit against real Kafka and Postgres: exactly-once in effect. */
describe('patient directory projection', () => {
  let ctx: TestContext;
  let dlq: string;
  let topic: string;
  /** Where the runner writes: version 1 of the stable schema ctx.schema, which readers use. */
  let version: string;
  const projection = () => patientDirectoryProjection(topic);

  beforeAll(async () => {
    ctx = await createTestContext('pdir');
    topic = ctx.topicFor('PatientRegistered');
    dlq = `hub.dlq.${ctx.id}`;
    ctx.extraTopics.push(dlq);
    version = `${ctx.schema}_v1`;
  });
  afterAll(async () => {
    await dropReadModel(ctx.db, ctx.schema);
    await ctx.cleanup();
  });

  /** The service with a consumer group of its own (the prefix; the version schema is appended). */
  function directory(groupPrefix: string): ProjectorService {
    const { db, kafka, codec, producer, logger } = ctx;
    return buildPatientDirectory(
      { db, kafka, codec, producer, logger, metrics: createMetrics({ defaultMetrics: false }) },
      { stableSchema: ctx.schema, dlqTopic: dlq, topicFor: ctx.topic, groupPrefix },
    );
  }

  async function caughtUp(): Promise<void> {
    const ends = await endOffsets(ctx.kafka, topic);
    await eventually(
      async () => {
        const stored = await storedOffsets(ctx.db, version, topic);
        for (const [p, end] of ends) {
          if (end === 0n) continue;
          if ((stored.get(p) ?? -1n) !== end - 1n) return undefined;
        }
        return true;
      },
      { what: 'projection to reach the end of the topic' },
    );
  }

  async function appliedCount(): Promise<number> {
    const rows: { n: string }[] = await ctx.db.withSchema(version).from('applied_events').count({ n: '*' });
    return Number(rows[0]?.n);
  }

  it('applies each event once, even when the source resends it', async () => {
    await ctx.producer.publish([
      patientRegistered('P1', 'Alpha', 'm1'),
      patientRegistered('P2', 'Bravo', 'm2'),
      patientUpdated('P1', 'Alpha-Updated', 'm3'),
      patientRegistered('P1', 'Alpha', 'm1'), // resend of m1: same deterministic event id
    ]);
    const r = directory(uniqueId('g'));
    await r.start();
    await caughtUp();
    // The port serves no patient (reads go through the query API); readers use the stable schema's view.
    const res = await r.http.inject({ method: 'GET', url: '/patients/P1' });
    expect(res.statusCode).toBe(404);
    expect(res.body).not.toContain('Alpha');
    await r.stop();
    expect(await findPatient(ctx.db, ctx.schema, 'P1')).toMatchObject({
      family: 'Alpha-Updated',
      version: 2,
    });
    // Every column as the table holds it: text[], jsonb and timestamptz written by the store's one statement.
    expect(await findPatient(ctx.db, ctx.schema, 'P2')).toEqual({
      patient_id: 'P2',
      family: 'Bravo',
      given: ['Testy'],
      birth_date: '1970-01-01',
      gender: 'unknown',
      identifiers: [{ system: 'urn:oid:2.16.840.1.113883.3.999.1', value: 'MRN-P2', type: 'MR' }],
      merged_into: null,
      version: 1,
      last_event_id: expect.any(String) as unknown,
      updated_at: patientRegistered('P2', 'Bravo', 'm2').data.meta.occurredAt,
    });
    expect(await appliedCount()).toBe(3);
  });

  it('resumes from its stored offsets after a restart, even with a brand-new consumer group, without duplicating', async () => {
    await ctx.producer.publish([patientUpdated('P2', 'Bravo-2', 'm4'), patientsMerged('P1', 'P2', 'm5')]);
    // A new group has no Kafka offsets: without the stored checkpoints it would replay from 0.
    const r = directory(uniqueId('g-new'));
    await r.start();
    await caughtUp();
    await r.stop();
    expect(await findPatient(ctx.db, ctx.schema, 'P1')).toMatchObject({ version: 3 });
    expect(await findPatient(ctx.db, ctx.schema, 'P2')).toMatchObject({
      family: 'Bravo-2',
      version: 3,
      merged_into: 'P1',
    });
    expect(await appliedCount()).toBe(5);
  });

  it('adopts a directory from before the projector kit (tables in the stable schema) as version 1, rows and checkpoints kept', async () => {
    const stable = `${ctx.schema}_old`;
    // The old layout: the runner's bookkeeping and the patients table, unversioned, without patient_links.
    await migrateProjection(ctx.db, stable, {
      ...projection(),
      migrations: directoryModel(topic).migrations.filter((m) => m.name === '0001_patients'),
    });
    await ctx.db
      .withSchema(stable)
      .into('patients')
      .insert({
        patient_id: 'OLD-1',
        family: 'Old',
        version: 4,
        last_event_id: '6f1c1d2e-8a3b-4c5d-9e0f-a1b2c3d4e5f6',
        updated_at: new Date(Date.UTC(2025, 0, 2)),
      });
    await ctx.db.withSchema(stable).into('checkpoints').insert({ topic, partition: 0, last_offset: 41 });
    try {
      expect(await adoptUnversionedSchema(ctx.db, stable)).toBe(true);
      const active = await resolveActiveVersion(ctx.db, stable, projection());
      expect(active).toBe(`${stable}_v1`);
      // Read through the stable schema's view, as the service's route reads it.
      expect(await findPatient(ctx.db, stable, 'OLD-1')).toMatchObject({
        family: 'Old',
        version: 4,
        updated_at: Date.UTC(2025, 0, 2),
      });
      expect(await storedOffsets(ctx.db, active, topic)).toEqual(new Map([[0, 41n]]));
      // A versioned schema (views only) is left alone on the next start.
      expect(await adoptUnversionedSchema(ctx.db, stable)).toBe(false);
    } finally {
      await dropReadModel(ctx.db, stable);
    }
  });
});
