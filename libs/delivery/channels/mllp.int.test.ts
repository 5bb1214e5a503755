import { Hl7Segment, type Hl7Message } from '@medplum/core';
import { Hl7Server, type Hl7MessageEvent } from '@medplum/hl7';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { ClinicalEvent } from '../../events/index.js';
import { createLogger } from '../../telemetry/logger.js';
import { adtA01, hl7Events, oruR01 } from '../../../test/support/hl7-fixtures.js';
import { patientRegistered } from '../../../test/support/fixtures.js';
import {
  idempotencyKey,
  subscriptionInputSchema,
  type Delivery,
  type MllpChannel,
  type Subscription,
} from '../model.js';
import { createMllpSender, hasMessage } from './mllp.js';

/**
 * The MLLP channel against a receiver that is not the hub's code:
 * @medplum/hl7's Hl7Server on an ephemeral port, answering with
 * @medplum/core's buildAck. No Kafka: deliveries are built from events.
 */

const logger = createLogger({ name: 'mllp-sender-test', level: 'silent' });
interface Receiver {
  server: Hl7Server;
  port: number;
  received: Hl7Message[];
  connections: number;
}

/** A receiver that answers AA, or AE with an ERR for messages `reject` picks. */
async function startReceiver(port = 0, reject: (m: Hl7Message) => boolean = () => false): Promise<Receiver> {
  const received: Hl7Message[] = [];
  const rx = { connections: 0 };
  const server = new Hl7Server((connection) => {
    rx.connections++;
    connection.addEventListener('message', ({ message }: Hl7MessageEvent) => {
      received.push(message);
      const ack = reject(message)
        ? message.buildAck({
            ackCode: 'AE',
            errSegment: new Hl7Segment(['ERR', '', 'PID^1^5', '101^Required field missing^HL70357', 'E']),
          })
        : message.buildAck({ ackCode: 'AA' });
      connection.send(ack);
    });
  });
  await server.start(port);
  const addr = server.server?.address() as AddressInfo;
  return {
    server,
    port: addr.port,
    received,
    get connections() {
      return rx.connections;
    },
  };
}

function subscriptionFor(channel: MllpChannel): Subscription {
  const input = subscriptionInputSchema.parse({ name: 'mllp-test', channel });
  return { ...input, id: 'sub-mllp-1', state: 'active', generation: 1, createdAt: '', updatedAt: '' };
}

let offset = 0n;
function delivery(sub: Subscription, event: ClinicalEvent): Delivery {
  offset += 1n;
  return {
    subscription: sub,
    record: {
      topic: 'clinical.test.v1',
      partition: 0,
      offset,
      key: event.data.patientId,
      timestamp: 0,
      event,
    },
    eventNumber: Number(offset),
    idempotencyKey: idempotencyKey(sub.id, event.data.meta.eventId),
  };
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (closers.length > 0) await closers.pop()?.();
});
afterAll(async () => {
  while (closers.length > 0) await closers.pop()?.();
});

function channelTo(port: number, ackTimeoutMs = 5_000): MllpChannel {
  return {
    type: 'mllp',
    host: '127.0.0.1',
    port,
    version: '2.5.1',
    sendingApplication: 'HUB',
    sendingFacility: 'HUBFAC',
    receivingApplication: 'BILLING',
    receivingFacility: undefined,
    ackTimeoutMs,
    tls: false,
  };
}

function sender(channel: MllpChannel) {
  const s = createMllpSender(channel, { now: () => Date.UTC(2026, 0, 2, 8), logger });
  closers.push(() => s.close());
  return s;
}

