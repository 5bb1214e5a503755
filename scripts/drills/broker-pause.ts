// Fault drill: the broker hangs (SIGSTOP) under HL7 load against a running `hub up`.
//
//   npm run up                                   # in another terminal
//   npx tsx scripts/drills/broker-pause.ts [--pause-seconds 45] [--senders 4]
//
// Senders are @medplum/hl7's Hl7Client (not the hub's code) acting as an
// original-mode interface engine: one message at a time, and on a non-AA or
// no answer within --sender-timeout, the same message again until AA. The
// drill polls adapter-hl7's and adapter-fhir's /ready, pauses the dev
// Kafka (pid from .hub/dev/kafka.pid), resumes it, lets every sender finish,
// then reads hl7.raw.v1 and clinical.patient.v1 back: every message must be
// there exactly once. Prints the ACK codes seen, the /ready transitions with
// times, and exits 1 if anything was lost or doubled.
import { Hl7Message } from '@medplum/core';
import { Hl7Client } from '@medplum/hl7';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createEventCodec } from '../../libs/events/codec.js';
import { createRegistryClient } from '../../libs/events/registry.js';
import { createKafkaClient } from '../../libs/kafka/client.js';
import { scanTopic } from '../../libs/kafka/scan.js';
import { localIngestAuth } from '../../libs/stack/ingest-token.js';
import { createLogger } from '../../libs/telemetry/logger.js';

const { values: args } = parseArgs({
  options: {
    'pause-seconds': { type: 'string', default: '45' },
    'before-seconds': { type: 'string', default: '10' },
    'after-seconds': { type: 'string', default: '10' },
    senders: { type: 'string', default: '4' },
    'sender-timeout': { type: 'string', default: '30' },
    mllp: { type: 'string', default: '127.0.0.1:2575' },
    brokers: { type: 'string', default: '127.0.0.1:9092' },
    registry: { type: 'string', default: 'http://127.0.0.1:8081/apis/ccompat/v7' },
    'kafka-pid-file': { type: 'string', default: join(process.cwd(), '.hub', 'dev', 'kafka.pid') },
  },
});
const num = (k: keyof typeof args) => Number(args[k]);
const READY_URLS = {
  'adapter-hl7': 'http://127.0.0.1:8092/ready',
  'adapter-fhir': 'http://127.0.0.1:8093/ready',
};
const run = Date.now().toString(36);
const t0 = Date.now();
const at = () => ((Date.now() - t0) / 1000).toFixed(1);
const say = (m: string) => process.stdout.write(`[${at()}s] ${m}\n`);

function adt(controlId: string, mrn: string): string {
  return [
    `MSH|^~\\&|DRILL|GENHOSP|HUB|HUBFAC|20260101120000||ADT^A01^ADT_A01|${controlId}|P|2.5.1`,
    'EVN|A01|20260101120000',
    `PID|1||${mrn}^^^HOSP^MR||Drillperson^Pat||19800101|F`,
    `PV1|1|I|W1^101^A^GENHOSP||||1234^Welby^Marcus|||MED|||||||||V-${controlId}^^^HOSP^VN`,
  ].join('\r');
}

interface SenderStats {
  sent: string[];
  codes: Map<string, number>;
  maxWaitMs: number;
}

