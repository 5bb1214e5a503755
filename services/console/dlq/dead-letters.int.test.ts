import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureAuditTopic } from '../../../libs/audit/topic.js';
import { ensureTopics } from '../../../libs/kafka/admin.js';
import { dlqTopicFor } from '../../../libs/kafka/dlq.js';
import { readStates } from '../../../libs/kafka/dlq-ops.js';
import type { EventProducer } from '../../../libs/kafka/producer.js';
import { scanTopic } from '../../../libs/kafka/scan.js';
import type { ConsoleTestApp } from '../../../test/support/console-app.js';
import { patientRegistered } from '../../../test/support/fixtures.js';
import { createTestContext, type TestContext } from '../../../test/support/harness.js';
import type { ConsoleContext } from '../context.js';
import { formPost, pageContext, signedInApp, type SignedIn } from '../../../test/support/console-pages.js';

/**
 * The dead-letters page against Kafka and Postgres: two records parked as
 * the consumer runner parks them, opened (audited first), redriven one by
 * one and discarded in bulk, with the same state table `hub dlq` reads.
 */

const FAMILY = 'Zzdlqconsolefamily';

describe('dead-letters page (int)', () => {
  let ctx: TestContext;
  let t: ConsoleTestApp;
  let app: FastifyInstance;
  let anna: SignedIn;
  let parked: string;
  let auditTopic: string;
  let source: { topic: string; partition: number; offset: string };
  let pageCtx: Partial<ConsoleContext>;

  beforeAll(async () => {
    ctx = await createTestContext('console_dlq');
    parked = dlqTopicFor('projector-portal', ctx.topic);
    auditTopic = ctx.topic('hub.audit.v1');
    ctx.extraTopics.push(parked, auditTopic);
    await ensureTopics(ctx.kafka, [{ name: parked, partitions: 1, retentionMs: -1 }]);
    await ensureAuditTopic(ctx.kafka, auditTopic);
    await ctx.producer.publish([patientRegistered('p-dlq-1', FAMILY, 'DLQ-1')]);
    const [rec] = await scanTopic(ctx.kafka, ctx.topic('clinical.patient.v1'));
    if (!rec) throw new Error('the event was not written');
    source = { topic: rec.topic, partition: rec.partition, offset: rec.offset };
    const parkedCopy = (n: number) => ({
      topic: parked,
      key: rec.key,
      value: rec.value,
      headers: {
        ...rec.headers,
        'hub-dlq-reason-code': 'HUB_PROJECTION_FAILED',
        'hub-dlq-reason': `attempt ${n}`,
        'hub-dlq-consumer': 'hub.projection.portal',
        'hub-dlq-source-topic': rec.topic,
        'hub-dlq-source-partition': String(rec.partition),
        'hub-dlq-source-offset': rec.offset,
        'hub-dlq-failed-at': new Date().toISOString(),
      },
    });
    await ctx.producer.publishRaw([parkedCopy(1), parkedCopy(2)]);
    pageCtx = pageContext(ctx, auditTopic);
    ({ t, app, operator: anna } = await signedInApp(pageCtx));
  }, 120_000);

  afterAll(async () => {
    await t.close();
    await ctx.cleanup();
  });

  async function openCount(): Promise<number> {
    const res = await app.inject({
      method: 'GET',
      url: `/dead-letters?topic=${encodeURIComponent(parked)}`,
      headers: { cookie: anna.cookie },
    });
    expect(res.statusCode).toBe(200);
    expect(res.body).not.toContain(FAMILY);
    const m = /<output data-testid="dlq-open"[^>]*>(\d+)<\/output>/.exec(res.body);
    return Number(m?.[1]);
  }

  async function auditEvents(): Promise<string[]> {
    return (await scanTopic(ctx.kafka, auditTopic)).map((r) => r.value?.toString('utf8') ?? '');
  }

  it('lists the parked records by address with their state, never the content', async () => {
    expect(await openCount()).toBe(2);
    const res = await app.inject({ method: 'GET', url: '/dead-letters', headers: { cookie: anna.cookie } });
    expect(res.body).toContain(`data-dead-letter="${parked}/0/0"`);
    expect(res.body).toContain(`data-dead-letter="${parked}/0/1"`);
    expect(res.body).toContain('HUB_PROJECTION_FAILED');
  });

  it('opens one only after the dlq.show.include-phi audit event is acknowledged', async () => {
    const where = { topic: parked, partition: '0', offset: '0' };
    const res = await formPost(app, anna, '/dead-letters/open', { ...where, reason: 'INC-77 portal check' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain(FAMILY);
    // On the audit topic when the page arrives, with the patient, the subject and the reason.
    const opened = (await auditEvents()).filter((e) => e.includes('dlq.show.include-phi'));
    expect(opened).toHaveLength(1);
    expect(opened[0]).toContain('anna');
    expect(opened[0]).toContain('Patient/p-dlq-1');
    expect(opened[0]).toContain('INC-77 portal check');
    expect(opened[0]).toContain(`${parked}/0/0`);
  });

  it('shows nothing when the audit write fails', async () => {
    const failing: EventProducer = {
      ...ctx.producer,
      publishRaw: (records) =>
        records.some((r) => r.topic === auditTopic)
          ? Promise.reject(new Error('audit topic down'))
          : ctx.producer.publishRaw(records),
    };
    const broken = await signedInApp({ ...pageCtx, producer: failing });
    try {
      const res = await formPost(broken.app, broken.operator, '/dead-letters/open', {
        topic: parked,
        partition: '0',
        offset: '1',
        reason: 'INC-77 portal check',
      });
      expect(res.statusCode).toBeGreaterThanOrEqual(500);
      expect(res.body).not.toContain(FAMILY);
    } finally {
      await broken.t.close();
    }
  });

  it('redrives one (the open count falls, the record is back on its source topic), then discards the rest in bulk', async () => {
    const res = await formPost(app, anna, '/dead-letters/redrive', {
      topic: parked,
      partition: '0',
      offset: '0',
      reason: 'INC-77 fixed in 2.3',
      filterTopic: parked,
    });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe(
      `/dead-letters?topic=${encodeURIComponent(parked)}&done=redriven&n=1&skipped=0`,
    );
    expect(await openCount()).toBe(1);
    const back = (await scanTopic(ctx.kafka, source.topic)).filter((r) => r.headers['hub-redriven-from']);
    expect(back.map((r) => r.headers['hub-redriven-from'])).toEqual([`${parked}/0/0`]);

    const again = await formPost(app, anna, '/dead-letters/redrive', {
      topic: parked,
      partition: '0',
      offset: '0',
      reason: 'INC-77 fixed in 2.3',
    });
    expect(again.statusCode).toBe(409);

    const bulk = await formPost(app, anna, '/dead-letters/bulk', {
      action: 'discard',
      reason: 'INC-78 duplicate, not needed',
      filterTopic: parked,
    });
    expect(bulk.statusCode).toBe(303);
    expect(bulk.headers.location).toContain('done=discarded&n=1&skipped=0');
    expect(await openCount()).toBe(0);

    // The state `hub dlq list` reads: same table, the console's subject as actor.
    const states = await readStates({ kafka: ctx.kafka, db: ctx.db, schema: ctx.schema }, [parked]);
    expect([...states.values()].map((s) => [s.dlq_offset.toString(), s.state, s.actor]).sort()).toEqual([
      ['0', 'redriven', 'anna'],
      ['1', 'discarded', 'anna'],
    ]);
    const actions = (await auditEvents()).filter((e) => /dlq\.(redrive|discard)/.test(e));
    expect(actions).toHaveLength(2);
    // Recorded as the console's, where `hub dlq` records `hub-cli`.
    for (const e of actions) expect(e).toContain('"observer":{"display":"console"}');
  });
});
