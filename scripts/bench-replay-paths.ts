/**
 * The bulk path (binary COPY of new rows) against the per-event path
 * (statements) of the projection runner, over the same published log, in
 * interleaved rounds (ABBA): wall time, this process's CPU (the runner:
 * fetch, decode, evolve, encode) and the CPU of its Postgres backends (from
 * /proc), so that a noisy machine still shows which side each path costs.
 *
 *   npx tsx scripts/bench-replay-paths.ts [--events 200000] [--only portal] [--rounds 4]
 *     [--compare pipeline|fetch] [--fetch-bytes n] [--path bulk] [--cpu-profile dir] [--gc] [--mix stays] [--prior-links 20000]
 *
 * `--mix stays` publishes the bench suite's stays (scripts/bench/events.ts:
 * five observations per result, ~1 kB an event) instead of the hospital-day
 * synthetic log (~290 bytes an event). Each replay's runner CPU is also
 * printed on its own line (`round r ...`): the first replay of a process
 * runs cold, so an A/B of two trees can compare the later rounds alone.
 * `--compare fetch` pairs the bulk path with fetches capped as a
 * service's default KAFKA_FETCH_MAX_BYTES caps them (DEFAULT_FETCH_MAX_BYTES:
 * 2 MiB; 4 MiB when the ninth session of issue 23 compared the two) against
 * `--fetch-bytes` (default half of that), per partition at most 2 MiB and
 * never more than the fetch.
 * `--compare pipeline` pairs the bulk path applied one fetch ahead (the
 * default) with the bulk path applied fetch by fetch, instead of the paths.
 * `--path <name>` runs only that one of the pair (an A/B of two trees runs
 * the same path in each, alternating the processes). `--cpu-profile <dir>`
 * writes a V8 CPU profile of each replay (runner start until lag 0, not the
 * publishing before it) into dir, for `npm run bench:profile`. `--gc` adds
 * the garbage collections per 1,000 events (minor and major) and their
 * milliseconds. `--prior-links <n>` gives each build's read model n merges
 * of patients outside the log before it starts, as one years old holds them
 * (every transaction of the hospital-day log holds a merge).
 *
 * Uses KAFKA_BROKERS, SCHEMA_REGISTRY_URL, DATABASE_URL (defaults: the dev
 * stack); its topics, subjects and schemas are its own and removed after.
 * Postgres must be local (backends' CPU is read from /proc).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { databaseEnv, kafkaEnv, loadConfig, z } from '../libs/config/index.js';
import { createDb, dropSchema } from '../libs/db/index.js';
import { createEventCodec } from '../libs/events/codec.js';
import { EVENT_CONTRACTS, type EventType } from '../libs/events/index.js';
import { createRegistryClient } from '../libs/events/registry.js';
import { DEFAULT_FETCH_MAX_BYTES, DEFAULT_FETCH_PARTITION_MAX_BYTES } from '../libs/service/runtime.js';
import { createKafkaClient } from '../libs/kafka/client.js';
import { createEventProducer } from '../libs/kafka/producer.js';
import { lagOf } from '../libs/projections/inspect.js';
import { createProjectionRunner, migrateProjection } from '../libs/projections/runner.js';
import { clinicalTopics } from '../libs/projections/topics.js';
import { READ_MODEL_NAMES, readModelNamed } from '../libs/read-models/index.js';
import { createLogger } from '../libs/telemetry/logger.js';
import { syntheticEvents } from '../test/support/hospital-day.js';
import { eventMix } from './bench/events.js';
import {
  deleteSyntheticLog,
  prepareSyntheticLog,
  publishInChunks,
  type SyntheticLog,
} from './bench/synthetic-log.js';
import { spreadOf } from './bench/lib.js';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '200000' },
    only: { type: 'string' },
    rounds: { type: 'string', default: '4' },
    compare: { type: 'string', default: 'paths' },
    path: { type: 'string' },
    'cpu-profile': { type: 'string' },
    gc: { type: 'boolean', default: false },
    mix: { type: 'string', default: 'hospital-day' },
    'prior-links': { type: 'string', default: '0' },
    'fetch-bytes': { type: 'string', default: String(DEFAULT_FETCH_MAX_BYTES / 2) },
  },
});
const cfg = loadConfig(z.object({ ...kafkaEnv, ...databaseEnv }));
const N = Number(values.events);
const ROUNDS = Number(values.rounds);
const PRIOR_LINKS = Number(values['prior-links']);
const FETCH_BYTES = Number(values['fetch-bytes']);
interface ReplayPath {
  name: string;
  bulkMinEvents: number;
  pipeline: boolean;
  /** A fetch's cap over all partitions, as a service's KAFKA_FETCH_MAX_BYTES sets it; the runner's own without. */
  fetchMaxBytes?: number;
}
const ALL_PATHS: ReplayPath[] =
  values.compare === 'pipeline'
    ? [
        { name: 'serial', bulkMinEvents: 1000, pipeline: false },
        { name: 'pipelined', bulkMinEvents: 1000, pipeline: true },
      ]
    : values.compare === 'fetch'
      ? [
          { name: 'default', bulkMinEvents: 1000, pipeline: true, fetchMaxBytes: DEFAULT_FETCH_MAX_BYTES },
          { name: 'fetch', bulkMinEvents: 1000, pipeline: true, fetchMaxBytes: FETCH_BYTES },
        ]
      : [
          { name: 'per-event', bulkMinEvents: Number.POSITIVE_INFINITY, pipeline: true },
          { name: 'bulk', bulkMinEvents: 1000, pipeline: true },
        ];
