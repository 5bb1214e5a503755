import type { PeerCertificate } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { HubError } from '../../libs/errors/index.js';
import type { ClinicalEvent } from '../../libs/events/index.js';
import type { Hl7Mapper } from '../../libs/hl7/map-context.js';
import { mapHl7Message } from '../../libs/hl7/map.js';
import { PeerDirectory } from '../../libs/hl7/peers.js';
import { DEFAULT_IDENTITY_POLICY } from '../../libs/identity/index.js';
import type { EventProducer, RawRecord } from '../../libs/kafka/producer.js';
import { createLogger } from '../../libs/telemetry/logger.js';
import { createMetrics } from '../../libs/telemetry/metrics.js';
import { adtA01, adtMissingPid3 } from '../../test/support/hl7-fixtures.js';
import { ackField } from '../../test/support/raw-mllp-client.js';
import { buildHl7Adapter, type Hl7Adapter } from './app.js';

/**
 * The adapter's decisions without Kafka or a socket: a fake producer that
 * records, fails or holds its writes, and `handleMessage` / `http.inject`.
 * The same paths against real servers: adapter.int.test.ts and its siblings.
 */
interface FakeProducer extends EventProducer {
  raw: RawRecord[];
  events: ClinicalEvent[];
  /** Every write from now on rejects with this (null: writes succeed). */
  failWith: Error | null;
  /** Every write from now on waits for release(). */
  hold: boolean;
  release(): void;
}

function fakeProducer(): FakeProducer {
  const held: (() => void)[] = [];
  const write = async (record: () => void): Promise<void> => {
    if (p.failWith) throw p.failWith;
    if (p.hold) await new Promise<void>((resolve) => held.push(resolve));
    record();
  };
  const p: FakeProducer = {
    raw: [],
    events: [],
    failWith: null,
    hold: false,
    release: () => {
      p.hold = false;
      for (const r of held.splice(0)) r();
    },
    connect: () => Promise.resolve(),
    disconnect: () => Promise.resolve(),
    health: () => ({ ok: true }),
    publishRaw: (records) => write(() => p.raw.push(...records)),
    publish: (events) => write(() => p.events.push(...events)).then(() => []),
  };
  return p;
}

const NOW = Date.UTC(2026, 2, 3, 4, 5, 6);

function adapterWith(
  producer: FakeProducer,
  mapper: Hl7Mapper = mapHl7Message,
  ackTimeoutMs = 5_000,
): Hl7Adapter {
  let n = 0;
  return buildHl7Adapter(
    {
      producer,
      logger: createLogger({ name: 'adapter-hl7-unit', level: 'silent' }),
      metrics: createMetrics({ defaultMetrics: false }),
      clock: () => NOW,
      idGenerator: () => `ACK${++n}`,
      policy: DEFAULT_IDENTITY_POLICY,
      timeZoneFor: () => 'UTC',
      mapper,
    },
    {
      host: '127.0.0.1',
      port: 0,
      maxMessageBytes: 64 * 1024,
      frameTimeoutMs: 1_000,
      rawTopic: 'hl7.raw.v1',
      dlqTopic: 'hl7.dlq.v1',
      ackTimeoutMs,
    },
  );
}

async function ackOf(adapter: Hl7Adapter, text: string): Promise<string> {
  const acks = await adapter.handleMessage(Buffer.from(text));
  expect(acks).toHaveLength(1);
  return acks[0]!.toString('utf8');
}

