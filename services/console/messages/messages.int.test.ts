import type { FastifyInstance } from 'fastify';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureAuditTopic } from '../../../libs/audit/topic.js';
import { migrateSchema } from '../../../libs/db/index.js';
import type { ClinicalEvent } from '../../../libs/events/index.js';
import { projectionBaseMigrations } from '../../../libs/projections/runner.js';
import { dropReadModel, pointStableAt } from '../../../libs/projections/versions.js';
import { scanTopic } from '../../../libs/kafka/scan.js';
import type { ConsoleTestApp } from '../../../test/support/console-app.js';
import { createTestContext, type TestContext } from '../../../test/support/harness.js';
import { CANARY_FAMILY, hl7Events, oruR01 } from '../../../test/support/hl7-fixtures.js';
import { formPost, pageContext, signedInApp, type SignedIn } from '../../../test/support/console-pages.js';

/**
 * Message search against Kafka and Postgres: a raw record and its events
 * written as the HL7 adapter writes them, a refused message kept as a dead
 * letter, and two read models (one that applied the events, one not yet).
 */

function adapterHeaders(controlId: string, rawId: string, receivedAt: number): Record<string, string> {
  return {
    'hl7-raw-id': rawId,
    'hl7-received-at': new Date(receivedAt).toISOString(),
    'hl7-sender': 'LAB|GENHOSP',
    'hl7-control-id': controlId,
    'hl7-message-type': 'ORU^R01',
    'hl7-charset': '',
  };
}

