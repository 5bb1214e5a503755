/**
 * What a Node consumer alone takes to read the replay benchmark's log on
 * this machine: fetching and decoding records, with no read model behind
 * them. The replay target of issue 23 asks a projection for half the speed
 * of a binary COPY of its rows; a consumer that cannot even read the log at
 * that speed bounds the ratio whatever the projection does. Sides, each
 * reading the whole log from the start under a group of its own, in
 * interleaved rounds (ABBA...):
 *
 * - `kafkajs`: the client the projection runner consumes with (eachBatch,
 *   the runner's fetch caps; scripts/bench/read-limit.ts, the read limit of
 *   `npm run bench`'s replay scenario), records counted, values not decoded;
 * - `kafkajs+avro`: the same, each value decoded by the hub's codec as the
 *   runner decodes it (`--skip <read model>` decodes without that read
 *   model's skipped fields, as its runner does);
 * - `platformatic`: @platformatic/kafka's consumer stream (the client the
 *   write path uses), the same caps, values left as buffers;
 * - `platformatic+avro`: the same, decoded by the hub's codec;
 * - `confluent`, `confluent+avro`: librdkafka's consumer
 *   (@confluentinc/kafka-javascript, consume(1000) in a loop, the same caps),
 *   built into the cache on first use (scripts/bench/native-kafka.ts); not in
 *   the default sides.
 *
 * Each read runs in a child process of its own (no JIT state, heap or
 * lingering client of another side), timed from its first record to its
 * last. Events/s and CPU per event (µs), median [IQR] over the rounds.
 *
 *   npx tsx scripts/bench-consume-limit.ts [--events 200000] [--rounds 4]
 *     [--sides kafkajs,kafkajs+avro,platformatic,platformatic+avro] [--skip billing]
 *
 * Uses KAFKA_BROKERS and SCHEMA_REGISTRY_URL (defaults: the dev stack); its
 * topics and subjects are its own and removed after. Plaintext brokers only
 * (the local stacks).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { Consumer, MessagesStreamModes } from '@platformatic/kafka';
import { kafkaEnv, loadConfig, z } from '../libs/config/index.js';
import { codecSkipping, createEventCodec, type EventCodec } from '../libs/events/codec.js';
import { EVENT_CONTRACTS, type EventType } from '../libs/events/index.js';
import { createRegistryClient } from '../libs/events/registry.js';
import {
  createKafkaClient,
  FETCH_PARTITION_MAX_BYTES,
  GROUPED_FETCH_MAX_BYTES,
} from '../libs/kafka/client.js';
import { createEventProducer } from '../libs/kafka/producer.js';
import { clinicalTopics } from '../libs/projections/topics.js';
import { readModelNamed } from '../libs/read-models/index.js';
import { createLogger } from '../libs/telemetry/logger.js';
import { syntheticEvents } from '../test/support/hospital-day.js';
import { spreadOf } from './bench/lib.js';
import { readLogNative } from './bench/native-kafka.js';
import { readLogOnce, type ReadLimit } from './bench/read-limit.js';
import {
  deleteSyntheticLog,
  prepareSyntheticLog,
  publishInChunks,
  type SyntheticLog,
} from './bench/synthetic-log.js';

const SIDES = [
  'kafkajs',
  'kafkajs+avro',
  'platformatic',
  'platformatic+avro',
  'confluent',
  'confluent+avro',
] as const;
type Side = (typeof SIDES)[number];
const isSide = (s: string): s is Side => (SIDES as readonly string[]).includes(s);

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '200000' },
    rounds: { type: 'string', default: '4' },
    sides: { type: 'string', default: 'kafkajs,kafkajs+avro,platformatic,platformatic+avro' },
    skip: { type: 'string' },
    // Internal: a child process reading one side (--read side --log id --group g --total n).
    read: { type: 'string' },
    log: { type: 'string' },
    group: { type: 'string' },
    total: { type: 'string' },
  },
});
const cfg = loadConfig(z.object({ ...kafkaEnv }));
const N = Number(values.events);
const ROUNDS = Number(values.rounds);
const sides = values.sides.split(',').map((s) => {
  if (!isSide(s)) throw new Error(`unknown side ${s}; one of ${SIDES.join(', ')}`);
  return s;
});
const id = values.log ?? `consume_${randomBytes(3).toString('hex')}`;
const logger = createLogger({ name: 'bench-consume-limit', level: 'error' });
const kafka = createKafkaClient({ brokers: cfg.KAFKA_BROKERS, clientId: id, logger });
const registry = createRegistryClient(cfg.SCHEMA_REGISTRY_URL);
const topic = (n: string) => `${n}.${id}`;
const topicFor = (t: EventType) => topic(EVENT_CONTRACTS[t].topic);
const baseCodec = createEventCodec(registry);
const skip = values.skip ? readModelNamed(values.skip)?.projection(clinicalTopics(topic)).skip : undefined;
if (values.skip && !skip) throw new Error(`read model ${values.skip} skips nothing (or is unknown)`);
const codec: EventCodec = skip ? codecSkipping(baseCodec, skip) : baseCodec;
const topics = clinicalTopics(topic);
const log: SyntheticLog = { kafka, registry, topic };

/** Reads the whole log with @platformatic/kafka's consumer stream, values as buffers; timed as readLogOnce. */
async function readPlatformatic(group: string, total: number, avro: boolean): Promise<ReadLimit> {
  const consumer = new Consumer({
    clientId: id,
    bootstrapBrokers: cfg.KAFKA_BROKERS,
    groupId: group,
    maxBytes: GROUPED_FETCH_MAX_BYTES,
    maxBytesPerPartition: FETCH_PARTITION_MAX_BYTES,
    autocommit: false,
  });
  try {
    const stream = await consumer.consume({ topics: [...topics], mode: MessagesStreamModes.EARLIEST });
    let seen = 0;
    let t0 = 0;
    let cpu0 = process.cpuUsage();
    for await (const m of stream) {
      if (t0 === 0) {
        t0 = performance.now();
        cpu0 = process.cpuUsage();
      }
      if (avro && codec.decodeIfResolved(m.value) === undefined) await codec.decode(m.value);
      if (++seen >= total) break;
    }
    const cpu = process.cpuUsage(cpu0);
    const seconds = (performance.now() - t0) / 1000;
    await stream.close();
    return { seconds, cpuUsPerEvent: (cpu.user + cpu.system) / total };
  } finally {
    await consumer.close();
  }
}

