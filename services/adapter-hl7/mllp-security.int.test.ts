import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INGEST_TOPICS } from '../../libs/events/contracts.js';
import { mllpFrame } from '../../libs/hl7/mllp.js';
import { addressAllowList, PeerDirectory } from '../../libs/hl7/peers.js';
import { readTopic } from '../../libs/hl7/raw-store.js';
import { ensureCa, issueCertificate, readCertificate } from '../../libs/stack/certs.js';
import { createLogger } from '../../libs/telemetry/logger.js';
import { createMetrics, type HubMetrics } from '../../libs/telemetry/metrics.js';
import { createTestContext, type TestContext } from '../../test/support/harness.js';
import { adtA01, oruR01 } from '../../test/support/hl7-fixtures.js';
import { probeMllp } from '../../test/support/mllp-probe.js';
import { RawMllpClient, ackField } from '../../test/support/raw-mllp-client.js';
import { startHl7Adapter } from '../../test/support/hl7-adapter.js';
import type { Hl7Adapter, Hl7AdapterConfig } from './app.js';

type TlsMaterial = { cert: Buffer; key: Buffer; ca: Buffer };

/**
 * The MLLP door (issue 17): client certificates mapped to the senders they
 * may send as, the address allow-list, non-MLLP bytes, the idle timeout and
 * the per-peer cap, over real sockets with the real Kafka behind.
 */
