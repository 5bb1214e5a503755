import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reportFault } from '../support/fault-report.js';
import { ackKillProxy, compiledServices, startService, type AckKillProxy } from '../support/fault-proxy.js';
import { faultScale, settle, startFaultRig, type FaultRig } from '../support/fault-rig.js';
import { ResendingSender, senderStats } from '../support/fault-senders.js';
import { adtA01 } from '../support/hl7-fixtures.js';
import { freePort, type RunningProcess } from '../support/processes.js';

const KILLS = faultScale(200, 5);

/**
 * Fault 5 (issue 19): the HL7 adapter (its own process, as operators run it)
 * SIGKILLed after Kafka acknowledged a message and before its AA reached the
 * sender, 200 times. A proxy between sender and adapter swallows the AA and
 * kills the adapter there; the sender, with no answer, resends to the
 * restarted adapter, which has no memory of the message and writes it again.
 * Every message must still be in each read model exactly once.
 */
describe(`adapter SIGKILL between Kafka's ack and the MLLP ACK, x${KILLS}`, () => {
  let rig: FaultRig;
  let proxy: AckKillProxy;
  let adapter: RunningProcess | undefined;
  let restarting: Promise<void> = Promise.resolve();
  const restartMs: number[] = [];
  let env: Record<string, string>;
  let build: string | null;

  const start = async () => {
    const t0 = performance.now();
    const p = startService('adapter-hl7', env, build);
    adapter = p;
    // Minutes on a loaded machine: the first start also waits for the transaction coordinator.
    await p.waitFor(/adapter-hl7 ready/, 300_000);
    return Math.round(performance.now() - t0);
  };

  beforeAll(async () => {
    build = compiledServices();
    rig = await startFaultRig('adapterkill');
    const [mllpPort, httpPort] = [await freePort(), await freePort()];
    env = {
      KAFKA_BROKERS: rig.cluster.brokers.join(','),
      SCHEMA_REGISTRY_URL: rig.ctx.ep.registryUrl,
      HUB_TOPIC_SUFFIX: rig.ctx.id,
      MLLP_PORT: String(mllpPort),
      HTTP_PORT: String(httpPort),
      // info: start() waits for the "adapter-hl7 ready" line, which is logged at info.
      LOG_LEVEL: 'info',
      HUB_SITE_CONFIG: join('test', 'fixtures', 'site', 'utc.yaml'),
    };
    await start();
    proxy = await ackKillProxy(
      () => mllpPort,
      () => {
        // The AA is held by the proxy: the process dies before it could be sent on.
        const killed = adapter;
        killed?.child.kill('SIGKILL');
        restarting = (async () => {
          await killed?.stop('SIGKILL');
          restartMs.push(await start());
        })();
      },
    );
  }, 1_200_000);

  afterAll(async () => {
    await proxy?.close();
    await adapter?.stop('SIGKILL');
    await rig?.cleanup();
  }, 300_000);

  it('lands each message exactly once in every read model', async () => {
    // Given an original-mode sender behind the proxy, each message a patient of its own.
    const stats = senderStats();
    const sender = new ResendingSender(() => proxy.port, stats, { ackTimeoutMs: 30_000, retryDelayMs: 100 });
    const ids: string[] = [];
    const t0 = performance.now();
    // When every other message's AA is swallowed and the adapter killed at that moment
    // (an AR, Kafka slow to acknowledge, is passed on and the proxy stays armed).
    for (let i = 0; proxy.swallowed < KILLS; i++) {
      const id = `AK-${i}`;
      ids.push(id);
      if (i % 2 === 0) proxy.arm();
      await sender.deliver(id, adtA01(id, `MRN-${id}`));
      await restarting;
    }
    sender.close();
    const sendMs = Math.round(performance.now() - t0);

    // Then: each message once in each read model, though the log holds most twice.
    const s = await settle(rig, ids);
    reportFault('adapter-kill', `adapter SIGKILL between Kafka's ack and the MLLP ACK, x${KILLS}`, {
      messages: ids.length,
      kills: proxy.swallowed,
      restarts: restartMs.length,
      framesSent: stats.frames,
      resent: stats.resent,
      aa: stats.aa,
      ...s.figures,
      landedOnce: s.t ? ids.length - s.t.lost : 'not checked',
      meanRestartMs: Math.round(restartMs.reduce((a, b) => a + b, 0) / Math.max(1, restartMs.length)),
      maxRestartMs: Math.max(0, ...restartMs),
      compiled: build !== null,
      totalMs: sendMs,
    });
    if (s.failure) throw s.failure;
    expect(proxy.swallowed).toBe(KILLS);
    expect(stats.acked.size).toBe(ids.length);
    expect(s.f!.notInLog).toEqual([]);
    expect(s.t!.lost).toBe(0);
    expect(s.t!.duplicated).toBe(0);
  });
});
