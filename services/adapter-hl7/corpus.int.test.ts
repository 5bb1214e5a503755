import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INGEST_TOPICS } from '../../libs/events/contracts.js';
import { EVENT_CONTRACTS } from '../../libs/events/index.js';
import { ackCodesFor, sniffMsh, type AckCode, type Disposition } from '../../libs/hl7/ack.js';
import { mapHl7Message } from '../../libs/hl7/map.js';
import { mllpFrame } from '../../libs/hl7/mllp.js';
import { DEFAULT_IDENTITY_POLICY } from '../../libs/identity/index.js';
import { createMetrics } from '../../libs/telemetry/metrics.js';
import { createTestContext, type TestContext } from '../../test/support/harness.js';
import { repoDir } from '../../test/support/processes.js';
import { buildHl7Adapter, type Hl7Adapter } from './app.js';
import { RawMllpClient, ackField } from '../../test/support/raw-mllp-client.js';
import { readTopic } from '../../libs/hl7/raw-store.js';

const FIXTURES = join(repoDir, 'test', 'fixtures', 'hl7');
const files = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.hl7'))
  .sort();

/**
 * The whole HL7 corpus (test/fixtures/hl7: every message type, charsets,
 * terminators, delimiters, escapes, and the refusals) sent byte for byte over
 * one MLLP connection: each gets the ACK the mapper's outcome calls for, and
 * the topics hold exactly what was promised (events, raw bytes, dead letters).
 */
describe('adapter-hl7: the HL7 corpus over a real socket', () => {
  let ctx: TestContext;
  let adapter: Hl7Adapter;
  let client: RawMllpClient;
  const acks = new Map<string, string[]>();

  /** The ACK codes the policy promises for a file, from the mapper's own outcome. */
  function expectedCodes(bytes: Buffer): AckCode[] {
    const o = mapHl7Message(bytes, {
      recordedAt: 0,
      policy: DEFAULT_IDENTITY_POLICY,
      rawMessageRef: null,
      timeZone: 'UTC',
    });
    const d: Disposition =
      o.kind === 'mapped' ? 'accepted' : o.refusal.ack === 'AE' ? 'content-error' : 'rejected';
    return ackCodesFor(sniffMsh(bytes), d);
  }

  beforeAll(async () => {
    ctx = await createTestContext('hl7corpus');
    adapter = buildHl7Adapter(
      {
        producer: ctx.producer,
        logger: ctx.logger,
        metrics: createMetrics({ defaultMetrics: false }),
        clock: Date.now,
        idGenerator: (() => {
          let n = 0;
          return () => `C${++n}`;
        })(),
        policy: DEFAULT_IDENTITY_POLICY,
        // Every sender in UTC, as the mapper's own outcome below is computed.
        timeZoneFor: () => 'UTC',
        mapper: mapHl7Message,
      },
      {
        host: '127.0.0.1',
        port: 0,
        maxMessageBytes: 256 * 1024,
        frameTimeoutMs: 5_000,
        rawTopic: ctx.topic(INGEST_TOPICS.hl7Raw),
        dlqTopic: ctx.topic(INGEST_TOPICS.hl7Dlq),
      },
    );
    client = await RawMllpClient.connect((await adapter.start()).port);
    for (const f of files) {
      const bytes = readFileSync(join(FIXTURES, f));
      await client.write(mllpFrame(bytes));
      const got: string[] = [];
      for (let i = 0; i < expectedCodes(bytes).length; i++) got.push(await client.nextAck());
      acks.set(f, got);
    }
  });

  afterAll(async () => {
    client?.close();
    await adapter?.stop();
    await ctx?.cleanup();
  });

  it('covers every message type the issue lists', () => {
    const types = new Set(files.map((f) => sniffMsh(readFileSync(join(FIXTURES, f)))?.triggerEvent));
    for (const t of [
      'A01',
      'A02',
      'A03',
      'A04',
      'A05',
      'A08',
      'A11',
      'A12',
      'A13',
      'A28',
      'A31',
      'A40',
      'O01',
      'O21',
      'R01',
    ]) {
      expect(types.has(t), t).toBe(true);
    }
  });

  it.each(files)('%s gets the ACK(s) its mapping outcome calls for', (f) => {
    const bytes = readFileSync(join(FIXTURES, f));
    const outcome = mapHl7Message(bytes, {
      recordedAt: 0,
      policy: DEFAULT_IDENTITY_POLICY,
      rawMessageRef: null,
      timeZone: 'UTC',
    });
    const msh = sniffMsh(bytes);
    const got = acks.get(f)!;
    expect(got.map((a) => ackField(a, 'MSA', 1))).toEqual(expectedCodes(bytes));
    expect(got.length).toBeGreaterThan(0);
    for (const ack of got) {
      expect(ackField(ack, 'MSA', 2)).toBe(msh?.controlId ?? '');
      const code = ackField(ack, 'MSA', 1);
      if (code === 'AA' || code === 'CA') {
        expect(ack).not.toContain('\rERR');
        continue;
      }
      expect(f.startsWith('bad-')).toBe(true);
      expect(outcome.kind).toBe('refused');
      if (outcome.kind !== 'refused') continue;
      expect(ackField(ack, 'ERR', 3).split(ack.charAt(4))[0]).toBe(outcome.refusal.hl7ErrorCode);
      expect(ackField(ack, 'ERR', 4)).toBe('E');
    }
    expect(outcome.kind === 'refused').toBe(f.startsWith('bad-'));
  });

  it('holds every mapped event, every accepted message byte for byte, and every refused one with its reason', async () => {
    const onTopics = new Map<string, string>();
    const topics = [...new Set(Object.values(EVENT_CONTRACTS).map((c) => c.topic))];
    for (const t of topics) {
      for (const r of await readTopic(ctx.kafka, ctx.topic(t))) {
        const e = await ctx.codec.decode(r.value);
        onTopics.set(e.data.meta.eventId, t);
      }
    }
    const raw = await readTopic(ctx.kafka, ctx.topic(INGEST_TOPICS.hl7Raw));
    const dlq = await readTopic(ctx.kafka, ctx.topic(INGEST_TOPICS.hl7Dlq));
    for (const f of files) {
      const bytes = readFileSync(join(FIXTURES, f));
      const outcome = mapHl7Message(bytes, {
        recordedAt: 0,
        policy: DEFAULT_IDENTITY_POLICY,
        rawMessageRef: null,
        timeZone: 'UTC',
      });
      if (outcome.kind === 'mapped') {
        for (const e of outcome.events)
          expect(onTopics.get(e.data.meta.eventId), f).toBe(EVENT_CONTRACTS[e.type].topic);
        expect(
          raw.filter((r) => r.value.equals(bytes)),
          f,
        ).toHaveLength(1);
      } else {
        const kept = dlq.filter((r) => r.value.equals(bytes));
        expect(kept, f).toHaveLength(1);
        expect(kept[0]!.headers['hub-reason-code']).toBe(
          `${outcome.refusal.error.code}:${outcome.refusal.hl7ErrorCode}`,
        );
      }
    }
  });
});
