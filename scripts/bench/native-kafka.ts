// The native Kafka client, @confluentinc/kafka-javascript (librdkafka), as a
// third side of the client A/Bs (scripts/bench/kafka-clients.ts for the
// write path, scripts/bench-consume-limit.ts for the read path). Issue 23
// named it as the alternative that keeps several idempotent requests in
// flight. It is not a dependency of the hub: it lost both A/Bs on this VM
// (docs/benchmarks.md, "Issue 23, eleventh session"), and its install
// compiles librdkafka (about two minutes on two cores) against Debian's
// libraries. So the benches build it once into the project's cache, on
// demand, and load it from there.
//
// The npm package carries librdkafka's source. By default its install would
// fetch a prebuilt binary from github.com and, failing that, let librdkafka's
// configure download its dependencies; neither is reachable here. Built with
// CKJS_LINKING=dynamic it links Debian's libssl, libsasl2, zlib, libzstd and
// liblz4 instead, and node-gyp takes the headers of the running Node.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { IHeaders } from 'kafkajs';
import type { HubError } from '../../libs/errors/index.js';
import { isHubError } from '../../libs/errors/index.js';
import {
  coalescingEventProducer,
  mapKafkaError,
  type EventProducer,
  type EventProducerOptions,
  type ProduceTransport,
  type RawRecord,
} from '../../libs/kafka/producer.js';
import type { ReadLimit } from './read-limit.js';

export const NATIVE_KAFKA_PACKAGE = '@confluentinc/kafka-javascript';
export const NATIVE_KAFKA_VERSION = '1.10.1';
/** What librdkafka's configure needs to find with CKJS_LINKING=dynamic (Debian bookworm). */
export const NATIVE_KAFKA_DEBIAN_PACKAGES = [
  'g++',
  'make',
  'python3',
  'pkg-config',
  'libssl-dev',
  'libsasl2-dev',
  'zlib1g-dev',
  'libzstd-dev',
  'liblz4-dev',
];

// The few parts of the package's API the benches use, typed here because the
// package is not installed in the project.
type NativeHeader = Record<string, string | Buffer>;
interface NativeError extends Error {
  code?: number;
  isRetriable?: boolean;
}
interface DeliveryReport {
  topic: string;
  partition: number;
  offset: number;
  opaque?: unknown;
}
interface NativeProducer {
  connect(opts: { timeout: number }, cb: (err: NativeError | null) => void): unknown;
  disconnect(timeout: number, cb: () => void): unknown;
  setPollInBackground(set: boolean): void;
  produce(
    topic: string,
    partition: null,
    value: Buffer | null,
    key: string | Buffer | null,
    timestamp: null,
    opaque: unknown,
    headers?: NativeHeader[],
  ): unknown;
  on(event: 'delivery-report', cb: (err: NativeError | null, report: DeliveryReport) => void): unknown;
}
interface NativeMessage {
  value: Buffer | null;
}
interface NativeConsumer {
  connect(opts: object, cb: (err: NativeError | null) => void): unknown;
  disconnect(cb: () => void): unknown;
  subscribe(topics: string[]): unknown;
  consume(n: number, cb: (err: NativeError | null, messages: NativeMessage[]) => void): unknown;
}
type Config = Record<string, string | number | boolean>;
interface NativeKafka {
  librdkafkaVersion: string;
  Producer: new (conf: Config) => NativeProducer;
  KafkaConsumer: new (conf: Config, topicConf: Config) => NativeConsumer;
}

export function nativeKafkaDir(home = homedir()): string {
  return join(home, '.cache', 'clinical-hub', `native-kafka-${NATIVE_KAFKA_VERSION}`);
}

/** Where the built addon is found once the package is installed in `dir`. */
const addonPath = (dir: string) =>
  join(
    dir,
    'node_modules',
    ...NATIVE_KAFKA_PACKAGE.split('/'),
    'build',
    'Release',
    'confluent-kafka-javascript.node',
  );