describe('adapter-hl7 ingest', () => {
  it('given a valid message, when handled, then its raw copy and events are written and the ACK is AA', async () => {
    const producer = fakeProducer();
    const ack = await ackOf(adapterWith(producer), adtA01('U-1'));
    expect(ack.split('\r').slice(0, 2)).toEqual([
      'MSH|^~\\&|HUB|HUBFAC|EHR^1.2.840.1^ISO|GENHOSP|20260303040506+0000||ACK^A01^ACK|ACK1|P|2.5.1',
      'MSA|AA|U-1',
    ]);
    expect(producer.raw.map((r) => r.topic)).toEqual(['hl7.raw.v1']);
    expect(producer.raw[0]?.headers?.['hl7-control-id']).toBe('U-1');
    expect(producer.events.length).toBeGreaterThan(0);
  });

  it('given a connection whose certificate may send only as LAB, when EHR is claimed, then AR 103 and only a dead letter', async () => {
    const producer = fakeProducer();
    const grant = new PeerDirectory([
      { certificate: 'lab-engine', senders: [{ application: 'LAB' }] },
    ]).identify({
      subject: { CN: 'lab-engine' },
    } as unknown as PeerCertificate);
    expect(grant).not.toBeNull();
    const peer = { id: 7, remoteAddress: '127.0.0.1', tls: true, ...(grant ? { grant } : {}) };
    const [ack] = await adapterWith(producer).handleMessage(Buffer.from(adtA01('U-SPOOF')), peer);
    expect(ackField(ack?.toString() ?? '', 'MSA', 1)).toBe('AR');
    expect(ackField(ack?.toString() ?? '', 'ERR', 3)).toBe(
      '103^Sender not permitted on this connection^HL70357',
    );
    expect(producer.raw.map((r) => r.topic)).toEqual(['hl7.dlq.v1']);
    expect(producer.raw[0]?.headers).toMatchObject({
      'hub-reason-code': 'HUB_SENDER_NOT_ALLOWED:103',
      'hl7-ack-code': 'AR',
      'hl7-error-location': 'MSH-3',
    });
    expect(producer.events).toEqual([]);
  });

  it('given a content error, when handled, then it is dead-lettered with its reason and answered AE', async () => {
    const producer = fakeProducer();
    const ack = await ackOf(adapterWith(producer), adtMissingPid3('U-2'));
    expect(ackField(ack, 'MSA', 1)).toBe('AE');
    expect(ackField(ack, 'ERR', 3)).toBe('101^Required field missing^HL70357');
    expect(producer.raw.map((r) => r.topic)).toEqual(['hl7.dlq.v1']);
    expect(producer.raw[0]?.headers).toMatchObject({
      'hub-reason-code': 'HUB_INPUT_INVALID:101',
      'hl7-ack-code': 'AE',
      'hl7-error-code': '101',
      'hl7-error-location': 'PID-3',
    });
    expect(producer.events).toEqual([]);
  });

  it('given a mapper that throws, when handled, then it is answered as our bug: dead letter and AR 207', async () => {
    const producer = fakeProducer();
    const throwing: Hl7Mapper = () => {
      throw new Error('boom');
    };
    const ack = await ackOf(adapterWith(producer, throwing), adtA01('U-3'));
    expect(ackField(ack, 'MSA', 1)).toBe('AR');
    expect(ackField(ack, 'ERR', 3)).toBe('207^Application internal error^HL70357');
    expect(producer.raw[0]?.headers).toMatchObject({
      'hub-reason-code': 'HUB_INTERNAL:207',
      'hl7-ack-code': 'AR',
    });
  });

  it('given Kafka refusing writes, when a message comes, then AR 207 "not stored" and /ready says kafka is not ok', async () => {
    const producer = fakeProducer();
    const adapter = adapterWith(producer);
    producer.failWith = new HubError('HUB_KAFKA_UNAVAILABLE', 'broker down');
    const ack = await ackOf(adapter, adtA01('U-4'));
    expect(ackField(ack, 'MSA', 1)).toBe('AR');
    expect(ackField(ack, 'ERR', 3)).toBe('207^Message not stored, resend later^HL70357');
    const ready = await adapter.http.inject({ method: 'GET', url: '/ready' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({
      checks: {
        mllp: { ok: false, detail: 'not listening' },
        kafka: { ok: false, detail: 'last write to Kafka failed or timed out' },
      },
    });

    producer.failWith = null;
    expect(ackField(await ackOf(adapter, adtA01('U-5')), 'MSA', 1)).toBe('AA');
    const again = await adapter.http.inject({ method: 'GET', url: '/ready' });
    expect(again.json()).toMatchObject({ checks: { kafka: { ok: true } } });
    await adapter.http.close();
  });

  it('given a message answered AA, when it is resent, then AA again without a second write', async () => {
    const producer = fakeProducer();
    const adapter = adapterWith(producer);
    await ackOf(adapter, adtA01('U-6'));
    const written = producer.raw.length;
    expect(ackField(await ackOf(adapter, adtA01('U-6')), 'MSA', 1)).toBe('AA');
    expect(producer.raw).toHaveLength(written);
  });

  it('given a write Kafka has not acknowledged in time, when resent meanwhile, then "not yet stored" and no second write', async () => {
    const producer = fakeProducer();
    const adapter = adapterWith(producer, mapHl7Message, 50);
    producer.hold = true;
    const first = await ackOf(adapter, adtA01('U-7'));
    expect(ackField(first, 'MSA', 1)).toBe('AR');
    expect(ackField(first, 'ERR', 3)).toBe('207^Message not yet stored, resend later^HL70357');
    const resent = await ackOf(adapter, adtA01('U-7'));
    expect(ackField(resent, 'ERR', 3)).toBe('207^Message not yet stored, resend later^HL70357');

    producer.release();
    await new Promise((r) => setTimeout(r, 10));
    expect(producer.raw).toHaveLength(1);
    expect(ackField(await ackOf(adapter, adtA01('U-7')), 'MSA', 1)).toBe('AA');
    expect(producer.raw).toHaveLength(1);
  });
});
