import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INGEST_TOPICS } from '../../libs/events/contracts.js';
import { mllpFrame } from '../../libs/hl7/mllp.js';
import { readTopic } from '../../libs/hl7/raw-store.js';
import { startProjectorRun, type ProjectorRun } from '../../test/support/projectors.js';
import { freePort, startProcess, type RunningProcess } from '../../test/support/processes.js';
import { RawMllpClient, ackField } from '../../test/support/raw-mllp-client.js';
import { reusePortUnsupported } from './reuse-port.js';

/**
 * Two adapter processes on one MLLP address (MLLP_REUSE_PORT, SO_REUSEPORT):
 * the kernel spreads connections across them. Per connection, order is the
 * contract; across instances, a resend landing on the instance that did not
 * write the original is written again (its resend memory is per process) with
 * the same event ids, so the read model holds each control id once and an
 * older update re-written after a newer one does not win.
 */
const unsupported = reusePortUnsupported();
const SITE = join('test', 'fixtures', 'site', 'utc.yaml');
const PATIENTS = 24;
const UPDATES = 5;
const RESEND_CONNECTIONS = 3;

/** A01 (step 0) then A08 updates (steps 1..n) of one made-up patient; the given name says which step. */
function adt(p: number, step: number): { controlId: string; text: string } {
  const controlId = `SC${p}-${step}`;
  const trigger = step === 0 ? 'A01' : 'A08';
  const ts = `2026010112${String(step).padStart(2, '0')}00`;
  const text = [
    `MSH|^~\\&|EHR|GENHOSP|HUB|HUBFAC|${ts}||ADT^${trigger}^ADT_A01|${controlId}|P|2.5.1`,
    `EVN|${trigger}|${ts}`,
    `PID|1||MRN-SCALE-${p}^^^HOSP^MR||Zzscaleout^Step${step}||19800101|F`,
    `PV1|1|I|W1^101^A^GENHOSP||||||||||||||||V-SCALE-${p}^^^HOSP^VN`,
  ].join('\r');
  return { controlId, text };
}

function sequenceOf(p: number): { controlId: string; text: string }[] {
  return Array.from({ length: UPDATES + 1 }, (_, step) => adt(p, step));
}

/** Sends a patient's whole sequence pipelined on one new connection; returns `MSA-1 MSA-2` per ACK, in arrival order. */
async function sendOnOneConnection(port: number, p: number): Promise<string[]> {
  const c = await RawMllpClient.connect(port);
  try {
    const seq = sequenceOf(p);
    await c.write(Buffer.concat(seq.map((m) => mllpFrame(m.text))));
    const acks: string[] = [];
    for (let i = 0; i < seq.length; i++) {
      const ack = await c.nextAck(60_000);
      acks.push(`${ackField(ack, 'MSA', 1)} ${ackField(ack, 'MSA', 2)}`);
    }
    return acks;
  } finally {
    c.close();
  }
}

/** Messages this instance answered, from its own /metrics. */
async function ackedBy(httpPort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('hub_hl7_messages_acked_total{'))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