/** The environment of the build: dynamic linking, from source, the running Node's headers. */
export function nativeBuildEnv(env: NodeJS.ProcessEnv, execPath: string): NodeJS.ProcessEnv {
  return {
    ...env,
    CKJS_LINKING: 'dynamic',
    npm_config_build_from_source: 'true',
    // node-gyp would download the headers from nodejs.org; the Node this runs on has them.
    npm_config_nodedir: dirname(dirname(execPath)),
  };
}

/** Builds the package into the cache once; later calls find it there. Returns its directory. */
export function ensureNativeKafka(dir = nativeKafkaDir()): string {
  if (existsSync(addonPath(dir))) return dir;
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ private: true, dependencies: { [NATIVE_KAFKA_PACKAGE]: NATIVE_KAFKA_VERSION } }),
  );
  process.stderr.write(
    `native-kafka: building ${NATIVE_KAFKA_PACKAGE}@${NATIVE_KAFKA_VERSION} into ${dir} (once)\n`,
  );
  try {
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--no-save'], {
      cwd: dir,
      env: nativeBuildEnv(process.env, process.execPath),
      stdio: ['ignore', 'inherit', 'inherit'],
    });
  } catch {
    throw new Error(
      `native-kafka: the build failed; it needs ${NATIVE_KAFKA_DEBIAN_PACKAGES.join(' ')} ` +
        '(apt-get install -y ...), then run again',
    );
  }
  if (!existsSync(addonPath(dir)))
    throw new Error(`native-kafka: no addon at ${addonPath(dir)} after the build`);
  return dir;
}

let loaded: NativeKafka | undefined;
export function loadNativeKafka(): NativeKafka {
  if (loaded) return loaded;
  const dir = ensureNativeKafka();
  loaded = createRequire(join(dir, 'package.json'))(NATIVE_KAFKA_PACKAGE) as NativeKafka;
  return loaded;
}

/** kafkajs-style headers as librdkafka's binding takes them: one single-key object per header value. */
export function nativeHeaders(h: IHeaders | undefined): NativeHeader[] | undefined {
  if (!h) return undefined;
  const out: NativeHeader[] = [];
  for (const k in h) {
    const v = h[k];
    if (v === undefined || !Object.hasOwn(h, k)) continue;
    for (const x of Array.isArray(v) ? v : [v]) out.push({ [k]: x });
  }
  return out;
}

/** librdkafka's error codes that a resend may cure: timed out (-185), transport (-195), all brokers down (-187). */
const RETRIABLE_CODES = new Set([-185, -187, -195]);

export function mapNativeError(err: unknown, what = 'kafka write'): HubError {
  if (isHubError(err)) return err;
  const e: NativeError = err instanceof Error ? err : new Error(String(err));
  const retriable = e.isRetriable === true || (e.code !== undefined && RETRIABLE_CODES.has(e.code));
  return mapKafkaError({ name: `librdkafka ${e.code ?? e.name}`, message: e.message, retriable }, what, err);
}

export interface NativeSide {
  /** Coalesced batches handed to librdkafka at once; it pipelines them (up to 5 requests in flight). */
  maxInFlight: number;
  /** librdkafka's linger.ms. */
  lingerMs: number;
}

/** `confluent[-<batches in flight>][-l<linger ms>]`, e.g. confluent-64-l1; undefined for another side. */
export function parseNativeSide(name: string): NativeSide | undefined {
  const m = /^confluent(?:-(\d+))?(?:-l(\d+(?:\.\d+)?))?$/.exec(name);
  if (!m) return undefined;
  return { maxInFlight: Number(m[1] ?? 1), lingerMs: Number(m[2] ?? 0) };
}

