// The hub's write path on two Kafka clients, A/B in one process: kafkajs
// (createEventProducer, as adapter-hl7 uses it) against @platformatic/kafka
// (createPlatformaticEventProducer). What adapter-hl7 writes per HL7
// message of the benchmark mix (scripts/bench/hl7.ts): the raw copy and the
// mapped events, both awaited until acks=all, by 32 "connections" in a
// closed loop (MLLP's original mode: the next message after the ACK). The
// sides alternate in short slices, in ABBA order, so that the VM's swings
// hit both alike; the ratio is taken per round and reported as median and
// IQR. Runs against the test stack (KAFKA_BROKERS, SCHEMA_REGISTRY_URL) on
// topics and subjects of its own, removed afterwards.
//
//   set -a; . /tmp/teststack.env; set +a
//   npx tsx scripts/bench/kafka-clients.ts [rounds] [sliceSeconds] [connections]
//   KC_SIDES=kafkajs,platformatic,platformatic-4 (default: the first two)
//   KC_SIDES=platformatic,confluent-1-l0,confluent-64-l1: librdkafka (scripts/bench/native-kafka.ts,
//   built into the cache on first use), confluent-<batches in flight>-l<linger.ms>
import { randomBytes } from 'node:crypto';
import { catalogTopicDefinitions, INGEST_TOPICS, registerAllSchemas } from '../../libs/events/contracts.js';
import { createEventCodec } from '../../libs/events/codec.js';
import { EVENT_CONTRACTS, type ClinicalEvent, type EventType } from '../../libs/events/index.js';
import { createRegistryClient } from '../../libs/events/registry.js';
import { mapHl7Message } from '../../libs/hl7/map.js';
import { DEFAULT_IDENTITY_POLICY } from '../../libs/identity/index.js';
import { deleteTopics, ensureTopics } from '../../libs/kafka/admin.js';
import { createKafkaClient } from '../../libs/kafka/client.js';
import { createPlatformaticEventProducer } from '../../libs/kafka/platformatic-producer.js';
import { createEventProducer, type EventProducer, type RawRecord } from '../../libs/kafka/producer.js';
import { createLogger } from '../../libs/telemetry/logger.js';
import { hl7Message } from './hl7.js';
import { createNativeEventProducer, parseNativeSide } from './native-kafka.js';

interface Message {
  raw: RawRecord;
  events: ClinicalEvent[];
  rawId: string;
}

interface Slice {
  side: string;
  messages: number;
  seconds: number;
  cpuUsPerMsg: number;
  latNs: number[];
}

const mapCtx = { recordedAt: 0, policy: DEFAULT_IDENTITY_POLICY, rawMessageRef: null, timeZone: 'UTC' };

/** The benchmark mix's content-valid messages, mapped once: raw record and events as the adapter writes them. */
function messages(n: number, rawTopic: string): Message[] {
  const out: Message[] = [];
  for (let i = 0; out.length < n; i++) {
    const m = hl7Message('KC', i);
    if (m.expect !== 'AA') continue;
    const bytes = Buffer.from(m.text);
    const mapped = mapHl7Message(bytes, mapCtx);
    if (mapped.kind !== 'mapped') continue;
    const rawId = `kc-raw-${i}`;
    const key = mapped.events[0]?.data.patientId ?? rawId;
    const headers = { 'hl7-raw-id': rawId, 'hl7-received-at': new Date().toISOString() };
    out.push({ raw: { topic: rawTopic, key, value: bytes, headers }, events: mapped.events, rawId });
  }
  return out;
}

/** One slice: `connections` closed loops, each awaiting its message's acks before the next. */
async function slice(
  side: string,
  producer: EventProducer,
  msgs: readonly Message[],
  connections: number,
  seconds: number,
): Promise<Slice> {
  const latNs: number[] = [];
  let next = 0;
  const until = performance.now() + seconds * 1000;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const loop = async () => {
    while (performance.now() < until) {
      const m = msgs[next++ % msgs.length];
      if (!m) throw new Error('no messages');
      const start = process.hrtime.bigint();
      // As IngestPipeline.publish: the raw copy and the events, both acknowledged.
      await Promise.all([
        producer.publishRaw([m.raw]),
        producer.publish(m.events, { 'hl7-raw-id': m.rawId }),
      ]);
      latNs.push(Number(process.hrtime.bigint() - start));
    }
  };
  await Promise.all(Array.from({ length: connections }, loop));
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return {
    side,
    messages: latNs.length,
    seconds: elapsed,
    cpuUsPerMsg: (cpu.user + cpu.system) / Math.max(1, latNs.length),
    latNs,
  };
}

/** Nearest-rank percentile of unsorted values. */
function pct(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? Number.NaN;
}

const quartiles = (xs: readonly number[]) => ({ p25: pct(xs, 25), p50: pct(xs, 50), p75: pct(xs, 75) });

function sideFactory(
  name: string,
  deps: {
    kafka: ReturnType<typeof createKafkaClient>;
    brokers: string[];
    common: Parameters<typeof createEventProducer>[0];
  },
): EventProducer {
  if (name === 'kafkajs') return createEventProducer(deps.common);
  const native = parseNativeSide(name);
  if (native)
    return createNativeEventProducer({
      ...deps.common,
      ...native,
      brokers: deps.brokers,
      clientId: `kc-${name}`,
    });
  const m = /^platformatic(?:-(\d+))?$/.exec(name);
  if (!m) throw new Error(`unknown side ${name}`);
  return createPlatformaticEventProducer({
    ...deps.common,
    brokers: deps.brokers,
    clientId: `kc-${name}`,
    maxInFlight: Number(m[1] ?? 1),
  });
}

