// The broker's own ceiling on this machine: Kafka's ProducerPerformance and
// EndToEndLatency tools (org.apache.kafka:kafka-tools, the same jars the
// local stack runs), with acks=all, the hub's partition count and the hub's
// median record size.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { TOPIC_CATALOG } from '../../libs/events/index.js';
import { deleteTopics, ensureTopics } from '../../libs/kafka/admin.js';
import { createKafkaClient } from '../../libs/kafka/client.js';
import { createLogger } from '../../libs/telemetry/logger.js';
import { medianBy, type BenchEnv, type Figure } from './lib.js';

function java(env: BenchEnv, mainClass: string, args: string[]): Promise<string> {
  const cp = `${env.cfg.kafka.libsDir}/*`;
  const log4j = join(env.cfg.dataDir, 'kafka-log4j2.yaml');
  return new Promise((resolve, reject) => {
    const child = spawn(
      'java',
      ['-Xmx512m', `-Dlog4j2.configurationFile=${log4j}`, '-cp', cp, mainClass, ...args],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${mainClass} exited ${code}: ${out.slice(-2000)}`)),
    );
  });
}

export interface KafkaLimits {
  /** Median of the ProducerPerformance runs. */
  producerRecordsPerSec: number;
  /** records/s of each ProducerPerformance run, in order. */
  producerRuns: number[];
  producerP99Ms: number;
  e2eP50Ms: number;
  e2eP99Ms: number;
  e2eP999Ms: number;
}

/** Runs both tools on a throw-away topic shaped like the hub's topics. */
export async function measureKafkaLimits(
  env: BenchEnv,
  recordSize: number,
  records: number,
  /** ProducerPerformance runs; the median is the limit (one short run is at the mercy of a GC or a log roll). */
  repeats = 3,
): Promise<KafkaLimits> {
  const partitions = TOPIC_CATALOG[0]?.partitions ?? 6;
  const topic = `bench.limit.${Date.now()}`;
  const kafka = createKafkaClient({
    brokers: env.stack.kafka.brokers,
    clientId: 'bench-limits',
    logger: createLogger({ name: 'bench', level: 'silent' }),
  });
  await ensureTopics(kafka, [{ name: topic, partitions, retentionMs: 3_600_000 }]);
  try {
    const runs: { rate: number; p99: number }[] = [];
    for (let i = 0; i < repeats; i++) {
      env.log(
        `kafka limit: ProducerPerformance ${i + 1}/${repeats}, ${records} records of ${recordSize} B, acks=all`,
      );
      const perf = await java(env, 'org.apache.kafka.tools.ProducerPerformance', [
        '--topic',
        topic,
        '--num-records',
        String(records),
        '--record-size',
        String(recordSize),
        '--throughput',
        '-1',
        '--producer-props',
        `bootstrap.servers=${env.stack.kafka.brokers.join(',')}`,
        'acks=all',
        'enable.idempotence=true',
      ]);
      // "N records sent, X records/sec (Y MB/sec), A ms avg latency, M ms max latency, a ms 50th, b ms 95th, c ms 99th, d ms 99.9th."
      const last = perf
        .trim()
        .split('\n')
        .filter((l) => l.includes('records sent'))
        .at(-1);
      runs.push({
        rate: Number(/([\d.]+) records\/sec/.exec(last ?? '')?.[1]),
        p99: Number(/(\d+) ms 99th/.exec(last ?? '')?.[1]),
      });
    }
    const median = medianBy(runs, (r) => r.rate) ?? { rate: Number.NaN, p99: Number.NaN };

    const e2eMessages = Math.max(1000, Math.round(records / 50));
    env.log(`kafka limit: EndToEndLatency, ${e2eMessages} messages of ${recordSize} B, acks=all`);
    const e2e = await java(env, 'org.apache.kafka.tools.EndToEndLatency', [
      env.stack.kafka.brokers.join(','),
      topic,
      String(e2eMessages),
      'all',
      String(recordSize),
    ]);
    // "Percentiles: 50th = 1, 99th = 3, 99.9th = 7"
    const m = /50th = ([\d.]+), 99th = ([\d.]+), 99\.9th = ([\d.]+)/.exec(e2e);
    return {
      producerRecordsPerSec: median.rate,
      producerRuns: runs.map((r) => r.rate),
      producerP99Ms: median.p99,
      e2eP50Ms: Number(m?.[1]),
      e2eP99Ms: Number(m?.[2]),
      e2eP999Ms: Number(m?.[3]),
    };
  } finally {
    await deleteTopics(kafka, [topic]).catch(() => undefined);
  }
}

export function kafkaLimitFigures(l: KafkaLimits): Figure[] {
  return [
    {
      name: 'kafka ProducerPerformance',
      value: l.producerRecordsPerSec,
      unit: 'records/s',
      better: 'higher',
    },
    { name: 'kafka producer p99', value: l.producerP99Ms, unit: 'ms', better: 'lower' },
    { name: 'kafka EndToEndLatency p50', value: l.e2eP50Ms, unit: 'ms', better: 'lower' },
    { name: 'kafka EndToEndLatency p99', value: l.e2eP99Ms, unit: 'ms', better: 'lower' },
  ];
}