interface Batch {
  left: number;
  failed: unknown;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** One record's delivery report: the batch is answered when its last record is. */
function settle(batch: Batch, err: unknown): void {
  if (err && batch.failed === undefined) batch.failed = err;
  if (--batch.left > 0) return;
  if (batch.failed === undefined) batch.resolve();
  else batch.reject(mapNativeError(batch.failed));
}

function nativeTransport(opts: { brokers: string[]; clientId: string } & NativeSide): ProduceTransport {
  const { Producer } = loadNativeKafka();
  const producer = new Producer({
    'metadata.broker.list': opts.brokers.join(','),
    'client.id': opts.clientId,
    'enable.idempotence': true,
    acks: -1,
    'linger.ms': opts.lingerMs,
    // As the hub's writer bounds a request (DELIVERY_TIMEOUT_MS).
    'message.timeout.ms': 120_000,
    // Kafka's Java partitioner for keyed records, as the hub's (libs/kafka/partitioner.ts).
    partitioner: 'murmur2_random',
    dr_cb: true,
  });
  producer.on('delivery-report', (err, report) => settle(report.opaque as Batch, err));
  return {
    connect: () =>
      new Promise<void>((resolve, reject) => {
        producer.connect({ timeout: 10_000 }, (err) => {
          if (err) return reject(mapNativeError(err, 'kafka connect'));
          // Delivery reports reach JS from librdkafka's background thread, no polling timer.
          producer.setPollInBackground(true);
          resolve();
        });
      }),
    disconnect: () => new Promise<void>((resolve) => producer.disconnect(5_000, resolve)),
    send: (records: readonly RawRecord[]) =>
      new Promise<void>((resolve, reject) => {
        const batch: Batch = { left: records.length, failed: undefined, resolve, reject };
        if (records.length === 0) return resolve();
        for (const r of records) {
          try {
            producer.produce(r.topic, null, r.value, r.key, null, batch, nativeHeaders(r.headers));
          } catch (err) {
            // Not queued (queue full, unknown topic): no report will come for it.
            settle(batch, err);
          }
        }
      }),
  };
}

/** The hub's EventProducer semantics (coalescing, headers, ack deadline) over librdkafka. */
export function createNativeEventProducer(
  opts: EventProducerOptions & { brokers: string[]; clientId: string } & NativeSide,
): EventProducer {
  return coalescingEventProducer(opts, () => nativeTransport(opts), opts.maxInFlight);
}

export interface NativeReadOptions {
  brokers: string[];
  topics: readonly string[];
  groupId: string;
  total: number;
  fetchMaxBytes: number;
  partitionMaxBytes: number;
  /** Called with each value; the read waits for it (decoding). */
  onValue?: (value: Buffer) => Promise<void> | void;
  /** Messages per consume call. */
  batch?: number;
}

/** Reads the log once with librdkafka's consumer; timed as readLogOnce, from the first record. */
export async function readLogNative(o: NativeReadOptions): Promise<ReadLimit> {
  const { KafkaConsumer } = loadNativeKafka();
  const consumer = new KafkaConsumer(
    {
      'metadata.broker.list': o.brokers.join(','),
      'group.id': o.groupId,
      'enable.auto.commit': false,
      'fetch.max.bytes': o.fetchMaxBytes,
      'max.partition.fetch.bytes': o.partitionMaxBytes,
    },
    { 'auto.offset.reset': 'earliest' },
  );
  await new Promise<void>((resolve, reject) =>
    consumer.connect({}, (err) => (err ? reject(mapNativeError(err, 'kafka connect')) : resolve())),
  );
  try {
    consumer.subscribe([...o.topics]);
    let seen = 0;
    let t0 = 0;
    let cpu0 = process.cpuUsage();
    while (seen < o.total) {
      const messages = await new Promise<NativeMessage[]>((resolve, reject) =>
        consumer.consume(o.batch ?? 1_000, (err, m) =>
          err ? reject(mapNativeError(err, 'kafka read')) : resolve(m),
        ),
      );
      if (messages.length > 0 && t0 === 0) {
        t0 = performance.now();
        cpu0 = process.cpuUsage();
      }
      if (o.onValue) for (const m of messages) if (m.value) await o.onValue(m.value);
      seen += messages.length;
    }
    const cpu = process.cpuUsage(cpu0);
    return { seconds: (performance.now() - t0) / 1000, cpuUsPerEvent: (cpu.user + cpu.system) / o.total };
  } finally {
    await new Promise<void>((resolve) => consumer.disconnect(resolve));
  }
}