const PATHS = values.path ? ALL_PATHS.filter((p) => p.name === values.path) : ALL_PATHS;
if (PATHS.length === 0)
  throw new Error(`unknown path ${values.path}; one of ${ALL_PATHS.map((p) => p.name).join(', ')}`);
const id = `paths_${randomBytes(3).toString('hex')}`;
const logger = createLogger({ name: 'bench-replay-paths', level: 'error' });
const kafka = createKafkaClient({ brokers: cfg.KAFKA_BROKERS, clientId: id, logger });
const registry = createRegistryClient(cfg.SCHEMA_REGISTRY_URL);
const kafkaFetching = (maxBytes: number) =>
  createKafkaClient({
    brokers: cfg.KAFKA_BROKERS,
    clientId: id,
    logger,
    fetchLimits: { maxBytes, maxBytesPerPartition: Math.min(maxBytes, DEFAULT_FETCH_PARTITION_MAX_BYTES) },
  });
const topic = (n: string) => `${n}.${id}`;
const topicFor = (t: EventType) => topic(EVENT_CONTRACTS[t].topic);
const codec = createEventCodec(registry);
const producer = createEventProducer({ kafka, codec, topicFor });
const url = new URL(cfg.DATABASE_URL);
url.searchParams.set('application_name', id);
const db = createDb(url.toString(), { pool: { min: 0, max: 4 } });
const topics = clinicalTopics(topic);
const dlq = `hub.dlq.${id}`;
const log: SyntheticLog = { kafka, registry, topic, extraTopics: [dlq] };

/** CPU seconds of this run's Postgres backends so far (utime + stime from /proc). */
async function postgresCpu(): Promise<number> {
  const r = await db.raw<{ rows: { pid: number }[] }>(
    'select pid from pg_stat_activity where application_name = ?',
    [id],
  );
  let ticks = 0;
  for (const { pid } of r.rows) {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    ticks += Number(stat[11]) + Number(stat[12]);
  }
  return ticks / 100;
}

/** Garbage collections seen since `start()`: counts and milliseconds, minor (scavenges) and major. */
interface GcCounts {
  minor: number;
  minorMs: number;
  major: number;
  majorMs: number;
}

function gcWatch(): { start(): void; stop(): GcCounts } {
  let n: GcCounts = { minor: 0, minorMs: 0, major: 0, majorMs: 0 };
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      // Node puts the kind in `detail` (typed as unknown on PerformanceEntry).
      const kind = (e as unknown as { detail?: { kind?: number } | null }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MINOR) {
        n.minor += 1;
        n.minorMs += e.duration;
      } else {
        n.major += 1;
        n.majorMs += e.duration;
      }
    }
  });
  return {
    start() {
      n = { minor: 0, minorMs: 0, major: 0, majorMs: 0 };
      obs.observe({ entryTypes: ['gc'] });
    },
    stop() {
      obs.disconnect();
      return n;
    },
  };
}

/** A V8 CPU profile of what runs between `start()` and `stop(file)`, written to file. */
function cpuProfiler(): { start(): Promise<void>; stop(file: string): Promise<void> } {
  const session = new Session();
  session.connect();
  return {
    async start() {
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
    },
    async stop(file) {
      const { profile } = await session.post('Profiler.stop');
      await writeFile(file, JSON.stringify(profile));
    },
  };
}

/** Median and interquartile range, as `m [q1–q3]`. */
const spread = (xs: readonly number[], digits: number) => {
  const s = spreadOf(xs);
  return `${s.median.toFixed(digits)} [${s.q1.toFixed(digits)}–${s.q3.toFixed(digits)}]`;
};

