import { Hl7Message } from '@medplum/core';
import { Hl7Client } from '@medplum/hl7';
import fc from 'fast-check';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INGEST_TOPICS } from '../../libs/events/contracts.js';
import type { ClinicalEvent } from '../../libs/events/index.js';
import { mllpFrame, VT } from '../../libs/hl7/mllp.js';
import { mapHl7Message } from '../../libs/hl7/map.js';
import { DEFAULT_IDENTITY_POLICY } from '../../libs/identity/index.js';
import { createLogger } from '../../libs/telemetry/logger.js';
import { createMetrics, type HubMetrics } from '../../libs/telemetry/metrics.js';
import { createTestContext, type TestContext } from '../../test/support/harness.js';
import { runHub } from '../../test/support/processes.js';
import { buildHl7Adapter, type Hl7Adapter } from './app.js';
import {
  CANARY_FAMILY,
  CANARY_MRN,
  adtA01,
  adtMissingPid3,
  ormO01,
  oruR01,
  unsupportedType,
} from '../../test/support/hl7-fixtures.js';
import { RawMllpClient, ackField } from '../../test/support/raw-mllp-client.js';
import { readTopic } from '../../libs/hl7/raw-store.js';

const FIXED_NOW = Date.UTC(2026, 2, 3, 4, 5, 6);

// For the memory regression test: gc() must be callable to measure what is kept.
v8.setFlagsFromString('--expose-gc');

/**
 * The adapter over a real socket against the real Kafka and registry: ACK
 * codes as a client that is not ours (@medplum/hl7's Hl7Client) sees them,
 * the events and raw messages read back from the topics, and MLLP framing
 * edge cases over a bare socket.
 */
