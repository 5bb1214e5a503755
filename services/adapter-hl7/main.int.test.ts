import { Hl7Message } from '@medplum/core';
import { Hl7Client } from '@medplum/hl7';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mllpFrame } from '../../libs/hl7/mllp.js';
import { createTestContext, type TestContext } from '../../test/support/harness.js';
import { freePort, startProcess, type RunningProcess } from '../../test/support/processes.js';
import { CANARY_FAMILY, CANARY_MRN, adtA01, adtMissingPid3 } from '../../test/support/hl7-fixtures.js';
import { RawMllpClient, ackField } from '../../test/support/raw-mllp-client.js';

/**
 * The adapter as an operator runs it: main.ts in its own process, configured
 * by environment, answering over MLLP and HTTP, and stopping gracefully on
 * SIGTERM (in-flight messages are answered before the process exits).
 */
describe('adapter-hl7 main (own process)', () => {
  let ctx: TestContext;
  let proc: RunningProcess | undefined;
  let mllpPort: number;
  let httpPort: number;

  beforeAll(async () => {
    ctx = await createTestContext('hl7main');
    [mllpPort, httpPort] = [await freePort(), await freePort()];
    proc = startProcess([join('services', 'adapter-hl7', 'main.ts')], {
      KAFKA_BROKERS: ctx.ep.kafkaBrokers.join(','),
      SCHEMA_REGISTRY_URL: ctx.ep.registryUrl,
      HUB_TOPIC_SUFFIX: ctx.id,
      MLLP_PORT: String(mllpPort),
      HTTP_PORT: String(httpPort),
      LOG_LEVEL: 'debug',
      HUB_SITE_CONFIG: join('test', 'fixtures', 'site', 'utc.yaml'),
    });
    await proc.waitFor(/adapter-hl7 ready/);
  });

  afterAll(async () => {
    await proc?.stop('SIGKILL');
    await ctx?.cleanup();
  });

  it('acknowledges over MLLP and serves /health, /ready and /metrics', async () => {
    const client = new Hl7Client({ host: '127.0.0.1', port: mllpPort });
    try {
      const ack = await client.sendAndWait(Hl7Message.parse(adtA01('MAIN-1')), { timeoutMs: 30_000 });
      expect(ack.getSegment('MSA')?.getField(1)?.toString()).toBe('AA');
      const ae = await client.sendAndWait(Hl7Message.parse(adtMissingPid3('MAIN-2')), { timeoutMs: 30_000 });
      expect(ae.getSegment('MSA')?.getField(1)?.toString()).toBe('AE');
    } finally {
      await client.close();
    }
    const base = `http://127.0.0.1:${httpPort}`;
    expect((await fetch(`${base}/health`)).status).toBe(200);
    expect((await fetch(`${base}/ready`)).status).toBe(200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/hub_hl7_messages_acked_total\{source="EHR",type="ADT_A01",code="AA"\} 1/);
    expect(metrics).toMatch(/hub_hl7_messages_acked_total\{source="EHR",type="ADT_A08",code="AE"\} 1/);
  });

  it('on SIGTERM answers the messages it has taken in, in order, then closes and exits 0', async () => {
    const c = await RawMllpClient.connect(mllpPort);
    const n = 100;
    await c.write(
      Buffer.concat(Array.from({ length: n }, (_, i) => mllpFrame(adtA01(`TERM-${i}`, `MRN-TERM-${i % 3}`)))),
    );
    // The first ACK proves frames are being read; the rest are in flight when the signal lands.
    expect(ackField(await c.nextAck(), 'MSA', 2)).toBe('TERM-0');
    const exit = proc!.stop('SIGTERM');
    const after: string[] = [];
    for (;;) {
      const ack = await c.nextAck().catch(() => null);
      if (ack === null) break;
      after.push(`${ackField(ack, 'MSA', 1)} ${ackField(ack, 'MSA', 2)}`);
    }
    // Whatever was answered was AA and in order; what was not answered was never
    // taken in (reading stops at SIGTERM) and is the sender's to resend.
    expect(after.length).toBeGreaterThan(0);
    expect(after).toEqual(Array.from({ length: after.length }, (_, i) => `AA TERM-${i + 1}`));
    expect(await exit).toBe(0);
    await expect(RawMllpClient.connect(mllpPort)).rejects.toThrow();
    const out = proc!.output();
    proc = undefined;
    expect(out).toContain('adapter-hl7 stopped');
    expect(out).not.toContain(CANARY_FAMILY);
    expect(out).not.toContain(CANARY_MRN);
    expect(out).not.toContain('19800101');
  });
});