async function decodeValue(v: Buffer): Promise<void> {
  if (codec.decodeIfResolved(v) === undefined) await codec.decode(v);
}

/** Reads one side in this process; prints its figures (from the first record on) as one JSON line. */
async function readOne(side: Side, groupId: string, total: number): Promise<void> {
  const avro = side.endsWith('+avro');
  const r = side.startsWith('kafkajs')
    ? await readLogOnce({ kafka, topics, codec, groupId, total, decode: avro })
    : side.startsWith('confluent')
      ? await readLogNative({
          brokers: cfg.KAFKA_BROKERS,
          topics,
          groupId,
          total,
          fetchMaxBytes: GROUPED_FETCH_MAX_BYTES,
          partitionMaxBytes: FETCH_PARTITION_MAX_BYTES,
          ...(avro ? { onValue: decodeValue } : {}),
        })
      : await readPlatformatic(groupId, total, avro);
  process.stdout.write(`${JSON.stringify({ rate: total / r.seconds, cpu: r.cpuUsPerEvent })}\n`);
}

/** One side in a child process of its own: no JIT, heap or lingering client of another side in the way. */
function readInChild(side: Side, group: string, total: number): Promise<{ rate: number; cpu: number }> {
  const args = [...process.execArgv, process.argv[1] ?? '', '--read', side, '--log', id, '--group', group];
  args.push('--total', String(total), ...(values.skip ? ['--skip', values.skip] : []));
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const line = stdout.split('\n').find((l) => l.startsWith('{"rate"'));
      if (err || !line)
        reject(new Error(`${side} reader failed: ${err?.message ?? ''} ${stderr.slice(-2000)}`));
      else resolve(JSON.parse(line) as { rate: number; cpu: number });
    });
  });
}

async function main(): Promise<void> {
  await prepareSyntheticLog(log);
  const producer = createEventProducer({ kafka, codec: baseCodec, topicFor });
  await producer.connect();
  const events = syntheticEvents(N);
  await publishInChunks(producer, events, 2000);
  await producer.disconnect();
  process.stdout.write(`${events.length} events published; rounds alternate the order of the sides\n`);
  const seen: Record<string, { rate: number[]; cpu: number[] }> = {};
  for (let r = 0; r < ROUNDS; r++) {
    for (const side of r % 2 === 0 ? sides : [...sides].reverse()) {
      const { rate, cpu } = await readInChild(side, `hub.bench.${id}.${side}.${r}`, events.length);
      const s = (seen[side] ??= { rate: [], cpu: [] });
      s.rate.push(rate);
      s.cpu.push(cpu);
      process.stdout.write(
        `round ${r} ${side.padEnd(17)} ${rate.toFixed(0)} events/s, ${cpu.toFixed(1)} µs CPU/event\n`,
      );
    }
  }
  const spread = (xs: readonly number[], digits: number) => {
    const s = spreadOf(xs);
    return `${s.median.toFixed(digits)} [${s.q1.toFixed(digits)}-${s.q3.toFixed(digits)}]`;
  };
  for (const [side, s] of Object.entries(seen)) {
    process.stdout.write(
      `${side.padEnd(17)} events/s ${spread(s.rate, 0)}  CPU µs/event ${spread(s.cpu, 1)}  (median [IQR] of ${s.rate.length})\n`,
    );
  }
}

if (values.read) {
  const side = values.read;
  if (!isSide(side)) throw new Error(`unknown side ${side}`);
  await readOne(side, values.group ?? `hub.bench.${id}.${side}`, Number(values.total));
} else {
  try {
    await main();
  } finally {
    await deleteSyntheticLog(log);
  }
}
process.exit(0);