describe('adapter-hl7 over MLLP', () => {
  let ctx: TestContext;
  let adapter: Hl7Adapter;
  let metrics: HubMetrics;
  let port: number;
  let rawTopic: string;
  let dlqTopic: string;
  const logLines: string[] = [];
  let ackSeq = 0;
  let fuzzRun = 0;

  beforeAll(async () => {
    ctx = await createTestContext('hl7edge');
    rawTopic = ctx.topic(INGEST_TOPICS.hl7Raw);
    dlqTopic = ctx.topic(INGEST_TOPICS.hl7Dlq);
    metrics = createMetrics({ defaultMetrics: false });
    const logger = createLogger({
      name: 'adapter-hl7-test',
      level: 'debug',
      destination: new Writable({
        write(chunk: Buffer, _enc, cb) {
          logLines.push(chunk.toString());
          cb();
        },
      }),
    });
    adapter = buildHl7Adapter(
      {
        producer: ctx.producer,
        logger,
        metrics,
        clock: () => FIXED_NOW,
        idGenerator: () => `ACK${++ackSeq}`,
        policy: DEFAULT_IDENTITY_POLICY,
        // Every sender's times without an offset are read as UTC (the site configuration's job in main.ts).
        timeZoneFor: () => 'UTC',
        mapper: mapHl7Message,
      },
      {
        host: '127.0.0.1',
        port: 0,
        maxMessageBytes: 16 * 1024,
        frameTimeoutMs: 400,
        rawTopic,
        dlqTopic,
      },
    );
    port = (await adapter.start()).port;
  });

  afterAll(async () => {
    await adapter?.stop();
    await ctx?.cleanup();
  });

  async function viaMedplum(text: string, opts: { application?: boolean } = {}): Promise<Hl7Message> {
    const client = new Hl7Client({ host: '127.0.0.1', port });
    try {
      return await client.sendAndWait(Hl7Message.parse(text), {
        timeoutMs: 30_000,
        ...(opts.application === false ? { returnAck: 'first' as const } : {}),
      });
    } finally {
      await client.close();
    }
  }

  const field = (m: Hl7Message, seg: string, f: number) => m.getSegment(seg)?.getField(f)?.toString() ?? '';

  async function eventsOf(controlId: string): Promise<{ topic: string; event: ClinicalEvent }[]> {
    const out: { topic: string; event: ClinicalEvent }[] = [];
    for (const topic of [
      'clinical.patient.v1',
      'clinical.encounter.v1',
      'clinical.order.v1',
      'clinical.result.v1',
    ]) {
      for (const r of await readTopic(ctx.kafka, ctx.topic(topic))) {
        const event = await ctx.codec.decode(r.value);
        if (event.data.meta.source.messageId === controlId) out.push({ topic, event });
      }
    }
    return out;
  }

  it('answers AA to a good ADT^A01 sent by Hl7Client, after its events and the raw message are in Kafka', async () => {
    const text = adtA01('GOOD-1');
    const ack = await viaMedplum(text);
    expect(field(ack, 'MSA', 1)).toBe('AA');
    expect(field(ack, 'MSA', 2)).toBe('GOOD-1');
    expect(ack.toString().split('\r')[0]).toBe(
      'MSH|^~\\&|HUB|HUBFAC|EHR^1.2.840.1^ISO|GENHOSP|20260303040506+0000||ACK^A01^ACK|' +
        `${field(ack, 'MSH', 10)}|P|2.5.1`,
    );
    expect(field(ack, 'MSH', 10)).toMatch(/^ACK\d+$/);

    const events = await eventsOf('GOOD-1');
    expect(events.map((e) => e.event.type).sort()).toEqual(['EncounterStarted', 'PatientRegistered']);
    const raw = (await readTopic(ctx.kafka, rawTopic)).filter(
      (r) => r.headers['hl7-control-id'] === 'GOOD-1',
    );
    expect(raw).toHaveLength(1);
    const r = raw[0]!;
    expect(r.value.toString('utf8')).toBe(text);
    expect(r.headers).toMatchObject({
      'hl7-sender': 'EHR^1.2.840.1^ISO|GENHOSP',
      'hl7-message-type': 'ADT^A01',
      'hl7-received-at': new Date(FIXED_NOW).toISOString(),
      'hl7-charset': '',
    });
    // Keyed by the patient, like the events, so one patient's raw messages stay in order.
    expect(r.key).toBe(events[0]!.event.data.patientId);
    for (const e of events) {
      expect(e.event.data.meta.rawMessageRef).toBe(`${rawTopic}/${r.headers['hl7-raw-id']}`);
    }
  });

  it('answers AA to ORU^R01 and ORM^O01 too', async () => {
    expect(field(await viaMedplum(oruR01('ORU-1')), 'MSA', 1)).toBe('AA');
    expect(field(await viaMedplum(ormO01('ORM-1')), 'MSA', 1)).toBe('AA');
    const types = [...(await eventsOf('ORU-1')), ...(await eventsOf('ORM-1'))].map((e) => e.event.type);
    expect(types).toEqual(expect.arrayContaining(['ResultReported', 'OrderPlaced']));
  });

  it('answers AE with ERR naming PID-3 for a content error, and dead-letters the message with its reason', async () => {
    const ack = await viaMedplum(adtMissingPid3('BAD-1'));
    expect(field(ack, 'MSA', 1)).toBe('AE');
    expect(field(ack, 'MSA', 2)).toBe('BAD-1');
    expect(ack.getSegment('ERR')?.toString()).toBe('ERR||PID^1^3|101^Required field missing^HL70357|E');
    expect(await eventsOf('BAD-1')).toEqual([]);
    const dlq = (await readTopic(ctx.kafka, dlqTopic)).filter((r) => r.headers['hl7-control-id'] === 'BAD-1');
    expect(dlq).toHaveLength(1);
    expect(dlq[0]!.headers).toMatchObject({
      'hub-reason-code': 'HUB_INPUT_INVALID:101',
      'hl7-ack-code': 'AE',
      'hl7-error-code': '101',
      'hl7-error-location': 'PID-3',
    });
    expect(dlq[0]!.value.toString()).toBe(adtMissingPid3('BAD-1'));
  });

  it('answers AR for an unsupported message type (Hl7Client) and for bytes without MSH (raw socket)', async () => {
    const ack = await viaMedplum(unsupportedType('UNSUP-1'));
    expect(field(ack, 'MSA', 1)).toBe('AR');
    expect(ack.getSegment('ERR')?.toString()).toBe('ERR||MSH^1^9^1^1|200^Unsupported message type^HL70357|E');

    const c = await RawMllpClient.connect(port);
    try {
      await c.send('this is not HL7 at all');
      const ar = await c.nextAck();
      expect(ackField(ar, 'MSA', 1)).toBe('AR');
      expect(ackField(ar, 'MSA', 2)).toBe('');
      expect(ackField(ar, 'ERR', 3)).toBe('100^Segment sequence error^HL70357');
    } finally {
      c.close();
    }
  });

  it('answers AR naming MSH-10 when it is missing, and MSH-12 for an unsupported version', async () => {
    const c = await RawMllpClient.connect(port);
    try {
      await c.send(adtA01('X').replace('|X|P|2.5.1', '||P|2.5.1'));
      const noId = await c.nextAck();
      expect(ackField(noId, 'MSA', 1)).toBe('AR');
      expect(ackField(noId, 'MSA', 2)).toBe('');
      expect(ackField(noId, 'ERR', 2)).toBe('MSH^1^10');
      expect(ackField(noId, 'ERR', 3)).toMatch(/^101\^/);
      await c.send(adtA01('OLDV-1').replace('|OLDV-1|P|2.5.1', '|OLDV-1|P|2.1'));
      const oldV = await c.nextAck();
      expect(ackField(oldV, 'MSA', 1)).toBe('AR');
      expect(ackField(oldV, 'MSA', 2)).toBe('OLDV-1');
      expect(ackField(oldV, 'ERR', 3)).toMatch(/^203\^/);
    } finally {
      c.close();
    }
  });

  it('honours MSH-18 ISO-8859-1: keeps the bytes as received and decodes the text', async () => {
    const text = adtA01('LATIN-1', 'MRN-LATIN')
      .replace('|P|2.5.1', '|P|2.5.1||||||8859/1')
      .replace(`${CANARY_FAMILY}^Jane`, 'Müller^Zoë');
    const bytes = Buffer.from(text, 'latin1');
    const c = await RawMllpClient.connect(port);
    try {
      await c.write(mllpFrame(bytes));
      expect(ackField(await c.nextAck(), 'MSA', 1)).toBe('AA');
    } finally {
      c.close();
    }
    const raw = (await readTopic(ctx.kafka, rawTopic)).find((r) => r.headers['hl7-control-id'] === 'LATIN-1');
    expect(raw?.value.equals(bytes)).toBe(true);
    expect(raw?.headers['hl7-charset']).toBe('8859/1');
    const reg = (await eventsOf('LATIN-1')).find((e) => e.event.type === 'PatientRegistered');
    expect(reg?.event.type === 'PatientRegistered' && reg.event.data.demographics.names[0]).toMatchObject({
      family: 'Müller',
      given: ['Zoë', 'Q'],
    });
  });

  it('answers AA again to a resend (same MSH-3/4 + MSH-10) and writes nothing twice', async () => {
    const text = adtA01('DUP-1');
    expect(field(await viaMedplum(text), 'MSA', 1)).toBe('AA');
    expect(field(await viaMedplum(text), 'MSA', 1)).toBe('AA');
    // Two resends at once on two connections: one write, both AA.
    const both = await Promise.all([viaMedplum(adtA01('DUP-2')), viaMedplum(adtA01('DUP-2'))]);
    expect(both.map((a) => field(a, 'MSA', 1))).toEqual(['AA', 'AA']);
    for (const id of ['DUP-1', 'DUP-2']) {
      const events = await eventsOf(id);
      expect(events).toHaveLength(2);
      expect(new Set(events.map((e) => e.event.data.meta.eventId)).size).toBe(2);
    }
    const raw = (await readTopic(ctx.kafka, rawTopic)).filter((r) =>
      ['DUP-1', 'DUP-2'].includes(r.headers['hl7-control-id'] ?? ''),
    );
    expect(raw).toHaveLength(2);
  });

  it('in enhanced mode (MSH-15/16 = AL) sends CA then AA; Hl7Client waiting for the application ACK gets AA', async () => {
    const c = await RawMllpClient.connect(port);
    try {
      await c.send(adtA01('ENH-1', 'MRN-ENH-1', { msh15: 'AL', msh16: 'AL' }));
      expect(ackField(await c.nextAck(), 'MSA', 1)).toBe('CA');
      expect(ackField(await c.nextAck(), 'MSA', 1)).toBe('AA');
    } finally {
      c.close();
    }
    const app = await viaMedplum(adtA01('ENH-2', 'MRN-ENH-2', { msh15: 'AL', msh16: 'AL' }));
    expect(field(app, 'MSA', 1)).toBe('AA');
  });

  describe('MLLP framing over a bare socket', () => {
    let c: RawMllpClient;
    beforeAll(async () => {
      c = await RawMllpClient.connect(port);
    });
    afterAll(() => c.close());

    it('reassembles a frame split across writes', async () => {
      const f = mllpFrame(adtA01('SPLIT-1', 'MRN-SPLIT'));
      await c.write(f.subarray(0, 1));
      await c.write(f.subarray(1, 40));
      await c.write(f.subarray(40, f.length - 1));
      await c.write(f.subarray(f.length - 1));
      expect(ackField(await c.nextAck(), 'MSA', 2)).toBe('SPLIT-1');
    });

    it('answers two frames in one write, in order', async () => {
      await c.write(
        Buffer.concat([mllpFrame(adtA01('TWO-1', 'MRN-TWO')), mllpFrame(adtA01('TWO-2', 'MRN-TWO'))]),
      );
      expect(ackField(await c.nextAck(), 'MSA', 2)).toBe('TWO-1');
      expect(ackField(await c.nextAck(), 'MSA', 2)).toBe('TWO-2');
    });

    it('skips blank bytes (CR/LF) before the start block', async () => {
      // Any other byte outside a frame closes the connection (mllp-security.int.test.ts).
      await c.write(Buffer.concat([Buffer.from('\r\n'), mllpFrame(adtA01('JUNK-1', 'MRN-JUNK'))]));
      const ack = await c.nextAck();
      expect(ackField(ack, 'MSA', 1)).toBe('AA');
      expect(ackField(ack, 'MSA', 2)).toBe('JUNK-1');
    });

    it('refuses a frame without end block after the frame timeout (AR), and the connection survives', async () => {
      await c.write(Buffer.concat([Buffer.from([VT]), Buffer.from(adtA01('NOEND-1', 'MRN-NOEND'))]));
      const ar = await c.nextAck();
      expect(ackField(ar, 'MSA', 1)).toBe('AR');
      expect(ackField(ar, 'MSA', 2)).toBe('NOEND-1');
      expect(ackField(ar, 'ERR', 3)).toBe('207^Incomplete MLLP frame^HL70357');
      await c.send(adtA01('AFTER-NOEND', 'MRN-NOEND'));
      expect(ackField(await c.nextAck(), 'MSA', 1)).toBe('AA');
    });

    it('refuses a frame cut short by a new start block (AR) and still takes the next frame', async () => {
      const partial = adtA01('CUT-1', 'MRN-CUT').slice(0, 120);
      await c.write(
        Buffer.concat([Buffer.from([VT]), Buffer.from(partial), mllpFrame(adtA01('CUT-2', 'MRN-CUT'))]),
      );
      const ar = await c.nextAck();
      expect(ackField(ar, 'MSA', 1)).toBe('AR');
      expect(ackField(ar, 'MSA', 2)).toBe('CUT-1');
      const aa = await c.nextAck();
      expect(ackField(aa, 'MSA', 1)).toBe('AA');
      expect(ackField(aa, 'MSA', 2)).toBe('CUT-2');
    });

    it('refuses an oversize message (AR) without buffering it, and the connection survives', async () => {
      const big = `${adtA01('BIG-1', 'MRN-BIG')}\rNTE|1||${'x'.repeat(40_000)}`;
      await c.send(big);
      const ar = await c.nextAck();
      expect(ackField(ar, 'MSA', 1)).toBe('AR');
      expect(ackField(ar, 'MSA', 2)).toBe('BIG-1');
      expect(ackField(ar, 'ERR', 3)).toBe(`207^Message exceeds ${16 * 1024} bytes^HL70357`);
      await c.send(adtA01('AFTER-BIG', 'MRN-BIG'));
      expect(ackField(await c.nextAck(), 'MSA', 1)).toBe('AA');
      const dlq = (await readTopic(ctx.kafka, dlqTopic)).filter(
        (r) => r.headers['hl7-control-id'] === 'BIG-1',
      );
      expect(dlq[0]?.headers).toMatchObject({ 'hub-reason-code': 'frame_oversize', 'hl7-truncated': 'true' });
    });
  });

  it('keeps each connection in order while many connections run at once', async () => {
    const conns = await Promise.all(Array.from({ length: 12 }, () => RawMllpClient.connect(port)));
    try {
      const perConn = 6;
      await Promise.all(
        conns.map(async (c, i) => {
          // Pipelined: all frames written before any ACK is read.
          await c.write(
            Buffer.concat(
              Array.from({ length: perConn }, (_, j) => mllpFrame(adtA01(`PAR-${i}-${j}`, `MRN-PAR-${i}`))),
            ),
          );
          for (let j = 0; j < perConn; j++) {
            const ack = await c.nextAck();
            expect(ackField(ack, 'MSA', 1)).toBe('AA');
            expect(ackField(ack, 'MSA', 2)).toBe(`PAR-${i}-${j}`);
          }
        }),
      );
    } finally {
      for (const c of conns) c.close();
    }
    // One patient per connection: its raw messages are in send order in one partition.
    const raw = (await readTopic(ctx.kafka, rawTopic)).filter((r) =>
      (r.headers['hl7-control-id'] ?? '').startsWith('PAR-3-'),
    );
    expect(raw.map((r) => r.headers['hl7-control-id'])).toEqual(
      Array.from({ length: 6 }, (_, j) => `PAR-3-${j}`),
    );
  });

  it('regression: remembered resend keys do not keep the whole messages alive', async () => {
    // Keys built from MSH fields were V8 slices of the message text, so the
    // resend memory (100k entries) held every accepted message's body.
    const gc = vm.runInNewContext('gc') as () => void;
    const heapAfterGc = () => {
      gc();
      gc();
      return process.memoryUsage().heapUsed;
    };
    const perConn = 100;
    const padding = 12_000;
    const conns = await Promise.all(Array.from({ length: 4 }, () => RawMllpClient.connect(port)));
    try {
      // One round first, so lazily created state (metric children, pools) is not counted.
      const round = (tag: string) =>
        Promise.all(
          conns.map(async (c, i) => {
            for (let j = 0; j < perConn; j++) {
              await c.send(`${adtA01(`MEM-${tag}-${i}-${j}`, `MRN-MEM-${i}`)}\rZPD|${'x'.repeat(padding)}`);
              expect(ackField(await c.nextAck(), 'MSA', 1)).toBe('AA');
            }
          }),
        );
      await round('warm');
      const before = heapAfterGc();
      await round('measured');
      const grown = heapAfterGc() - before;
      // 400 messages of 12 kB: about 4.8 MB if their texts were kept.
      expect(grown).toBeLessThan((4 * perConn * padding) / 5);
    } finally {
      for (const c of conns) c.close();
    }
  });

  it('counts messages by source, type and ACK code (no PHI in labels) and serves /metrics', async () => {
    const res = await adapter.http.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toMatch(/hub_hl7_messages_acked_total\{source="EHR",type="ADT_A01",code="AA"\} \d+/);
    expect(res.body).toMatch(/hub_hl7_rejected_total\{reason="frame_oversize"\} 1/);
    expect(res.body).toMatch(/hub_hl7_rejected_total\{reason="HUB_INPUT_INVALID:101"\} \d+/);
    expect(res.body).not.toContain(CANARY_MRN);
    expect((await adapter.http.inject({ method: 'GET', url: '/ready' })).statusCode).toBe(200);
  });

  it('re-maps raw messages by control id with `hub hl7 remap`, producing the same event ids', async () => {
    const before = await eventsOf('GOOD-1');
    const r = runHub(['hl7', 'remap', '--control-ids', 'GOOD-1,ORU-1'], {
      KAFKA_BROKERS: ctx.ep.kafkaBrokers.join(','),
      SCHEMA_REGISTRY_URL: ctx.ep.registryUrl,
      HUB_TOPIC_SUFFIX: ctx.id,
      // As the adapter above: every sender in UTC (remap zones times as the adapter does).
      HUB_SITE_CONFIG: 'test/fixtures/site/utc.yaml',
    });
    expect(r.stderr).toContain('2 message(s)');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/GOOD-1\s+ADT\^A01\s+mapped\s+events=2/);
    const after = await eventsOf('GOOD-1');
    expect(after).toHaveLength(4);
    expect(new Set(after.map((e) => e.event.data.meta.eventId))).toEqual(
      new Set(before.map((e) => e.event.data.meta.eventId)),
    );

    // By time range, as a dry run (nothing published), machine-readable.
    const env = {
      KAFKA_BROKERS: ctx.ep.kafkaBrokers.join(','),
      SCHEMA_REGISTRY_URL: ctx.ep.registryUrl,
      HUB_TOPIC_SUFFIX: ctx.id,
      HUB_SITE_CONFIG: 'test/fixtures/site/utc.yaml',
    };
    const range = runHub(
      [
        '--json',
        'hl7',
        'remap',
        '--dry-run',
        '--since',
        new Date(FIXED_NOW).toISOString(),
        '--until',
        new Date(FIXED_NOW + 1).toISOString(),
      ],
      env,
    );
    expect(range.status, range.stderr).toBe(0);
    const items = JSON.parse(range.stdout) as { controlId: string; outcome: string; events: number }[];
    expect(items.map((i) => i.controlId)).toEqual(
      expect.arrayContaining(['GOOD-1', 'ORU-1', 'ORM-1', 'DUP-1']),
    );
    expect(items.every((i) => i.outcome === 'mapped')).toBe(true);
    expect(await eventsOf('GOOD-1')).toHaveLength(4);

    // No selection is a usage error (exit 2), not a full replay by accident.
    const none = runHub(['hl7', 'remap'], env);
    expect(none.status).toBe(2);
    expect(none.stderr).toContain('HUB_INPUT_INVALID');
  });

  it('survives arbitrary frames (fuzz): every one is answered or ignored, and the next good message gets AA', async () => {
    const printable = fc.string({
      unit: fc.constantFrom(...'|^~\\&ABCMSHPIDOBX0123456789\r\n .-'.split('')),
      maxLength: 300,
    });
    const frameBody = fc.oneof(
      fc.uint8Array({ maxLength: 400 }).map((a) => Buffer.from(a.filter((b) => b !== VT && b !== 0x1c))),
      printable.map((t) => Buffer.from(`MSH|^~\\&|${t}`)),
      printable.map((t) => Buffer.from(`MSH${t}`)),
    );
    const c = await RawMllpClient.connect(port);
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(frameBody, { minLength: 1, maxLength: 5 }), async (bodies) => {
          const probe = `FUZZ-${++fuzzRun}`;
          await c.write(
            Buffer.concat([...bodies.map((b) => mllpFrame(b)), mllpFrame(adtA01(probe, 'MRN-FUZZ'))]),
          );
          for (;;) {
            const ack = await c.nextAck(30_000);
            if (ackField(ack, 'MSA', 2) === probe) {
              expect(ackField(ack, 'MSA', 1)).toBe('AA');
              return;
            }
            expect(['AA', 'AE', 'AR', 'CA', 'CE', 'CR']).toContain(ackField(ack, 'MSA', 1));
          }
        }),
        { numRuns: 40 },
      );
    } finally {
      c.close();
    }
  });

  it('speaks MLLP over TLS when given a certificate, and refuses a client that does not trust it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7tls-'));
    try {
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-days',
          '1',
          '-subj',
          '/CN=localhost',
          '-addext',
          'subjectAltName=IP:127.0.0.1,DNS:localhost',
          '-keyout',
          join(dir, 'key.pem'),
          '-out',
          join(dir, 'cert.pem'),
        ],
        { stdio: 'ignore' },
      );
      const cert = readFileSync(join(dir, 'cert.pem'));
      const tlsAdapter = buildHl7Adapter(
        {
          producer: ctx.producer,
          logger: ctx.logger,
          metrics: createMetrics({ defaultMetrics: false }),
          clock: () => FIXED_NOW,
          idGenerator: () => 'TLSACK',
          policy: DEFAULT_IDENTITY_POLICY,
          // Every sender's times without an offset are read as UTC (the site configuration's job in main.ts).
          timeZoneFor: () => 'UTC',
          mapper: mapHl7Message,
        },
        {
          host: '127.0.0.1',
          port: 0,
          tls: { cert, key: readFileSync(join(dir, 'key.pem')) },
          maxMessageBytes: 16 * 1024,
          frameTimeoutMs: 400,
          rawTopic,
          dlqTopic,
        },
      );
      const tlsPort = (await tlsAdapter.start()).port;
      try {
        const c = await RawMllpClient.connectTls(tlsPort, { ca: cert });
        try {
          await c.send(adtA01('TLS-1', 'MRN-TLS'));
          const ack = await c.nextAck();
          expect(ackField(ack, 'MSA', 1)).toBe('AA');
          expect(ackField(ack, 'MSA', 2)).toBe('TLS-1');
        } finally {
          c.close();
        }
        await expect(RawMllpClient.connectTls(tlsPort, {})).rejects.toThrow(/self-signed|certificate/i);
      } finally {
        await tlsAdapter.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps PHI out of its logs', () => {
    const all = logLines.join('');
    expect(all).toContain('message handled');
    expect(all).not.toContain(CANARY_FAMILY);
    expect(all).not.toContain(CANARY_MRN);
    expect(all).not.toContain('19800101');
  });
});
