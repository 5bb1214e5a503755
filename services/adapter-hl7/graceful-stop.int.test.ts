import { testHl7Adapter } from '../../test/support/private-broker.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics } from '../../libs/telemetry/metrics.js';
import { createTestContext, eventually, type TestContext } from '../../test/support/harness.js';
import { type Hl7Adapter } from './app.js';
import { adtA01 } from '../../test/support/hl7-fixtures.js';
import { RawMllpClient, ackField } from '../../test/support/raw-mllp-client.js';

const GRACE_MS = 10_000;

/** The adapter's stop against the real broker, with senders that keep their connections open (they all do). */
describe('adapter-hl7 graceful stop', () => {
  let ctx: TestContext;
  let adapter: Hl7Adapter;
  let port: number;
  const metrics = createMetrics({ defaultMetrics: false });
  const received = async () => (await metrics.hl7Received.get()).values.reduce((sum, v) => sum + v.value, 0);

  beforeAll(async () => {
    ctx = await createTestContext('hl7stop');
    adapter = testHl7Adapter(ctx, ctx.producer, {
      controlIdPrefix: 'S',
      metrics,
      cfg: { stopGraceMs: GRACE_MS },
    });
    port = (await adapter.start()).port;
  }, 120_000);

  afterAll(async () => {
    await ctx?.cleanup();
  });

  it('regression: stop ends when in-flight messages are acknowledged, not after the whole grace', async () => {
    // Given one sender idle after its AA and one whose message is in flight, both keeping their connections open
    const idle = await RawMllpClient.connect(port);
    await idle.send(adtA01('STOP-1', 'MRN-STOP-1'));
    expect(ackField(await idle.nextAck(30_000), 'MSA', 1)).toBe('AA');
    const busy = await RawMllpClient.connect(port);
    await busy.send(adtA01('STOP-2', 'MRN-STOP-2'));
    const busyAck = busy.nextAck(30_000);
    await eventually(async () => ((await received()) === 2 ? true : undefined), {
      timeoutMs: 10_000,
      what: 'the second message received by the adapter',
    });

    // When the adapter stops, and a sender sends its next message just after (bytes the adapter no longer reads)
    const t0 = Date.now();
    const stopping = adapter.stop();
    await idle.send(adtA01('STOP-3', 'MRN-STOP-1'));
    await stopping;
    const ms = Date.now() - t0;
    process.stderr.write(`[graceful-stop] stopped in ${ms} ms (grace ${GRACE_MS} ms)\n`);

    // Then the in-flight message was answered before the connection closed, and the stop took far less than the grace
    expect(ackField(await busyAck, 'MSA', 1)).toBe('AA');
    expect(ms).toBeLessThan(GRACE_MS / 2);
    idle.close();
    busy.close();
  }, 60_000);
});