async function main(): Promise<void> {
  const [rounds = 6, sliceSeconds = 3, connections = 32] = process.argv.slice(2).map(Number);
  const sides = (process.env['KC_SIDES'] ?? 'kafkajs,platformatic').split(',');
  const brokers = (process.env['KAFKA_BROKERS'] ?? '127.0.0.1:29092').split(',');
  const registryUrl = process.env['SCHEMA_REGISTRY_URL'] ?? 'http://127.0.0.1:28081/apis/ccompat/v7';
  const id = `kc_${randomBytes(4).toString('hex')}`;
  const topic = (n: string) => `${n}.${id}`;
  const topicFor = (t: EventType) => topic(EVENT_CONTRACTS[t].topic);
  const logger = createLogger({ name: 'bench-kafka-clients', level: 'silent' });
  const kafka = createKafkaClient({ brokers, clientId: id, logger });
  const registry = createRegistryClient(registryUrl);
  const defs = catalogTopicDefinitions(topic);
  await ensureTopics(kafka, defs);
  await registerAllSchemas(registry, { topicFor });
  const codec = createEventCodec(registry);
  await codec.warmUp(undefined, topicFor);
  const msgs = messages(2_000, topic(INGEST_TOPICS.hl7Raw));
  const common = { kafka, codec, topicFor, ackTimeoutMs: 10_000 };
  const producers = new Map(sides.map((s) => [s, sideFactory(s, { kafka, brokers, common })]));
  const producerOf = (s: string): EventProducer => {
    const p = producers.get(s);
    if (!p) throw new Error(`no producer for ${s}`);
    return p;
  };
  try {
    for (const p of producers.values()) await p.connect();
    const recs = msgs.reduce((n, m) => n + 1 + m.events.length, 0) / msgs.length;
    console.log(
      `${msgs.length} messages, ${recs.toFixed(2)} records each; ${connections} connections; ` +
        `${rounds} rounds x ${sides.length} sides x 2 slices of ${sliceSeconds}s (ABBA); node ${process.version}`,
    );
    for (const s of sides) await slice(s, producerOf(s), msgs, connections, 2); // warm-up
    const slices: Slice[][] = [];
    for (let r = 0; r < rounds; r++) {
      const order = [...sides, ...[...sides].reverse()];
      const got: Slice[] = [];
      for (const s of order) got.push(await slice(s, producerOf(s), msgs, connections, sliceSeconds));
      slices.push(got);
      const line = sides.map((s) => {
        const mine = got.filter((g) => g.side === s);
        const rate = mine.reduce((n, g) => n + g.messages, 0) / mine.reduce((n, g) => n + g.seconds, 0);
        return `${s} ${Math.round(rate)}/s`;
      });
      console.log(`round ${r + 1}: ${line.join(', ')}`);
    }
    report(sides, slices);
  } finally {
    for (const p of producers.values()) await p.disconnect().catch(() => undefined);
    await deleteTopics(
      kafka,
      defs.map((d) => d.name),
    ).catch(() => undefined);
    for (const t of Object.keys(EVENT_CONTRACTS) as EventType[]) {
      await registry.deleteSubject(`${topicFor(t)}-${EVENT_CONTRACTS[t].fullName}`).catch(() => undefined);
    }
  }
}

function report(sides: string[], slices: Slice[][]): void {
  const base = sides[0] ?? 'kafkajs';
  const rateOf = (round: Slice[], s: string) => {
    const mine = round.filter((g) => g.side === s);
    return mine.reduce((n, g) => n + g.messages, 0) / mine.reduce((n, g) => n + g.seconds, 0);
  };
  console.log(
    '\n| side | msg/s median (IQR) | ack p50 ms | ack p99 ms (median of slices) | CPU µs/msg median | ratio to ' +
      base +
      ' median (IQR) |',
  );
  console.log('|---|---|---|---|---|---|');
  for (const s of sides) {
    const rates = quartiles(slices.map((r) => rateOf(r, s)));
    const mine = slices.flat().filter((g) => g.side === s);
    const p50 = pct(
      mine.flatMap((g) => g.latNs),
      50,
    );
    const p99s = quartiles(mine.map((g) => pct(g.latNs, 99)));
    const cpu = quartiles(mine.map((g) => g.cpuUsPerMsg));
    const ratio = quartiles(slices.map((r) => rateOf(r, s) / rateOf(r, base)));
    const ms = (ns: number) => (ns / 1e6).toFixed(1);
    console.log(
      `| ${s} | ${Math.round(rates.p50)} (${Math.round(rates.p25)}-${Math.round(rates.p75)}) | ${ms(p50)} | ` +
        `${ms(p99s.p50)} | ${Math.round(cpu.p50)} | ${ratio.p50.toFixed(2)} (${ratio.p25.toFixed(2)}-${ratio.p75.toFixed(2)}) |`,
    );
  }
}

await main();