describe('adapter-hl7: who may connect and send', () => {
  let ctx: TestContext;
  let dir: string;
  let rawTopic: string;
  let dlqTopic: string;
  const adapters: Hl7Adapter[] = [];

  /** Starts an adapter on its own port with these listener settings, and its own metrics. */
  async function start(
    cfg: Partial<Hl7AdapterConfig>,
  ): Promise<{ port: number; metrics: HubMetrics; adapter: Hl7Adapter }> {
    const metrics = createMetrics({ defaultMetrics: false });
    const logger = createLogger({ name: 'adapter-hl7-security-test', level: 'silent' });
    const { adapter, port } = await startHl7Adapter(ctx, cfg, { metrics, logger });
    adapters.push(adapter);
    return { port, metrics, adapter };
  }

  async function closedCount(metrics: HubMetrics, reason: string): Promise<number> {
    const m = metrics.registry.getSingleMetric('hub_mllp_connections_closed_total');
    const values = m ? (await m.get()).values : [];
    return values.find((v) => v.labels['reason'] === reason)?.value ?? 0;
  }

  /** Control ids of the records on a topic (MSH-10 header). */
  async function controlIds(topic: string): Promise<string[]> {
    const records = await readTopic(ctx.kafka, topic);
    return records.map((r) => String(r.headers['hl7-control-id'] ?? ''));
  }

  beforeAll(async () => {
    ctx = await createTestContext('hl7door');
    rawTopic = ctx.topic(INGEST_TOPICS.hl7Raw);
    dlqTopic = ctx.topic(INGEST_TOPICS.hl7Dlq);
    dir = mkdtempSync(join(tmpdir(), 'hl7door-'));
  });

  afterAll(async () => {
    for (const a of adapters) await a.stop();
    await ctx?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  describe('TLS with required client certificates', () => {
    let port: number;
    let metrics: HubMetrics;
    let adapter: Hl7Adapter;
    let lab: TlsMaterial;
    let stranger: TlsMaterial;
    let foreign: TlsMaterial;
    let serverCa: Buffer;

    beforeAll(async () => {
      const ca = await ensureCa(join(dir, 'ca'));
      const server = await readCertificate(
        await issueCertificate(ca, join(dir, 'certs'), 'hub-mllp', { hosts: ['127.0.0.1'], usage: 'server' }),
      );
      serverCa = server.ca;
      lab = await readCertificate(
        await issueCertificate(ca, join(dir, 'certs'), 'lab-engine', { usage: 'client' }),
      );
      stranger = await readCertificate(
        await issueCertificate(ca, join(dir, 'certs'), 'stranger', { usage: 'client' }),
      );
      // Same name, another CA: what someone who made their own "lab-engine" certificate has.
      const other = await ensureCa(join(dir, 'other-ca'), 'someone else');
      foreign = await readCertificate(
        await issueCertificate(other, join(dir, 'other'), 'lab-engine', { usage: 'client' }),
      );
      ({ port, metrics, adapter } = await start({
        tls: { cert: server.cert, key: server.key, clientCa: server.ca },
        peers: new PeerDirectory([
          { certificate: 'lab-engine', senders: [{ application: 'LAB', facility: 'GENHOSP' }] },
        ]),
      }));
    });

    const asClient = (c: TlsMaterial) => ({
      ca: serverCa,
      cert: c.cert,
      key: c.key,
    });

    /** The ACKs of these messages sent in turn over one TLS connection with this certificate. */
    async function acksVia(c: TlsMaterial, ...texts: string[]): Promise<string[]> {
      const client = await RawMllpClient.connectTls(port, asClient(c));
      try {
        const acks: string[] = [];
        for (const t of texts) {
          await client.send(t);
          acks.push(await client.nextAck());
        }
        return acks;
      } finally {
        client.close();
      }
    }

    it('given the LAB certificate, when LAB sends, then AA and the message is on the raw topic', async () => {
      const [ack = ''] = await acksVia(lab, oruR01('DOOR-LAB-1', 'MRN-DOOR'));
      expect(ackField(ack, 'MSA', 1)).toBe('AA');
      expect(await controlIds(rawTopic)).toContain('DOOR-LAB-1');
    });

    it('given the LAB certificate, when it claims MSH-3 EHR, then AR 103 at MSH-3, nothing published, kept as a dead letter', async () => {
      // The second message: the connection stays usable for what LAB may send.
      const [ack = '', next = ''] = await acksVia(
        lab,
        adtA01('DOOR-SPOOF-1', 'MRN-DOOR'),
        oruR01('DOOR-LAB-2', 'MRN-DOOR'),
      );
      expect(ackField(ack, 'MSA', 1)).toBe('AR');
      expect(ackField(ack, 'MSA', 2)).toBe('DOOR-SPOOF-1');
      expect(ackField(ack, 'ERR', 2)).toBe('MSH^1^3');
      expect(ackField(ack, 'ERR', 3)).toBe('103^Sender not permitted on this connection^HL70357');
      expect(ackField(next, 'MSA', 1)).toBe('AA');
      expect(await controlIds(rawTopic)).not.toContain('DOOR-SPOOF-1');
      const patients = await readTopic(ctx.kafka, ctx.topic('clinical.patient.v1'));
      const ids = await Promise.all(
        patients.map(async (r) => (await ctx.codec.decode(r.value)).data.meta.source.messageId),
      );
      expect(ids).not.toContain('DOOR-SPOOF-1');
      const dead = (await readTopic(ctx.kafka, dlqTopic)).filter(
        (r) => r.headers['hl7-control-id'] === 'DOOR-SPOOF-1',
      );
      expect(dead.map((r) => r.headers['hub-reason-code'])).toEqual(['HUB_SENDER_NOT_ALLOWED:103']);
    });

    it('given the LAB certificate, when it resends a control id another sender used, then it never gets AA', async () => {
      // A resend key is sender + MSH-10: the sender check comes before the resend memory,
      // or a copy of EHR's accepted message would be answered AA from memory.
      const ehr = adtA01('DOOR-EHR-1', 'MRN-DOOR');
      expect(ackField((await adapter.handleMessage(Buffer.from(ehr)))[0]?.toString() ?? '', 'MSA', 1)).toBe(
        'AA',
      );
      const [ack = ''] = await acksVia(lab, ehr);
      expect(ackField(ack, 'MSA', 1)).toBe('AR');
    });

    it('given no client certificate, when connecting, then the handshake is refused and nothing is answered', async () => {
      const before = await closedCount(metrics, 'tls_handshake');
      const r = await probeMllp(port, {
        tls: { ca: serverCa },
        write: mllpFrame(oruR01('DOOR-NOCERT-1')),
      });
      expect(r.closedByServer).toBe(true);
      expect(r.received.length).toBe(0);
      expect(r.error).not.toBeNull();
      expect(await closedCount(metrics, 'tls_handshake')).toBeGreaterThan(before);
    });

    it('given a certificate with the right name from another CA, when connecting, then the handshake is refused', async () => {
      const before = await closedCount(metrics, 'tls_handshake');
      const r = await probeMllp(port, { tls: asClient(foreign), write: mllpFrame(oruR01('DOOR-FOREIGN-1')) });
      expect(r.closedByServer).toBe(true);
      expect(r.received.length).toBe(0);
      expect(await closedCount(metrics, 'tls_handshake')).toBe(before + 1);
      expect(await closedCount(metrics, 'certificate_not_configured')).toBe(0);
    });

    it('given a certificate from the CA that mllp.peers does not list, when connecting, then closed without an answer', async () => {
      const before = await closedCount(metrics, 'certificate_not_configured');
      const r = await probeMllp(port, {
        tls: asClient(stranger),
        write: mllpFrame(oruR01('DOOR-STRANGER-1')),
      });
      expect(r.closedByServer).toBe(true);
      expect(r.received.length).toBe(0);
      expect(await closedCount(metrics, 'certificate_not_configured')).toBe(before + 1);
    });

    it('given plain MLLP on the TLS port, when sent, then closed without an answer', async () => {
      const r = await probeMllp(port, { write: mllpFrame(oruR01('DOOR-PLAIN-1')) });
      expect(r.closedByServer).toBe(true);
      expect(r.received.length).toBe(0);
      expect(await controlIds(rawTopic)).not.toContain('DOOR-NOCERT-1');
      expect(await controlIds(rawTopic)).not.toContain('DOOR-STRANGER-1');
    });
  });

  describe('plain listener', () => {
    let port: number;
    let metrics: HubMetrics;

    beforeAll(async () => {
      ({ port, metrics } = await start({ maxConnectionsPerPeer: 3 }));
    });

    it('regression (issue 17): an HTTP POST with an MLLP frame in its body was acknowledged AA; now closed, no ACK, nothing published', async () => {
      const frame = mllpFrame(adtA01('DOOR-HTTP-1', 'MRN-DOOR-HTTP'));
      const request = Buffer.concat([
        Buffer.from(
          'POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n' +
            `Content-Length: ${frame.length}\r\n\r\n`,
        ),
        frame,
      ]);
      const r = await probeMllp(port, { write: request });
      expect(r.closedByServer).toBe(true);
      expect(r.received.length).toBe(0);
      expect(await closedCount(metrics, 'not_mllp')).toBeGreaterThanOrEqual(1);
      expect(await controlIds(rawTopic)).not.toContain('DOOR-HTTP-1');
      expect(await controlIds(dlqTopic)).not.toContain('DOOR-HTTP-1');
    });

    it('given a TLS ClientHello on the plain port, when sent, then closed without an answer', async () => {
      const r = await probeMllp(port, { tls: { rejectUnauthorized: false } });
      expect(r.closedByServer).toBe(true);
      expect(r.secured).toBe(false);
      expect(r.received.length).toBe(0);
    });

    it('given a GET request line split from the rest, when sent, then closed without an answer', async () => {
      const r = await probeMllp(port, { write: Buffer.from('GET / HTTP/1.0\r\n') });
      expect(r.closedByServer).toBe(true);
      expect(r.received.length).toBe(0);
    });

    it('given CR/LF before and between frames, then they are tolerated and both frames answered', async () => {
      const c = await RawMllpClient.connect(port);
      try {
        await c.write(
          Buffer.concat([
            Buffer.from('\r\n'),
            mllpFrame(adtA01('DOOR-WS-1', 'MRN-DOOR-WS')),
            Buffer.from('\n'),
            mllpFrame(adtA01('DOOR-WS-2', 'MRN-DOOR-WS')),
          ]),
        );
        expect(ackField(await c.nextAck(), 'MSA', 2)).toBe('DOOR-WS-1');
        expect(ackField(await c.nextAck(), 'MSA', 2)).toBe('DOOR-WS-2');
      } finally {
        c.close();
      }
    });

    it('given a frame then junk, then the frame is answered and the connection closed', async () => {
      const c = await RawMllpClient.connect(port);
      const closed = new Promise<void>((r) => c.socket.once('close', () => r()));
      await c.write(
        Buffer.concat([mllpFrame(adtA01('DOOR-THEN-JUNK', 'MRN-DOOR-J')), Buffer.from('\0junk')]),
      );
      expect(ackField(await c.nextAck(), 'MSA', 1)).toBe('AA');
      await closed;
    });

    it('given 3 open connections from one address (cap 3), then the 4th is closed on accept while the 3 still work', async () => {
      const open = await Promise.all([1, 2, 3].map(() => RawMllpClient.connect(port)));
      try {
        const before = await closedCount(metrics, 'peer_limit');
        const r = await probeMllp(port, { write: mllpFrame(oruR01('DOOR-CAP-4')) });
        expect(r.closedByServer).toBe(true);
        expect(r.received.length).toBe(0);
        expect(await closedCount(metrics, 'peer_limit')).toBe(before + 1);
        for (const [i, c] of open.entries()) {
          await c.send(oruR01(`DOOR-CAP-${i + 1}`, 'MRN-DOOR-CAP'));
          expect(ackField(await c.nextAck(), 'MSA', 1)).toBe('AA');
        }
      } finally {
        for (const c of open) c.close();
      }
    });
  });

  it('given an idle timeout of 500 ms, then an idle connection is closed after it, and one in use is not', async () => {
    const { port, metrics } = await start({ idleTimeoutMs: 500 });
    const idle = await probeMllp(port, { waitMs: 10_000 });
    expect(idle.closedByServer).toBe(true);
    expect(idle.ms).toBeGreaterThanOrEqual(450);
    expect(await closedCount(metrics, 'idle_timeout')).toBeGreaterThanOrEqual(1);
    // Activity restarts the timer: a message every 300 ms keeps the connection.
    const busy = await RawMllpClient.connect(port);
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 300));
      await busy.send(adtA01(`DOOR-BUSY-${i}`, 'MRN-DOOR-BUSY'));
      expect(ackField(await busy.nextAck(), 'MSA', 1)).toBe('AA');
    }
    busy.close();
  });

  it('given MLLP_ALLOW_CIDRS 10.0.0.0/8, then a connection from 127.0.0.1 is closed before anything is read', async () => {
    const { port, metrics } = await start({ allowAddress: addressAllowList('10.0.0.0/8') });
    const r = await probeMllp(port, { write: mllpFrame(adtA01('DOOR-CIDR-1', 'MRN-DOOR-CIDR')) });
    expect(r.closedByServer).toBe(true);
    expect(r.received.length).toBe(0);
    expect(await closedCount(metrics, 'address_not_allowed')).toBe(1);
    expect(await controlIds(rawTopic)).not.toContain('DOOR-CIDR-1');
  });
});
