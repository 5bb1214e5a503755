import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, eventually, uniqueId, type TestContext } from '../../test/support/harness.js';
import { readAuditEvent } from '../../test/support/audit-events.js';
import { runHub } from '../../test/support/processes.js';
import { dropSchema } from '../db/index.js';
import { scanTopic } from '../kafka/scan.js';
import { createLogger } from '../telemetry/logger.js';
import { GENESIS_HASH, rowHash, type ChainedRow } from './chain.js';
import { auditLag, startAuditLagMonitor } from './lag.js';
import { AUDIT_TABLE, migrateAudit, verifyAuditChain } from './store.js';
import {
  auditRecord,
  createAuditProjector,
  createAuditSink,
  ensureAuditTopic,
  type AuditProjector,
} from './topic.js';

/** An AuditEvent as the API builds one for a read of `patientId`'s record. */
const event = (patientId: string | null) => readAuditEvent(patientId);

/** A fresh audit topic, DLQ and table, and the projector group name for them. */
async function auditTrail(ctx: TestContext) {
  const topic = `hub.audit.v1.${uniqueId(ctx.id)}`;
  const dlqTopic = `hub.dlq.audit.${uniqueId(ctx.id)}`;
  const schema = uniqueId(`${ctx.schema}_a`).toLowerCase();
  ctx.extraTopics.push(topic, dlqTopic);
  await ensureAuditTopic(ctx.kafka, topic, dlqTopic);
  await migrateAudit(ctx.db, schema);
  const groupId = `hub.audit.projector.${schema}`;
  // What every projector here is built with.
  const base = { kafka: ctx.kafka, db: ctx.db, schema, topic, groupId, dlqTopic, producer: ctx.producer };
  return { topic, dlqTopic, schema, groupId, base };
}

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

  /** A fresh topic, table and group; the projector starts after `publish` has put everything on the topic. */
  async function project(publish: (topic: string) => Promise<void>, opts: { chainKey?: Buffer } = {}) {
    const { topic, schema, groupId, base } = await auditTrail(ctx);
    schemas.push(schema);
    groups.push(groupId);
    await publish(topic);
    let rejected = 0;
    let appended = 0;
    const logger = createLogger({
      name: 'audit-poison',
      level: 'warn',
      destination: { write: (line: string) => void logLines.push(line) },
    });
    const p = createAuditProjector({
      ...base,
      chainKey: opts.chainKey ?? null,
      logger,
      onAppended: (n) => (appended += n),
      onRejected: () => rejected++,
    });
    projectors.push(p);
    await p.start();
    return {
      schema,
      topic,
      groupId,
      projector: p,
      rejected: () => rejected,
      appended: () => appended,
    };
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

/**
 * Issue #17, "an audit trail that cannot be silenced or rewritten unnoticed":
 * a poison record is dead-lettered while the rest reach the keyed table,
 * `hub audit verify` names that gap and no other, and edits made around the
 * append-only trigger (a deleted head row, rows rewritten with the unkeyed
 * hash) are reported.
 */
describe('audit dead letters, lag and verification against the topic', () => {
  let ctx: TestContext;
  const stops: (() => Promise<void>)[] = [];
  const key = Buffer.from('test-audit-chain-key-'.padEnd(48, 'k'), 'utf8');
  let keyFile: string;

  beforeAll(async () => {
    ctx = await createTestContext('auditverify');
    const dir = mkdtempSync(join(tmpdir(), 'audit-key-'));
    keyFile = join(dir, 'audit-chain.key');
    writeFileSync(keyFile, `${key.toString('utf8')}\n`, { mode: 0o600 });
  });

  afterAll(async () => {
    for (const s of stops) await s().catch(() => undefined);
    await ctx.cleanup();
  });

  async function setup() {
    const { topic, dlqTopic, schema, groupId, base } = await auditTrail(ctx);
    const projector = createAuditProjector({
      ...base,
      chainKey: key,
      logger: createLogger({ name: 'audit-verify', level: 'silent' }),
    });
    stops.push(async () => {
      await projector.stop();
      const admin = ctx.kafka.admin();
      await admin.connect();
      await admin.deleteGroups([groupId]).catch(() => undefined);
      await admin.disconnect();
      await dropSchema(ctx.db, schema);
    });
    return { topic, dlqTopic, schema, groupId, projector };
  }

  const verifyCli = (
    run: { topic: string; dlqTopic: string; schema: string; groupId: string },
    json: boolean,
  ) =>
    runHub(
      [
        ...(json ? ['--json'] : []),
        'audit',
        'verify',
        '--topic',
        run.topic,
        '--dlq-topic',
        run.dlqTopic,
        '--group',
        run.groupId,
        '--key-file',
        keyFile,
      ],
      {
        DATABASE_URL: ctx.ep.databaseUrl,
        KAFKA_BROKERS: ctx.ep.kafkaBrokers.join(','),
        AUDIT_SCHEMA: run.schema,
      },
    );

  /** Rewrites rows from `fromSeq` on as an attacker without the key would: unkeyed (version 1) hashes, consistent. */
  async function rewriteUnkeyed(schema: string, fromSeq: number, edit: (row: ChainedRow) => ChainedRow) {
    const rows = await ctx.db
      .withSchema(schema)
      .from(AUDIT_TABLE)
      .where('seq', '>=', fromSeq)
      .orderBy('seq')
      .select<Record<string, unknown>[]>('*');
    let prev =
      fromSeq === 1 ? GENESIS_HASH : ((rows[0]?.['prev_hash'] as string | undefined) ?? GENESIS_HASH);
    await ctx.db.raw('alter table ??.?? disable trigger audit_log_append_only', [schema, AUDIT_TABLE]);
    try {
      for (const r of rows) {
        const row = edit({
          seq: Number(r['seq']),
          auditId: r['audit_id'] as string,
          recordedAt: r['recorded_at'] as string,
          patientId: r['patient_id'] as string | null,
          agent: r['agent'] as string | null,
          clientId: r['client_id'] as string | null,
          action: r['action'] as string,
          route: r['route'] as string,
          outcome: r['outcome'] as string,
          sourceAddress: r['source_address'] as string | null,
          event: r['event'],
          prevHash: prev,
        });
        const hash = rowHash(row);
        await ctx.db
          .withSchema(schema)
          .from(AUDIT_TABLE)
          .where({ seq: row.seq })
          .update({
            patient_id: row.patientId,
            event: JSON.stringify(row.event),
            prev_hash: prev,
            hash,
            chain_version: 1,
          });
        prev = hash;
      }
    } finally {
      await ctx.db.raw('alter table ??.?? enable trigger audit_log_append_only', [schema, AUDIT_TABLE]);
    }
  }

  it('given a poison record put straight onto the topic and 1,000 audit events after it, then the poison is dead-lettered with its reason, the 1,000 reach the keyed table, and `hub audit verify` reports that one known gap and no other; edits around the trigger are then reported', async () => {
    const run = await setup();
    const poisonId = randomUUID();
    // Raw bytes and no headers: what anything able to write the topic could put there.
    await ctx.producer.publishRaw([
      {
        topic: run.topic,
        key: 'P9',
        value: Buffer.from(JSON.stringify({ ...event('P9\u0000'), id: poisonId })),
      },
    ]);
    const valid = Array.from({ length: 1000 }, (_, i) => event(`P${i % 11}`));
    await createAuditSink(ctx.producer, run.topic).recordAll(valid);
    await run.projector.start();

    await eventually(
      async () => ((await auditLag(ctx.kafka, run.topic, run.groupId)).lag === 0 ? true : undefined),
      {
        what: 'the projector committed past every record',
        timeoutMs: 60_000,
      },
    );
    const ids = await ctx.db
      .withSchema(run.schema)
      .from(AUDIT_TABLE)
      .orderBy('seq')
      .pluck<string[]>('audit_id');
    expect(ids).toEqual(valid.map((e) => e.id));
    const dead = await scanTopic(ctx.kafka, run.dlqTopic);
    expect(dead).toHaveLength(1);
    expect(dead[0]?.headers).toMatchObject({
      'hub-dlq-reason-code': 'unstorable-text',
      'hub-dlq-source-topic': run.topic,
      'hub-dlq-source-partition': '0',
      'hub-dlq-source-offset': '0',
      'hub-audit-id': poisonId,
    });
    expect(await verifyAuditChain(ctx.db, run.schema, { key })).toMatchObject({
      ok: true,
      rows: 1000,
      keyedFrom: 1,
    });

    const ok = verifyCli(run, true);
    expect(ok.status, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({
      ok: true,
      chain: { ok: true, rows: 1000, keyedFrom: 1, unkeyedRows: 0 },
      topic: {
        topic: { records: 1001 },
        table: { rows: 1000, matched: 1000 },
        deadLettered: { count: 1, byReason: { 'unstorable-text': 1 }, first: [`0:0 (${poisonId})`] },
        pending: 0,
        missing: { count: 0 },
        altered: { count: 0 },
        notOnTopic: 0,
      },
    });
    const text = verifyCli(run, false);
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toContain('known gaps (dead-lettered): 1 [unstorable-text: 1]');
    expect(text.stdout).toContain('UNEXPLAINED missing from the table: 0');

    // Rows from 500 on rewritten with the unkeyed hash: refused as a downgrade after the keyed rows.
    const moved = (r: ChainedRow): ChainedRow =>
      r.seq === 500 ? { ...r, patientId: 'SOMEONE-ELSE', event: { ...(r.event as object), note: 'x' } } : r;
    await rewriteUnkeyed(run.schema, 500, moved);
    expect(await verifyAuditChain(ctx.db, run.schema, { key })).toMatchObject({
      ok: false,
      brokenAt: 500,
      reason: 'downgrade',
    });
    // Every row rewritten unkeyed: the chain alone holds, the topic does not agree with row 500.
    await rewriteUnkeyed(run.schema, 1, moved);
    const rewritten = verifyCli(run, true);
    expect(rewritten.status).toBe(1);
    expect(rewritten.stderr).toContain('HUB_AUDIT_CHAIN_BROKEN');
    expect(JSON.parse(rewritten.stdout)).toMatchObject({
      ok: false,
      chain: { ok: true, keyedFrom: null, unkeyedRows: 1000 },
      topic: { altered: { count: 1, first: [valid[499]?.id] }, missing: { count: 0 } },
    });

    // The head row deleted: invisible to the chain, not to the topic.
    await ctx.db.raw('alter table ??.?? disable trigger audit_log_append_only', [run.schema, AUDIT_TABLE]);
    await ctx.db.withSchema(run.schema).from(AUDIT_TABLE).where({ seq: 1000 }).delete();
    await ctx.db.raw('alter table ??.?? enable trigger audit_log_append_only', [run.schema, AUDIT_TABLE]);
    const gap = verifyCli(run, true);
    expect(gap.status).toBe(1);
    expect(JSON.parse(gap.stdout)).toMatchObject({
      ok: false,
      topic: { missing: { count: 1, first: [`0:1000 (${valid[999]?.id})`] } },
    });
  }, 300_000);

  it('given the projector stopped while audit events arrive, then the lag check fails with the lag figure, and passes again once it resumes', async () => {
    const run = await setup();
    await run.projector.start();
    await createAuditSink(ctx.producer, run.topic).recordAll([event('P1')]);
    const monitor = await startAuditLagMonitor({
      kafka: ctx.kafka,
      topic: run.topic,
      groupId: run.groupId,
      limits: { maxLag: 10, stallMs: 60_000 },
      intervalMs: 200,
      logger: createLogger({ name: 'audit-lag', level: 'silent' }),
    });
    stops.push(() => Promise.resolve(monitor.stop()));
    await eventually(
      () => Promise.resolve(monitor.check().ok && monitor.current()?.lag === 0 ? true : undefined),
      {
        what: 'lag 0',
      },
    );

    await run.projector.stop();
    await createAuditSink(ctx.producer, run.topic).recordAll(Array.from({ length: 25 }, () => event('P2')));
    const down = await eventually(() => {
      const v = monitor.check();
      return Promise.resolve(v.ok ? undefined : v);
    });
    expect(down.detail).toBe('audit lag 25 > 10');

    await run.projector.start();
    await eventually(() => Promise.resolve(monitor.check().ok ? true : undefined), { what: 'ready again' });
    expect(monitor.current()?.lag).toBe(0);
  });
});