/** One original-mode sender: each message until AA, then the next, until told to stop. */
async function sender(n: number, stop: { now: boolean }, stats: SenderStats): Promise<void> {
  // --mllp is host:port.
  const host = args.mllp.replace(/:.*/s, '');
  const port = Number(args.mllp.split(':')[1]);
  const connect = () => new Hl7Client({ host, port });
  let client = connect();
  for (let i = 0; !stop.now; i++) {
    const id = `DRILL-${run}-${n}-${i}`;
    const msg = Hl7Message.parse(adt(id, `MRN-DRILL-${run}-${n}`));
    stats.sent.push(id);
    for (;;) {
      const t = Date.now();
      let code = 'timeout';
      try {
        const ack = await client.sendAndWait(msg, { timeoutMs: num('sender-timeout') * 1000 });
        code = ack.getSegment('MSA')?.getField(1)?.toString() ?? '?';
      } catch {
        // No answer in time: drop the connection and resend on a new one, as engines do.
        say(
          `sender ${n}: no answer to ${id} within ${args['sender-timeout']}s (sent at ${((t - t0) / 1000).toFixed(1)}s)`,
        );
        await client.close().catch(() => undefined);
        client = connect();
      }
      stats.maxWaitMs = Math.max(stats.maxWaitMs, Date.now() - t);
      if (code !== 'AA') say(`sender ${n}: ${code} after ${Date.now() - t} ms`);
      stats.codes.set(code, (stats.codes.get(code) ?? 0) + 1);
      if (code === 'AA') break;
      // Resend on a new connection: Hl7Client (5.0.10) never clears the timeout of
      // an answered sendAndWait, and when it fires it deletes the pending entry of
      // a later resend with the same MSH-10, whose ACK is then dropped as unknown.
      await client.close().catch(() => undefined);
      client = connect();
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  await client.close().catch(() => undefined);
}

/** Polls each /ready and prints every change of state with its time. */
function watchReady(): { stop(): void; transitions: string[] } {
  const state = new Map<string, string>();
  const transitions: string[] = [];
  const timer = setInterval(() => {
    for (const [name, url] of Object.entries(READY_URLS)) {
      void fetch(url, { signal: AbortSignal.timeout(2000) })
        .then(async (r) => {
          const body = (await r.json()) as { checks?: Record<string, { ok: boolean; detail?: string }> };
          const failing = Object.entries(body.checks ?? {})
            .filter(([, c]) => !c.ok)
            .map(([k, c]) => `${k}: ${c.detail ?? 'failing'}`)
            .join('; ');
          return r.status === 200 ? 'ready' : `not-ready (${failing.replace(/[\d.]+s for/, 'Ns for')})`;
        })
        .catch(() => 'no answer')
        .then((s) => {
          if (state.get(name) === s) return;
          state.set(name, s);
          const line = `${name} /ready -> ${s}`;
          transitions.push(`${at()}s ${line}`);
          say(line);
        });
    }
  }, 250);
  return { stop: () => clearInterval(timer), transitions };
}

/** One FHIR write while the broker hangs: it must get 503 with an OperationOutcome, not hang. */
async function fhirWrite(): Promise<void> {
  const t = Date.now();
  const res = await fetch('http://127.0.0.1:8093/Patient', {
    method: 'POST',
    // The client of the local clients file (hub up) with a token from the local development key.
    headers: { 'content-type': 'application/fhir+json', ...(await localIngestAuth()) },
    body: JSON.stringify({
      resourceType: 'Patient',
      identifier: [{ system: 'urn:oid:2.16.840.1.113883.3.999.1', value: `MRN-DRILL-${run}-F` }],
      name: [{ family: 'Drillperson', given: ['Fay'] }],
    }),
    signal: AbortSignal.timeout(60_000),
  });
  const body = (await res.json()) as { resourceType?: string; issue?: { code?: string }[] };
  say(
    `FHIR POST /Patient -> ${res.status} ${body.resourceType ?? ''} ${body.issue?.[0]?.code ?? ''} after ${Date.now() - t} ms`,
  );
}

async function verify(
  ids: readonly string[],
): Promise<{ raw: Map<string, number>; events: Map<string, number> }> {
  const logger = createLogger({ name: 'drill', level: 'warn' });
  const kafka = createKafkaClient({ brokers: args.brokers.split(','), clientId: 'drill', logger });
  const wanted = new Set(ids);
  const raw = new Map<string, number>();
  for (const r of await scanTopic(kafka, 'hl7.raw.v1')) {
    const id = r.headers['hl7-control-id'];
    if (id && wanted.has(id)) raw.set(id, (raw.get(id) ?? 0) + 1);
  }
  const codec = createEventCodec(createRegistryClient(args.registry));
  const events = new Map<string, number>();
  for (const r of await scanTopic(kafka, 'clinical.patient.v1')) {
    if (!r.value) continue;
    const e = await codec.decode(r.value);
    const id = e.data.meta.source.messageId ?? '';
    if (!wanted.has(id)) continue;
    // Counted per record: the same event id twice would be a double write.
    events.set(id, (events.get(id) ?? 0) + 1);
  }
  return { raw, events };
}

async function main(): Promise<void> {
  const pid = Number(readFileSync(args['kafka-pid-file'], 'utf8').trim());
  const watch = watchReady();
  const stop = { now: false };
  const stats: SenderStats[] = Array.from({ length: num('senders') }, () => ({
    sent: [],
    codes: new Map(),
    maxWaitMs: 0,
  }));
  const senders = stats.map((s, i) => sender(i, stop, s));
  await new Promise((r) => setTimeout(r, num('before-seconds') * 1000));
  say(`SIGSTOP kafka (pid ${pid}) for ${num('pause-seconds')}s`);
  process.kill(pid, 'SIGSTOP');
  try {
    const resumeAt = Date.now() + num('pause-seconds') * 1000;
    await new Promise((r) => setTimeout(r, 2000));
    await fhirWrite();
    await new Promise((r) => setTimeout(r, Math.max(0, resumeAt - Date.now())));
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  say('SIGCONT kafka');
  await new Promise((r) => setTimeout(r, num('after-seconds') * 1000));
  stop.now = true;
  await Promise.all(senders);
  watch.stop();
  const codes = new Map<string, number>();
  for (const s of stats) for (const [c, n] of s.codes) codes.set(c, (codes.get(c) ?? 0) + n);
  const ids = stats.flatMap((s) => s.sent);
  say(`messages ${ids.length}; answers ${[...codes].map(([c, n]) => `${c} ${n}`).join(', ')}`);
  say(`longest wait for an answer: ${Math.max(...stats.map((s) => s.maxWaitMs))} ms`);
  const { raw, events } = await verify(ids);
  const lostRaw = ids.filter((id) => !raw.has(id)).length;
  const doubledRaw = [...raw.values()].filter((n) => n > 1).length;
  const lostEvents = ids.filter((id) => !events.has(id)).length;
  const doubledEvents = [...events.values()].filter((n) => n > 1).length;
  say(`hl7.raw.v1: ${raw.size} of ${ids.length} messages, lost ${lostRaw}, written twice ${doubledRaw}`);
  say(`clinical.patient.v1: lost ${lostEvents}, written twice ${doubledEvents}`);
  process.exit(lostRaw + doubledRaw + lostEvents + doubledEvents === 0 ? 0 : 1);
}

await main();