describe.skipIf(unsupported !== null)(
  `adapter-hl7 scaled out: two processes on one port (SO_REUSEPORT)${unsupported ? ` — skipped: ${unsupported}` : ''}`,
  () => {
    let run: ProjectorRun;
    const procs: RunningProcess[] = [];
    const httpPorts: number[] = [];
    let mllpPort: number;

    beforeAll(async () => {
      run = await startProjectorRun('hl7scale', ['portal']);
      mllpPort = await freePort();
      // One after the other, as a rolling deployment adds instances.
      for (let i = 0; i < 2; i++) {
        httpPorts.push(await freePort());
        const proc = startProcess([join('services', 'adapter-hl7', 'main.ts')], {
          KAFKA_BROKERS: run.ctx.ep.kafkaBrokers.join(','),
          SCHEMA_REGISTRY_URL: run.ctx.ep.registryUrl,
          HUB_TOPIC_SUFFIX: run.ctx.id,
          MLLP_PORT: String(mllpPort),
          MLLP_REUSE_PORT: 'true',
          // Every test connection comes from 127.0.0.1: 72 resend connections at once, spread
          // unevenly, can pass the default 32 per peer on one instance (the cap is per instance).
          MLLP_MAX_CONNECTIONS_PER_PEER: '128',
          HTTP_PORT: String(httpPorts[i]),
          HUB_SITE_CONFIG: SITE,
          // A loaded 2-core machine runs Kafka, the registry, Postgres and both instances.
          KAFKA_ACK_TIMEOUT_MS: '30000',
        });
        procs.push(proc);
        await proc.waitFor(/adapter-hl7 ready/, 120_000);
      }
    }, 300_000);

    afterAll(async () => {
      for (const p of procs) await p.stop('SIGKILL');
      await run?.cleanup();
    });

    it('keeps per-connection order, writes each fact once across instances, and the read model ends at the last update', async () => {
      // given both instances listening on one port, when each patient's A01 + A08s go pipelined over one connection
      const patients = Array.from({ length: PATIENTS }, (_, p) => p);
      const first = await Promise.all(patients.map((p) => sendOnOneConnection(mllpPort, p)));
      // then every connection is answered AA, in the order it sent
      for (const p of patients) expect(first[p]).toEqual(sequenceOf(p).map((m) => `AA ${m.controlId}`));
      // and the kernel spread the connections over both processes
      const served = await Promise.all(httpPorts.map(ackedBy));
      expect(served.reduce((a, b) => a + b, 0)).toBe(PATIENTS * (UPDATES + 1));
      for (const n of served) expect(n).toBeGreaterThan(0);
      const eventIdsBefore = await eventIds(run);

      // when every sequence is resent over fresh connections (landing on either instance)
      const resends = await Promise.all(
        patients.flatMap((p) =>
          Array.from({ length: RESEND_CONNECTIONS }, () => sendOnOneConnection(mllpPort, p)),
        ),
      );
      // then each is answered AA in order again
      resends.forEach((acks, i) => {
        const p = Math.floor(i / RESEND_CONNECTIONS);
        expect(acks).toEqual(sequenceOf(p).map((m) => `AA ${m.controlId}`));
      });

      // and the raw log holds each control id once, or twice when a resend reached the other instance
      const raw = await readTopic(run.ctx.kafka, run.ctx.topic(INGEST_TOPICS.hl7Raw));
      const perControlId = new Map<string, number>();
      for (const r of raw) {
        const id = r.headers['hl7-control-id'] ?? '';
        perControlId.set(id, (perControlId.get(id) ?? 0) + 1);
      }
      expect(perControlId.size).toBe(PATIENTS * (UPDATES + 1));
      for (const n of perControlId.values()) expect(n).toBeLessThanOrEqual(2);
      const rewritten = [...perControlId.values()].filter((n) => n === 2).length;
      expect(rewritten, 'some resends crossed to the instance that had not written them').toBeGreaterThan(0);
      // and the rewrites repeat event ids only: no new fact
      expect(await eventIds(run)).toEqual(eventIdsBefore);

      // and on the patient topic, each patient's messages first appear in the order its connection sent them
      await expectPatientOrder(run, patients);

      // and the read model holds one patient per sequence, at its last update, with one encounter
      await run.caughtUp();
      const rows: { resource: { name?: { given?: string[] }[] } }[] = await run.ctx.db
        .withSchema(run.stable.portal)
        .from('patients')
        .where({ placeholder: false })
        .select('resource');
      expect(rows).toHaveLength(PATIENTS);
      for (const r of rows) expect(r.resource.name?.[0]?.given).toEqual([`Step${UPDATES}`]);
      const encounters: { patient_id: string }[] = await run.ctx.db
        .withSchema(run.stable.portal)
        .from('encounters')
        .select('patient_id');
      expect(encounters).toHaveLength(PATIENTS);
      expect(new Set(encounters.map((e) => e.patient_id)).size).toBe(PATIENTS);
      console.log(
        `scale-out: ${PATIENTS} connections, ${served.join(' + ')} messages per instance; ` +
          `${PATIENTS * RESEND_CONNECTIONS} resend connections, ${rewritten} control ids re-written by the other instance`,
      );
    }, 300_000);
  },
);

/** Every event id on the clinical topics, sorted. */
async function eventIds(run: ProjectorRun): Promise<string[]> {
  const ids = new Set<string>();
  for (const t of run.topics) {
    for (const r of await readTopic(run.ctx.kafka, t)) ids.add(r.headers['hub-event-id'] ?? '');
  }
  return [...ids].sort();
}

/** Per patient key: one partition, and the first occurrences of its control ids in send order. */
async function expectPatientOrder(run: ProjectorRun, patients: number[]): Promise<void> {
  const records = await readTopic(run.ctx.kafka, run.ctx.topicFor('PatientUpdated'));
  const byKey = new Map<string, { partitions: Set<number>; ids: string[] }>();
  const sorted = [...records].sort(
    (a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)),
  );
  for (const r of sorted) {
    const e = await run.ctx.codec.decode(r.value);
    const k = byKey.get(r.key ?? '') ?? { partitions: new Set<number>(), ids: [] };
    k.partitions.add(r.partition);
    const id = e.data.meta.source.messageId ?? '';
    if (!k.ids.includes(id)) k.ids.push(id);
    byKey.set(r.key ?? '', k);
  }
  expect(byKey.size).toBe(patients.length);
  const sequences = [...byKey.values()].map((k) => {
    expect(k.partitions.size).toBe(1);
    return k.ids;
  });
  const expected = patients.map((p) =>
    sequenceOf(p)
      .map((m) => m.controlId)
      .filter((id) => sequences.some((s) => s.includes(id))),
  );
  expect(sequences.sort()).toEqual(expected.sort());
  // Every update is there, not only the admission.
  for (const s of sequences) expect(s.length).toBeGreaterThanOrEqual(UPDATES);
}

describe.skipIf(unsupported === null)(
  `adapter-hl7 MLLP_REUSE_PORT on a runtime without reusePort (${unsupported ?? 'supported here'})`,
  () => {
    it('given MLLP_REUSE_PORT=true, when started, then it exits non-zero with HUB_CONFIG_INVALID naming the variable', async () => {
      const p = startProcess([join('services', 'adapter-hl7', 'main.ts')], {
        HUB_SITE_CONFIG: SITE,
        MLLP_PORT: String(await freePort()),
        HTTP_PORT: String(await freePort()),
        MLLP_REUSE_PORT: 'true',
      });
      const code = await new Promise<number | null>((resolve) => p.child.once('exit', resolve));
      expect(code).not.toBe(0);
      expect(p.output()).toContain('HUB_CONFIG_INVALID');
      expect(p.output()).toMatch(/MLLP_REUSE_PORT=true cannot be honoured here: /);
      expect(p.output()).not.toMatch(/adapter-hl7 ready/);
    });
  },
);