/** Starts main.ts with this environment (no site configuration unless given) and waits for it to exit. */
async function exitOf(env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  const p = startProcess([join('services', 'adapter-hl7', 'main.ts')], {
    HUB_SITE_CONFIG: '',
    MLLP_PORT: String(await freePort()),
    HTTP_PORT: String(await freePort()),
    ...env,
  });
  const code = await new Promise<number | null>((resolve) => p.child.once('exit', resolve));
  return { code, out: p.output() };
}

/**
 * HL7 v2 times without an offset are the sender's local time: without a
 * configured zone the adapter would have to guess (UTC), shifting every such
 * time, so it does not start at all.
 */
describe('adapter-hl7 main without a time zone', () => {
  it('given no HUB_SITE_CONFIG, when started, then it exits non-zero with HUB_CONFIG_INVALID naming HUB_SITE_CONFIG', async () => {
    const { code, out } = await exitOf({});
    expect(code).not.toBe(0);
    expect(out).toContain('HUB_CONFIG_INVALID');
    expect(out).toMatch(
      /HUB_SITE_CONFIG is not set: the HL7 adapter needs a site configuration with defaultTimeZone/,
    );
    expect(out).not.toMatch(/adapter-hl7 ready/);
  });

  it('given a site configuration without defaultTimeZone, when started, then it exits non-zero naming the file and field', async () => {
    const file = join('test', 'fixtures', 'site', 'no-zone.yaml');
    const { code, out } = await exitOf({ HUB_SITE_CONFIG: file });
    expect(code).not.toBe(0);
    expect(out).toContain('HUB_CONFIG_INVALID');
    expect(out).toContain(`invalid site configuration ${file}`);
    expect(out).toMatch(/defaultTimeZone: required by the HL7 adapter/);
  });
});

/**
 * The MLLP door's settings: half a configuration (client certificates with no
 * peers to map them, peers nobody enforces, an allow-list it cannot read) looks
 * like protection and is none, so the adapter does not start.
 */
describe('adapter-hl7 main with an incomplete MLLP security configuration', () => {
  const UTC_SITE = join('test', 'fixtures', 'site', 'utc.yaml');

  it('given MLLP_TLS_CA_FILE without a server certificate, when started, then it exits naming the variable', async () => {
    const { code, out } = await exitOf({ HUB_SITE_CONFIG: UTC_SITE, MLLP_TLS_CA_FILE: 'ca.crt' });
    expect(code).not.toBe(0);
    expect(out).toContain('HUB_CONFIG_INVALID');
    expect(out).toMatch(/MLLP_TLS_CA_FILE: client certificates need TLS/);
  });

  it('given client certificates but no mllp.peers, or an unreadable allow-list, when started, then it exits', async () => {
    const noPeers = await exitOf({
      HUB_SITE_CONFIG: UTC_SITE,
      MLLP_TLS_CERT: 'server.crt',
      MLLP_TLS_KEY: 'server.key',
      MLLP_TLS_CA_FILE: 'ca.crt',
    });
    expect(noPeers.code).not.toBe(0);
    expect(noPeers.out).toMatch(/MLLP_TLS_CA_FILE is set but the site configuration lists no mllp.peers/);
    const badList = await exitOf({
      HUB_SITE_CONFIG: UTC_SITE,
      MLLP_ALLOW_CIDRS: '10.0.0.0/8,not-an-address',
    });
    expect(badList.code).not.toBe(0);
    expect(badList.out).toMatch(/MLLP_ALLOW_CIDRS: not an address or CIDR: not-an-address/);
  });
});