describe('message search page (int)', () => {
  let ctx: TestContext;
  let t: ConsoleTestApp;
  let app: FastifyInstance;
  let anna: SignedIn;
  let auditTopic: string;
  let controlId: string;
  let refusedId: string;
  let events: ClinicalEvent[];
  let stables: { applied: string; behind: string; elsewhere: string };

  /** A registered read model that has read `topic` up to offset 0 of a partition no event is on. */
  async function readModel(stable: string, topic: string): Promise<string> {
    const schema = `${stable}_v1`;
    await migrateSchema(ctx.db, schema, projectionBaseMigrations);
    await ctx.db.transaction((trx) => pointStableAt(trx, stable, 'console-test', schema, 1));
    await ctx.db.withSchema(schema).into('checkpoints').insert({ topic, partition: 99, last_offset: 0 });
    return schema;
  }

  beforeAll(async () => {
    ctx = await createTestContext('console_msg');
    auditTopic = ctx.topic('hub.audit.v1');
    ctx.extraTopics.push(auditTopic);
    await ensureAuditTopic(ctx.kafka, auditTopic);
    controlId = `LAB-${ctx.id}`;
    refusedId = `LAB-R-${ctx.id}`;
    const text = oruR01(controlId);
    events = hl7Events(text);
    const rawId = randomUUID();
    const at = Date.now();
    await ctx.producer.publishRaw([
      {
        topic: ctx.topic('hl7.raw.v1'),
        key: events[0]?.data.patientId ?? null,
        value: Buffer.from(text),
        headers: adapterHeaders(controlId, rawId, at),
      },
      {
        topic: ctx.topic('hl7.raw.v1'),
        key: 'other',
        value: Buffer.from(oruR01(`OTHER-${ctx.id}`)),
        headers: adapterHeaders(`OTHER-${ctx.id}`, randomUUID(), at),
      },
      {
        topic: ctx.topic('hl7.dlq.v1'),
        key: 'LAB|GENHOSP|x',
        value: Buffer.from(oruR01(refusedId)),
        headers: {
          ...adapterHeaders(refusedId, randomUUID(), at),
          'hub-reason-code': 'HUB_INPUT_INVALID:101',
          'hl7-ack-code': 'AE',
          'hl7-error-code': '101',
          'hl7-error-location': 'OBR-4',
          'hub-error-message': 'required field missing',
        },
      },
    ]);
    await ctx.producer.publish(events, { 'hl7-raw-id': rawId });
    stables = { applied: `${ctx.schema}_rma`, behind: `${ctx.schema}_rmb`, elsewhere: `${ctx.schema}_rmc` };
    const resultTopic = ctx.topic('clinical.result.v1');
    const appliedSchema = await readModel(stables.applied, resultTopic);
    await readModel(stables.behind, resultTopic);
    // Another deployment's (its own topic suffix): not this hub's read model, not listed.
    await readModel(stables.elsewhere, 'clinical.result.v1.another');
    await ctx.db
      .withSchema(appliedSchema)
      .into('applied_events')
      .insert(events.map((e, i) => ({ event_id: e.data.meta.eventId, topic: 'x', partition: 0, offset: i })));
    ({ t, app, operator: anna } = await signedInApp(pageContext(ctx, auditTopic)));
  }, 120_000);

  afterAll(async () => {
    await t.close();
    for (const s of Object.values(stables)) await dropReadModel(ctx.db, s).catch(() => undefined);
    await ctx.cleanup();
  });

  const rowsOf = (body: string) => [...body.matchAll(/<tr data-control-id="([^"]*)"/g)].map((m) => m[1]);

  it('finds a raw record by control id (htmx fragment), and accepted and refused ones by sender and time', async () => {
    const byId = await app.inject({
      method: 'POST',
      url: '/messages/search',
      headers: { cookie: anna.cookie, 'hx-request': 'true', 'x-csrf-token': anna.csrf },
      payload: { controlId },
    });
    expect(byId.statusCode).toBe(200);
    expect(rowsOf(byId.body)).toEqual([controlId]);
    expect(byId.body).not.toContain(CANARY_FAMILY);
    expect(byId.body).not.toContain('<html');

    const from = new Date(Date.now() - 3600_000).toISOString().slice(0, 19);
    const to = new Date(Date.now() + 60_000).toISOString().slice(0, 19);
    const bySender = await formPost(app, anna, '/messages/search', { sender: 'LAB|GENHOSP', from, to });
    expect(rowsOf(bySender.body).sort()).toEqual([controlId, refusedId, `OTHER-${ctx.id}`].sort());
    expect(bySender.body).toContain('refused (AE)');

    const before = await formPost(app, anna, '/messages/search', {
      controlId,
      from: '2020-01-01T00:00',
      to: '2020-01-02T00:00',
    });
    expect(rowsOf(before.body)).toEqual([]);
  });

  async function open(id: string) {
    const found = await formPost(app, anna, '/messages/search', { controlId: id });
    const m = new RegExp(`data-control-id="${id}" data-message="([^"]+)/(\\d+)/(\\d+)"`).exec(found.body);
    if (!m) throw new Error(`no row for ${id}`);
    return formPost(app, anna, '/messages/open', {
      topic: m[1] ?? '',
      partition: m[2] ?? '',
      offset: m[3] ?? '',
      reason: 'lab feed check, ticket 12',
    });
  }

  it('opens an accepted one, audited with its patient first: raw, rebuilt ACK, events, where applied', async () => {
    const res = await open(controlId);
    expect(res.statusCode).toBe(200);
    const audit = (await scanTopic(ctx.kafka, auditTopic)).map((r) => r.value?.toString('utf8') ?? '');
    const patient = events[0]?.data.patientId ?? '';
    expect(audit.some((e) => e.includes('POST /messages/open') && e.includes(`Patient/${patient}`))).toBe(
      true,
    );

    const body = res.body;
    expect(body).toMatch(/<pre data-testid="raw">MSH[^<]*ORU\^R01/);
    expect(body).toContain(CANARY_FAMILY);
    expect(body).toContain(`MSA|AA|${controlId}`);
    expect(body).toContain('does not keep the ACK bytes');
    for (const e of events) expect(body).toContain(`data-event-id="${e.data.meta.eventId}"`);
    const rowOf = (stable: string): string => {
      const from = body.indexOf(`data-read-model="${stable}"`);
      return from < 0 ? '' : body.slice(from, body.indexOf('</tr>', from));
    };
    expect(rowOf(stables.applied)).toContain('<span class="state-ok">applied</span>');
    expect(rowOf(stables.behind)).toContain('<span class="state-warn">not yet</span>');
    expect(rowOf(stables.elsewhere)).toBe('');
  });

  it("opens a refused one: the ACK from its dead letter's headers, no events", async () => {
    const res = await open(refusedId);
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain(`MSA|AE|${refusedId}`);
    expect(res.body).toContain('OBR-4');
    expect(res.body).toContain('Events produced (0)');
  });
});