try {
  await prepareSyntheticLog(log);
  await producer.connect();
  // The events are not kept: the replays' heap (and its major collections) is the runner's alone.
  const published = await (async () => {
    if (values.mix !== 'hospital-day' && values.mix !== 'stays')
      throw new Error(`unknown mix ${values.mix}; one of hospital-day, stays`);
    const events = values.mix === 'stays' ? eventMix(N).slice(0, N) : syntheticEvents(N);
    await publishInChunks(producer, events, 2000);
    return events.length;
  })();
  process.stdout.write(`${published} events published; rounds in ABBA order\n`);
  for (const name of values.only ? values.only.split(',') : READ_MODEL_NAMES) {
    const projection = readModelNamed(name)?.projection(topics);
    if (!projection) throw new Error(`unknown projection ${name}`);
    const seen: Record<string, { wall: number[]; node: number[]; pg: number[]; gc: string[] }> = {};
    for (let r = 0; r < ROUNDS; r++) {
      for (const path of r % 2 === 0 ? PATHS : [...PATHS].reverse()) {
        const schema = `${id}_${name}_${PATHS.indexOf(path)}_${r}`;
        await migrateProjection(db, schema, projection);
        if (PRIOR_LINKS > 0) {
          // Merges of patients outside the log, as a read model years old holds them.
          await db.raw(
            `insert into ??.patient_links (merged_id, survivor_id) select 'prior-' || g, 'prior-s-' || g from generate_series(1, ?::int) g`,
            [schema, PRIOR_LINKS],
          );
        }
        const runner = createProjectionRunner({
          projection,
          schema,
          groupId: `hub.bench.${schema}`,
          db,
          kafka: path.fetchMaxBytes === undefined ? kafka : kafkaFetching(path.fetchMaxBytes),
          codec,
          producer,
          dlqTopic: dlq,
          logger,
          bulkMinEvents: path.bulkMinEvents,
          pipeline: path.pipeline,
        });
        const pg0 = await postgresCpu();
        const profileDir = values['cpu-profile'];
        const profiler = profileDir ? cpuProfiler() : null;
        await profiler?.start();
        const gc = values.gc ? gcWatch() : null;
        gc?.start();
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        await runner.start();
        while ((await lagOf(db, kafka, schema, topics)).lag !== 0n)
          await new Promise((x) => setTimeout(x, 100));
        const wall = (performance.now() - t0) / 1000;
        const cpu = process.cpuUsage(cpu0);
        const gcs = gc?.stop();
        if (profileDir && profiler) {
          mkdirSync(profileDir, { recursive: true });
          await profiler.stop(join(profileDir, `${name}-${path.name}-${r}.cpuprofile`));
        }
        const pg = (await postgresCpu()) - pg0;
        await runner.stop();
        await dropSchema(db, schema);
        const s = (seen[path.name] ??= { wall: [], node: [], pg: [], gc: [] });
        if (gcs) {
          const per = (x: number) => ((x * 1000) / N).toFixed(2);
          s.gc.push(
            `minor ${per(gcs.minor)} (${per(gcs.minorMs)} ms) major ${per(gcs.major)} (${per(gcs.majorMs)} ms)`,
          );
        }
        s.wall.push(wall);
        s.node.push((cpu.user + cpu.system) / 1e6);
        // Each replay on its own line: the first of a process runs cold, an A/B of trees may want the others.
        process.stdout.write(
          `round ${r} ${name} ${path.name} runner µs/event ${((cpu.user + cpu.system) / N).toFixed(1)} wall ${wall.toFixed(1)} s\n`,
        );
        s.pg.push(pg);
      }
    }
    for (const [path, s] of Object.entries(seen)) {
      process.stdout.write(
        `${name.padEnd(10)} ${path.padEnd(9)} events/s ${spread(
          s.wall.map((w) => N / w),
          0,
        )}  runner µs/event ${spread(
          s.node.map((c) => (c * 1e6) / N),
          1,
        )}  Postgres µs/event ${spread(
          s.pg.map((c) => (c * 1e6) / N),
          1,
        )}  ` +
          `(median [IQR] of ${s.wall.length}; walls ${s.wall.map((w) => w.toFixed(1)).join(', ')} s)\n` +
          (s.gc.length > 0
            ? `${name.padEnd(10)} ${path.padEnd(9)} GC per 1,000 events: ${s.gc.join('; ')}\n`
            : ''),
      );
    }
  }
} finally {
  await producer.disconnect().catch(() => undefined);
  await deleteSyntheticLog(log);
  await db.destroy();
}
process.exit(0);