describe('MLLP channel against @medplum/hl7 Hl7Server', () => {
  it('delivers ADT and ORU that the receiver parses (PID-3, OBX values), each ACKed AA for its own MSH-10', async () => {
    const rx = await startReceiver();
    closers.push(() => rx.server.stop({ forceDrainTimeoutMs: 0 }));
    const channel = channelTo(rx.port);
    const sub = subscriptionFor(channel);
    const s = sender(channel);
    const reg = hl7Events(adtA01('C1')).find((e) => e.type === 'PatientRegistered') as ClinicalEvent;
    const started = hl7Events(adtA01('C1')).find((e) => e.type === 'EncounterStarted') as ClinicalEvent;
    const result = hl7Events(oruR01('C2')).find((e) => e.type === 'ResultReported') as ClinicalEvent;

    for (const ev of [reg, started, result]) {
      expect(await s.deliver(delivery(sub, ev))).toEqual({ kind: 'delivered', status: 'AA' });
    }

    expect(rx.received.map((m) => m.getSegment('MSH')?.getField(9)?.toString())).toEqual([
      'ADT^A28^ADT_A05',
      'ADT^A01^ADT_A01',
      'ORU^R01^ORU_R01',
    ]);
    const [a28, a01, oru] = rx.received as [Hl7Message, Hl7Message, Hl7Message];
    expect(a28.getSegment('PID')?.getField(3)?.getComponent(1)).toBe('MRN-CANARY-4471');
    expect(a28.getSegment('PID')?.getField(3)?.getComponent(4)).toBe('HOSP');
    expect(a01.getSegment('PV1')?.getField(19)?.getComponent(1)).toBe('V-C1');
    expect(oru.getSegment('PID')?.getField(3)?.toString()).toBe(`${result.data.patientId}^^^HUB^PI`);
    const obx = oru.getAllSegments('OBX');
    expect(obx.map((o) => o.getField(5)?.toString())).toEqual(['196', 'normal']);
    expect(obx[0]?.getField(6)?.getComponent(1)).toBe('mg/dL');
    expect(obx[0]?.getField(3)?.getComponent(1)).toBe('2093-3');
    // Three control ids, one connection: the sender keeps it open.
    expect(new Set(rx.received.map((m) => m.getSegment('MSH')?.getField(10)?.toString())).size).toBe(3);
    expect(rx.connections).toBe(1);
  });

  it('when the receiver answers AE, then the outcome is rejected with its MSA-3 and ERR, and the next message flows', async () => {
    const rx = await startReceiver(0, (m) => m.getSegment('MSH')?.getField(9)?.getComponent(2) === 'A31');
    closers.push(() => rx.server.stop({ forceDrainTimeoutMs: 0 }));
    const channel = channelTo(rx.port);
    const sub = subscriptionFor(channel);
    const s = sender(channel);

    const refused = await s.deliver(
      delivery(sub, {
        ...patientRegistered('pat-1', 'Testa', 'M1'),
        type: 'PatientUpdated',
      } as ClinicalEvent),
    );
    expect(refused).toEqual({
      kind: 'rejected',
      reason: 'hl7-AE',
      detail: 'MSA-3: Application Error\nERR||PID^1^5|101^Required field missing^HL70357|E',
    });
    expect(await s.deliver(delivery(sub, patientRegistered('pat-2', 'Testb', 'M2')))).toEqual({
      kind: 'delivered',
      status: 'AA',
    });
  });

  it('when the receiver is stopped, then deliveries are unreachable; when it is back, the next delivery reconnects and succeeds', async () => {
    const rx = await startReceiver();
    const channel = channelTo(rx.port);
    const sub = subscriptionFor(channel);
    const s = sender(channel);
    expect(await s.deliver(delivery(sub, patientRegistered('pat-3', 'Testc', 'M3')))).toMatchObject({
      kind: 'delivered',
    });

    await rx.server.stop({ forceDrainTimeoutMs: 0 });
    const down = await s.deliver(delivery(sub, patientRegistered('pat-4', 'Testd', 'M4')));
    expect(down.kind).toBe('unreachable');
    expect(['connection-refused', 'connection-closed', 'connection-error']).toContain(
      down.kind === 'unreachable' ? down.reason : '',
    );
    expect(await s.deliver(delivery(sub, patientRegistered('pat-4', 'Testd', 'M4')))).toEqual({
      kind: 'unreachable',
      reason: 'connection-refused',
    });

    const back = await startReceiver(rx.port);
    closers.push(() => back.server.stop({ forceDrainTimeoutMs: 0 }));
    expect(await s.deliver(delivery(sub, patientRegistered('pat-4', 'Testd', 'M4')))).toEqual({
      kind: 'delivered',
      status: 'AA',
    });
    expect(back.received).toHaveLength(1);
  });

  it('when the receiver never answers, then the outcome is unreachable no-ack within ackTimeoutMs', async () => {
    const server = new Hl7Server(() => undefined);
    await server.start(0);
    closers.push(() => server.stop({ forceDrainTimeoutMs: 0 }));
    const port = (server.server?.address() as AddressInfo).port;
    const channel = channelTo(port, 300);
    const s = sender(channel);
    const started = Date.now();
    const out = await s.deliver(
      delivery(subscriptionFor(channel), patientRegistered('pat-5', 'Teste', 'M5')),
    );
    expect(out).toEqual({ kind: 'unreachable', reason: 'no-ack' });
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('skips events with no HL7 message without touching the connection', async () => {
    const channel = channelTo(1);
    const s = sender(channel);
    const allergy = {
      type: 'AllergyRecorded',
      data: { meta: patientRegistered('p', 'x', 'm').data.meta, patientId: 'p' },
    };
    expect(hasMessage('AllergyRecorded')).toBe(false);
    expect(await s.deliver(delivery(subscriptionFor(channel), allergy as ClinicalEvent))).toEqual({
      kind: 'delivered',
      status: 'skipped',
    });
  });
});
