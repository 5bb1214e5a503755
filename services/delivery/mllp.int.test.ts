import { randomUUID } from 'node:crypto';
import { Hl7Segment, type Hl7Message } from '@medplum/core';
import { Hl7Server, type Hl7MessageEvent } from '@medplum/hl7';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SubscriptionInput } from '../../libs/delivery/model.js';
import { createSubscription, deliveryStatus, listDeadLetters } from '../../libs/delivery/store.js';
import { createTestContext, eventually, type TestContext } from '../../test/support/harness.js';
import { startDeliveryInProcess } from '../../test/support/delivery.js';
import { adtA01, hl7Events, oruR01 } from '../../test/support/hl7-fixtures.js';
import { freePort } from '../../test/support/processes.js';
import type { DeliveryService } from './app.js';

/** A receiver that is not the hub's code: @medplum/hl7's server, answering AA, or AE with an ERR for what `refuse` picks. */
async function hl7Receiver(port: number, refuse: (m: Hl7Message) => boolean) {
  const received: Hl7Message[] = [];
  const server = new Hl7Server((connection) => {
    connection.addEventListener('message', ({ message }: Hl7MessageEvent) => {
      received.push(message);
      connection.send(
        refuse(message)
          ? message.buildAck({
              ackCode: 'AE',
              errSegment: new Hl7Segment(['ERR', '', 'PV1^1^3', '103^Table value not found^HL70357', 'E']),
            })
          : message.buildAck({ ackCode: 'AA' }),
      );
    });
  });
  await server.start(port);
  return { received, stop: () => server.stop({ forceDrainTimeoutMs: 500 }) };
}

describe('delivery service: HL7 v2 over MLLP to a receiver that is not the hub (issue 20)', () => {
  let ctx: TestContext;
  let svc: DeliveryService;

  beforeAll(async () => {
    ctx = await createTestContext('dlv_mllp');
    ({ svc } = await startDeliveryInProcess(ctx));
  }, 120_000);

  afterAll(async () => {
    await svc?.stop();
    await ctx?.cleanup();
  });

  it('sends ADT and ORU the receiver parses; an AE is dead-lettered with its ERR and the rest flow; a stopped receiver loses nothing', async () => {
    const port = await freePort();
    // The receiver refuses the admission (A01) of one visit: its ERR must reach the dead letter.
    let rx = await hl7Receiver(port, (m) => m.getSegment('MSH')?.getField(9)?.getComponent(2) === 'A01');
    const sub = await createSubscription(
      ctx.db,
      ctx.schema,
      {
        name: 'billing vendor',
        channel: { type: 'mllp', host: '127.0.0.1', port, version: '2.5.1', ackTimeoutMs: 5_000 },
        retry: { maxBackoffSeconds: 1, giveUpAfterSeconds: 600 },
      } as SubscriptionInput,
      { id: randomUUID(), now: new Date() },
    );
    await eventually(() => Promise.resolve(svc.supervisor.running().has(sub.id) ? true : undefined));

    const admission = hl7Events(adtA01('DLV-A01'));
    const result = hl7Events(oruR01('DLV-R01'));
    await ctx.producer.publish([...admission, ...result]);
    const types = (ms: Hl7Message[]) => ms.map((m) => m.getSegment('MSH')?.getField(9)?.toString());
    await eventually(
      () => Promise.resolve(rx.received.some((m) => types([m])[0]?.startsWith('ORU')) ? true : undefined),
      {
        what: 'the ORU at the receiver',
      },
    );
    const oru = rx.received.find((m) => types([m])[0]?.startsWith('ORU'));
    expect(oru?.getSegment('PID')?.getField(3)?.toString()).toContain('HUB');
    expect(oru?.getAllSegments('OBX').length).toBeGreaterThan(0);
    const [dl] = await eventually(async () => {
      const rows = await listDeadLetters(ctx.db, ctx.schema, sub.id);
      return rows.length > 0 ? rows : undefined;
    });
    expect(dl).toMatchObject({ reason: 'hl7-AE', eventType: 'EncounterStarted' });
    expect(dl?.detail).toContain('103^Table value not found');

    // The receiver stops; traffic goes on; it comes back and gets everything.
    await rx.stop();
    const later = hl7Events(oruR01('DLV-R02'));
    await ctx.producer.publish(later);
    await eventually(
      async () => {
        const s = await deliveryStatus(ctx.db, ctx.schema, sub.id);
        return s?.health === 'error' ? s : undefined;
      },
      { what: 'the subscription to notice the receiver is gone' },
    );
    rx = await hl7Receiver(port, () => false);
    await eventually(() => Promise.resolve(rx.received.length >= 1 ? true : undefined), {
      timeoutMs: 60_000,
      what: 'the backlog',
    });
    expect(types(rx.received)[0]).toMatch(/^ORU/);
    const status = await eventually(async () => {
      const s = await deliveryStatus(ctx.db, ctx.schema, sub.id);
      return s?.health === 'active' ? s : undefined;
    });
    expect(status.deadLetters).toBe(1);
    await rx.stop();
  }, 120_000);
});
