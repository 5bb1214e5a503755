import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, eventually, uniqueId, type TestContext } from '../../test/support/harness.js';
import { dropSchema } from '../db/index.js';
import { createLogger } from '../telemetry/logger.js';
import { buildAuditEvent } from './event.js';
import { AUDIT_TABLE, migrateAudit, verifyAuditChain } from './store.js';
import {
  auditRecord,
  createAuditProjector,
  createAuditSink,
  ensureAuditTopic,
  type AuditProjector,
} from './topic.js';

/**
 * Issue #17 item 1: `GET /fhir/Patient/<id>%00` put an AuditEvent with a NUL
 * in its patient reference on the audit topic; Postgres cannot store U+0000,
 * the projector threw, fetched the same batch again forever, and the audit
 * table stopped growing. A poison record must be skipped (counted, logged
 * with its offset and a reason code only) and every other one appended.
 */
describe('regression: a NUL in an audit event stopped the audit table', () => {
  let ctx: TestContext;
  const logLines: string[] = [];
  const projectors: AuditProjector[] = [];
  const groups: string[] = [];
  const schemas: string[] = [];

  beforeAll(async () => {
    ctx = await createTestContext('auditpoison');
  });

  afterAll(async () => {
    for (const p of projectors) await p.stop().catch(() => undefined);
    const admin = ctx.kafka.admin();
    await admin.connect();
    await admin.deleteGroups(groups).catch(() => undefined);
    await admin.disconnect();
    for (const s of schemas) await dropSchema(ctx.db, s);
    await ctx.cleanup();
  });

  const event = (patientId: string | null) =>
    buildAuditEvent({
      id: randomUUID(),
      recorded: Date.now(),
      interaction: 'read',
      route: 'GET /fhir/Patient/:id',
      resourceType: 'Patient',
      status: 200,
      patientId,
      who: { subject: 'nurse-1', clientId: 'ward-app', scopes: ['user/*.rs'] },
      denyReason: null,
      sourceAddress: '10.0.0.7',
      observer: 'hub-api',
    });

  /** A fresh topic, table and group; the projector starts after `publish` has put everything on the topic. */
  async function project(publish: (topic: string) => Promise<void>) {
    const topic = `hub.audit.v1.${uniqueId(ctx.id)}`;
    const schema = uniqueId(`${ctx.schema}_a`).toLowerCase();
    const groupId = `hub.audit.projector.${topic}`;
    ctx.extraTopics.push(topic);
    schemas.push(schema);
    groups.push(groupId);
    await ensureAuditTopic(ctx.kafka, topic);
    await migrateAudit(ctx.db, schema);
    await publish(topic);
    let rejected = 0;
    let appended = 0;
    const logger = createLogger({
      name: 'audit-poison',
      level: 'warn',
      destination: { write: (line: string) => void logLines.push(line) },
    });
    const p = createAuditProjector({
      kafka: ctx.kafka,
      db: ctx.db,
      schema,
      topic,
      groupId,
      logger,
      onAppended: (n) => (appended += n),
      onRejected: () => rejected++,
    });
    projectors.push(p);
    await p.start();
    return { schema, rejected: () => rejected, appended: () => appended };
  }

  const rowCount = async (schema: string): Promise<number> => {
    const r = await ctx.db.withSchema(schema).from(AUDIT_TABLE).count<{ n: string }[]>({ n: '*' });
    return Number(r[0]?.n ?? 0);
  };

  /** Every event of `kept` is in the table in order, the chain verifies, and exactly one record was rejected. */
  async function expectAppendedSkippingOne(
    run: { schema: string; rejected: () => number },
    kept: readonly { id?: string }[],
  ): Promise<void> {
    await eventually(async () => ((await rowCount(run.schema)) >= kept.length ? true : undefined), {
      what: `${kept.length} audit rows`,
    });
    await eventually(() => Promise.resolve(run.rejected() >= 1 ? true : undefined), {
      what: 'the poison rejected',
    });
    expect(await rowCount(run.schema)).toBe(kept.length);
    expect(run.rejected()).toBe(1);
    const ids = await ctx.db
      .withSchema(run.schema)
      .from(AUDIT_TABLE)
      .orderBy('seq')
      .pluck<string[]>('audit_id');
    expect(ids).toEqual(kept.map((e) => e.id));
    expect(await verifyAuditChain(ctx.db, run.schema)).toMatchObject({ ok: true, rows: kept.length });
  }

  it('given a NUL-bearing AuditEvent then 200 valid ones on the topic, then the 200 are appended, the chain verifies and the poison is rejected once', async () => {
    const valid = Array.from({ length: 200 }, (_, i) => event(`P${i % 7}`));
    const poison = event('P1\u0000');
    const run = await project(async (topic) => {
      // Straight onto the topic, as the API's sink wrote it before the edge fix.
      await ctx.producer.publishRaw([auditRecord(topic, poison)]);
      await createAuditSink(ctx.producer, topic).recordAll(valid);
    });

    await expectAppendedSkippingOne(run, valid);
    const warn = logLines.find((l) => l.includes('unstorable-text'));
    expect(warn).toBeDefined();
    // Where and why, never what: the patient reference may be PHI.
    expect(JSON.parse(warn!)).toMatchObject({ partition: 0, offset: '0', reason: 'unstorable-text' });
    expect(warn).not.toContain('P1');
    expect(warn).not.toContain(poison.id);
  });

  it('given a record Postgres refuses as data (SQLSTATE class 22) in the middle of a batch, then it alone is skipped and the chain stays whole', async () => {
    const before = Array.from({ length: 50 }, () => event('P2'));
    const after = Array.from({ length: 50 }, () => event('P3'));
    // Passes the shape check but is not a uuid: the batch insert fails with 22P02.
    const poison = { ...event('P2'), id: '------------------------------------' };
    const run = await project(async (topic) => {
      await createAuditSink(ctx.producer, topic).recordAll([...before, poison, ...after]);
    });

    await expectAppendedSkippingOne(run, [...before, ...after]);
    expect(logLines.some((l) => l.includes('sqlstate-22'))).toBe(true);
  });
});
