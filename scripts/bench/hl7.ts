// Scenario 1, HL7 end to end: the real adapter (services/adapter-hl7) and
// projector-portal as child processes on the bench stack, driven over MLLP
// by 1, 8 and 32 connections, closed loop (send, await ACK, send) at maximum
// and open loop at half the 32-connection maximum. Ingest-to-visible is
// measured on sampled orders and results: message sent -> row in the portal
// read model (polled). Limits in the same run: a null MLLP listener driven by
// the same load generator, and Kafka's tools at the hub's median record size.
// Memory (scenario 5) is read from /proc while this runs.
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { getPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { topicNamer } from '../../libs/config/index.js';
import { createEventCodec } from '../../libs/events/codec.js';
import { catalogTopicDefinitions, registerAllSchemas } from '../../libs/events/contracts.js';
import { EVENT_CONTRACTS, type EventType } from '../../libs/events/index.js';
import { createRegistryClient } from '../../libs/events/registry.js';
import { ensureDevKeys, mintToken } from '../../libs/auth/jwt.js';
import { HUB_SCOPES } from '../../libs/auth/scopes.js';
import { createDb, dropSchema } from '../../libs/db/index.js';
import { mapHl7Message } from '../../libs/hl7/map.js';
import { OPERATOR_AUDIENCE } from '../../libs/http/operator.js';
import { DEFAULT_IDENTITY_POLICY } from '../../libs/identity/index.js';
import { deleteTopics, ensureTopics } from '../../libs/kafka/admin.js';
import { createKafkaClient, type KafkaClient } from '../../libs/kafka/client.js';
import { dlqTopicFor } from '../../libs/kafka/dlq.js';
import { createLogger } from '../../libs/telemetry/logger.js';
import { adtA01, adtMissingPid3, ormO01 } from '../../test/support/hl7-fixtures.js';
import { RawMllpClient, ackField } from '../../test/support/raw-mllp-client.js';
import { kafkaLimitFigures, measureKafkaLimits } from './kafka-limits.js';
import {
  BENCH_MAX_CONNECTIONS_PER_PEER,
  latencySummary,
  pairSpread,
  progressBar,
  spreadOf,
  type BenchEnv,
  type Figure,
  type ScenarioResult,
  type Spread,
} from './lib.js';
import { summariseProfileFile, profileMarkdown } from './profile.js';
import { cpuSecondsOf, freePort, serviceEnv, startService, type ServiceChild } from './services.js';

/** ORU^R01 with five OBX (a small chemistry panel), like the corpus's lab results. */
function oruR01x5(id: string, mrn: string): string {
  return [
    `MSH|^~\\&|LAB|GENHOSP|HUB|HUBFAC|20260101130000||ORU^R01^ORU_R01|${id}|P|2.5.1`,
    `PID|1||${mrn}^^^HOSP^MR||Zzqbench^Jane||19800101|F`,
    `OBR|1|PL-${id}^EHR|FL-${id}^LAB|24323-8^Comprehensive metabolic panel^LN|||20260101123000|||||||||||||||20260101125900|||F`,
    'OBX|1|NM|2345-7^Glucose^LN||98|mg/dL|70-99||||F|||20260101125900',
    'OBX|2|NM|2160-0^Creatinine^LN||0.9|mg/dL|0.6-1.2||||F|||20260101125900',
    'OBX|3|NM|2951-2^Sodium^LN||140|mmol/L|135-145||||F|||20260101125900',
    'OBX|4|NM|2823-3^Potassium^LN||4.1|mmol/L|3.5-5.1||||F|||20260101125900',
    'OBX|5|ST|8251-1^Comment^LN||hemolysed: no||||||F',
  ].join('\r');
}

type Kind = 'adt' | 'oru' | 'orm' | 'bad';
export interface Hl7Message {
  text: string;
  kind: Kind;
  expect: 'AA' | 'AE';
}

/** The mix: 40% ADT^A01, 35% ORU^R01 (5 OBX), 20% ORM^O01, 5% content errors (AE). */
export function hl7Message(run: string, n: number): Hl7Message {
  const id = `${run}-${n}`;
  const mrn = `BENCH-${n % 997}`;
  const r = n % 20;
  if (r < 8) return { text: adtA01(id, mrn), kind: 'adt', expect: 'AA' };
  if (r < 15) return { text: oruR01x5(id, mrn), kind: 'oru', expect: 'AA' };
  if (r < 19) return { text: ormO01(id, mrn), kind: 'orm', expect: 'AA' };
  return { text: adtMissingPid3(id), kind: 'bad', expect: 'AE' };
}

const mapCtx = { recordedAt: 0, policy: DEFAULT_IDENTITY_POLICY, rawMessageRef: null, timeZone: 'UTC' };

/** The portal row a sampled order or result lands in (ids are deterministic). */
function visibleKey(m: Hl7Message): string | null {
  if (m.kind !== 'orm' && m.kind !== 'oru') return null;
  const out = mapHl7Message(Buffer.from(m.text), mapCtx);
  if (out.kind !== 'mapped') return null;
  for (const e of out.events) {
    if (e.type === 'OrderPlaced') return e.data.orderId;
    if (e.type === 'ResultReported') return e.data.resultId;
  }
  return null;
}

/** Polls the portal read model for sampled ids and records when each became visible. */
class VisibilityProbe {
  private readonly pending = new Map<string, number>();
  readonly latNs: number[] = [];
  private running = true;
  private loop: Promise<void>;
  constructor(
    private readonly client: pg.Client,
    private readonly schema: string,
  ) {
    this.loop = this.run();
  }
  add(id: string, sentAt: number): void {
    this.pending.set(id, sentAt);
  }
  get outstanding(): number {
    return this.pending.size;
  }
  private async run(): Promise<void> {
    const s = this.schema;
    while (this.running || this.pending.size > 0) {
      if (this.pending.size > 0) {
        const ids = [...this.pending.keys()];
        const r = await this.client.query<{ id: string }>(
          `select order_id as id from "${s}".service_requests where order_id = any($1)
           union all select result_id from "${s}".reports where result_id = any($1)`,
          [ids],
        );
        const now = performance.now();
        for (const { id } of r.rows) {
          const sent = this.pending.get(id);
          if (sent === undefined) continue;
          this.latNs.push((now - sent) * 1e6);
          this.pending.delete(id);
        }
      }
      await new Promise((res) => setTimeout(res, 5));
    }
  }
  /** Waits until every sample is visible (or gives up after timeoutMs). */
  async finish(timeoutMs = 30_000): Promise<number> {
    const end = Date.now() + timeoutMs;
    while (this.pending.size > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    const missing = this.pending.size;
    this.pending.clear();
    this.running = false;
    await this.loop;
    return missing;
  }
}

export interface LoadResult {
  messages: number;
  seconds: number;
  ackNs: number[];
  unexpected: number;
  visibleNs: number[];
  visibleMissing: number;
}

interface LoadOptions {
  port: number;
  connections: number;
  seconds: number;
  run: string;
  /** Messages per second in total; closed loop (as fast as ACKs come back) when omitted. */
  rate?: number;
  probe?: VisibilityProbe;
  /** Every n-th order/result is sampled for ingest-to-visible. */
  sampleEvery?: number;
  label: string;
  onTick?: () => void;
}

/**
 * One load phase. Each connection keeps one message in flight (original
 * mode). Open loop: messages are due on a fixed schedule and their latency
 * counts from when they were due, so a slow ACK is not hidden by the sender
 * waiting (no coordinated omission).
 */
export async function driveLoad(o: LoadOptions): Promise<LoadResult> {
  const clients = await Promise.all(
    Array.from({ length: o.connections }, () => RawMllpClient.connect(o.port)),
  );
  const ackNs: number[] = [];
  let unexpected = 0;
  let next = 0;
  let sampled = 0;
  const t0 = performance.now();
  const end = t0 + o.seconds * 1000;
  const bar = progressBar(o.label, Math.round(o.seconds), 's');
  const tick = setInterval(() => {
    bar.update(Math.min(o.seconds, Math.round((performance.now() - t0) / 1000)));
    o.onTick?.();
  }, 500);
  const interval = o.rate ? 1000 / o.rate : 0;
  try {
    await Promise.all(
      clients.map(async (c, ci) => {
        for (let k = 0; ; k++) {
          let due: number;
          if (o.rate) {
            // Message k of connection ci is due at a fixed time; connections are interleaved.
            due = t0 + (k * o.connections + ci) * interval;
            if (due >= end) return;
            const wait = due - performance.now();
            if (wait > 1) await new Promise((r) => setTimeout(r, wait));
          } else {
            due = performance.now();
            if (due >= end) return;
          }
          const n = next++;
          const m = hl7Message(o.run, n);
          // Late: latency counts from the due time (no coordinated omission).
          // Early (a timer wait under 1 ms is skipped): from the real send.
          const sentAt = o.rate ? Math.min(due, performance.now()) : performance.now();
          if (o.probe && (m.kind === 'orm' || m.kind === 'oru') && sampled++ % (o.sampleEvery ?? 10) === 0) {
            const key = visibleKey(m);
            if (key) o.probe.add(key, sentAt);
          }
          await c.send(m.text);
          const code = ackField(await c.nextAck(60_000), 'MSA', 1);
          ackNs.push((performance.now() - sentAt) * 1e6);
          if (code !== m.expect) unexpected++;
        }
      }),
    );
  } finally {
    clearInterval(tick);
    bar.update(Math.round(o.seconds));
    bar.stop();
    for (const c of clients) c.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  let visibleMissing = 0;
  if (o.probe) visibleMissing = await o.probe.finish();
  return {
    messages: ackNs.length,
    seconds,
    ackNs,
    unexpected,
    visibleNs: o.probe?.latNs ?? [],
    visibleMissing,
  };
}

/** Median size of the Kafka records the hub writes for the mix: Avro events (with registry header) and raw messages. */
async function recordSizes(
  registryUrl: string,
  topicFor: (t: EventType) => string,
): Promise<{ median: number; perMessage: number }> {
  const codec = createEventCodec(createRegistryClient(registryUrl));
  const sizes: number[] = [];
  const messages = 200;
  for (let n = 0; n < messages; n++) {
    const m = hl7Message('SIZE', n);
    sizes.push(Buffer.byteLength(m.text));
    const out = mapHl7Message(Buffer.from(m.text), mapCtx);
    if (out.kind !== 'mapped') continue;
    for (const e of out.events) sizes.push((await codec.encode(e, topicFor(e.type))).length);
  }
  const perMessage = sizes.length / messages;
  sizes.sort((a, b) => a - b);
  return { median: sizes[Math.floor(sizes.length / 2)] ?? 800, perMessage };
}

/** Message sizes of the mix, said in words for the setup line. */
function mixSizes(): string {
  const s = Array.from({ length: 20 }, (_, n) => Buffer.byteLength(hl7Message('X0000000-000', n).text)).sort(
    (a, b) => a - b,
  );
  return `${s[0]}-${s.at(-1)} B (median ${s[10]} B)`;
}

/** Where the adapter's CPU profile went, when BENCH_CPU_PROF is set. */
export let lastProfileDir: string | null = null;

/** Load results of several slices of one phase, pooled (messages, seconds and samples added up). */
interface Pool extends LoadResult {
  /** CPU seconds of each hub child over the pooled slices. */
  cpu: { child: ServiceChild; seconds: number }[];
  /** CPU seconds of the load generator (this process) over the pooled slices. */
  ownCpu: number;
  /** ACK p99 of each slice (ms). */
  sliceP99: number[];
}

function emptyPool(children: readonly ServiceChild[]): Pool {
  return {
    messages: 0,
    seconds: 0,
    ackNs: [],
    unexpected: 0,
    visibleNs: [],
    visibleMissing: 0,
    cpu: children.map((child) => ({ child, seconds: 0 })),
    ownCpu: 0,
    sliceP99: [],
  };
}

/** What one slice reached: the figures a slice pair's ratios are taken of. */
interface SliceStat {
  rate: number;
  p50: number;
  p99: number;
}

/** Adds a slice to the pool; the slice's own msg/s and ACK p50/p99. */
function addToPool(p: Pool, r: LoadResult): SliceStat {
  p.messages += r.messages;
  p.seconds += r.seconds;
  for (const x of r.ackNs) p.ackNs.push(x);
  for (const x of r.visibleNs) p.visibleNs.push(x);
  p.unexpected += r.unexpected;
  p.visibleMissing += r.visibleMissing;
  const l = latencySummary(r.ackNs);
  if (r.ackNs.length > 0) p.sliceP99.push(l.p99);
  return { rate: r.messages / r.seconds, p50: l.p50, p99: l.p99 };
}

/**
 * The ACK p99 a ratio is taken of: the median of the slices' p99s. A pooled
 * p99 rests on the few stalls (GC, a projector commit, a log roll) that
 * happen to fall in the phase, and moved 20% between otherwise alike runs;
 * the median slice is the typical few seconds. Pooled figures are in the notes.
 */
function sliceMedianP99(p: Pool): number {
  return spreadOf(p.sliceP99).median;
}

/** The ratio of every slice pair, in order, for the notes (the drift within a phase shows). */
function pairNote(phase: string, ph: PhaseResult, of: (keyof SliceStat)[]): string {
  const label = { rate: 'msg/s', p50: 'ACK p50', p99: 'ACK p99' };
  const lists = of.map(
    (k) =>
      `${label[k]} ${phaseSpread(ph, k)
        .values.map((x) => x.toFixed(2))
        .join(', ')}`,
  );
  return `${phase}, ratio of each hub/null slice pair: ${lists.join('; ')}.`;
}

/** The per-slice p99s behind a phase's p99 figures, and the pooled p99, for the notes. */
function p99Note(
  phase: string,
  hub: Pool,
  hubPooledP99: number,
  nul: Pool | null,
  nulPooledP99: number | undefined,
): string {
  const listed = (xs: number[]) => xs.map((x) => ms(x)).join(', ');
  return (
    `${phase}, ACK p99 of each slice (ms): hub ${listed(hub.sliceP99)} (pooled ${ms(hubPooledP99)})` +
    (nul ? `; null listener ${listed(nul.sliceP99)} (pooled ${ms(nulPooledP99 ?? NaN)})` : '') +
    '.'
  );
}

function ms(x: number): number {
  return Math.round(x * 100) / 100;
}
interface Hl7Options {
  connections: number[];
  /** Measure the Kafka tool limits too (skipped by the memory-only run). */
  limits: boolean;
  openLoop: boolean;
  nullListener: boolean;
}

/** One run of the scenario: what it set up (for the clean-up), what it started, what it found. */
interface Hl7Run {
  env: BenchEnv;
  o: Hl7Options;
  seconds: number;
  warmup: number;
  slices: number;
  /** HUB_TOPIC_SUFFIX of the run's services: topics and schemas of its own. */
  suffix: string;
  topic: (name: string) => string;
  topicFor: (t: EventType) => string;
  kafka: KafkaClient;
  db: pg.Client;
  portalSchema: string;
  /** Where the projector keeps its tables (its /version says); the views live in portalSchema. */
  portalTables: string;
  children: ServiceChild[];
  nul: ServiceChild | null;
  mllpPort: number;
  nullPort: number;
  profDir: string | undefined;
  idle: Record<string, number>;
  peak: Record<string, number>;
  run: string;
  sliceNo: number;
  figures: Figure[];
  /** Listed after the hub's figures (the table reads hub first, then its limits). */
  nullFigures: Figure[];
  notes: string[];
}

/** The run's own topics, schemas and database connection. */
async function prepareRun(env: BenchEnv, o: Hl7Options): Promise<Hl7Run> {
  const seconds = env.seconds;
  const suffix = `bench_${randomBytes(3).toString('hex')}`;
  const topic = topicNamer(suffix);
  const topicFor = (t: EventType) => topic(EVENT_CONTRACTS[t].topic);
  const logger = createLogger({ name: 'bench-hl7', level: 'silent' });
  const kafka = createKafkaClient({ brokers: env.stack.kafka.brokers, clientId: 'bench-hl7', logger });
  await ensureTopics(kafka, catalogTopicDefinitions(topic));
  await registerAllSchemas(createRegistryClient(env.stack.registryUrl), { topicFor });
  const db = new pg.Client({ connectionString: env.databaseUrl });
  await db.connect();
  return {
    env,
    o,
    seconds,
    // As long as a phase: after 5 s the first 1-connection slice still ran
    // 40% slower than the last in every run (msg/s ratio 0.09-0.10 rising to
    // 0.15-0.17); after 15 s the rise was smaller (0.13-0.15 to 0.15-0.19).
    warmup: Math.max(3, seconds),
    slices: Math.max(1, env.slices),
    suffix,
    topic,
    topicFor,
    kafka,
    db,
    portalSchema: `portal_${suffix}`,
    portalTables: '',
    children: [],
    nul: null,
    mllpPort: 0,
    nullPort: 0,
    profDir: undefined,
    idle: {},
    peak: {},
    run: '',
    sliceNo: 0,
    figures: [],
    nullFigures: [],
    notes: [],
  };
}

/** adapter-hl7 and projector-portal as child processes, and the null listener beside them. */
async function startServices(r: Hl7Run): Promise<void> {
  const { env, suffix } = r;
  r.mllpPort = await freePort();
  r.profDir = process.env['BENCH_CPU_PROF'] ? await mkdtemp(join(tmpdir(), 'hub-cpuprof-')) : undefined;
  const mllpPort = r.mllpPort;
  const adapter = await startService(env, 'adapter-hl7', {
    script: 'services/adapter-hl7/main.ts',
    env: serviceEnv(env, suffix, {
      MLLP_PORT: String(mllpPort),
      HTTP_PORT: '0',
      // The load generator is one peer that opens 32 new connections per slice: the last slice's 32 may
      // not be seen closed yet (at 32 per peer a new connection was then refused, "connection closed").
      MLLP_MAX_CONNECTIONS_PER_PEER: String(BENCH_MAX_CONNECTIONS_PER_PEER),
      // The adapter needs a zone; the fixtures' times are read as UTC, as before.
      HUB_SITE_CONFIG: process.env['HUB_SITE_CONFIG'] || 'test/fixtures/site/utc.yaml',
    }),
    ready: async () => {
      (await RawMllpClient.connect(mllpPort)).close();
      return true;
    },
    ...(r.profDir ? { cpuProfDir: r.profDir } : {}),
  });
  r.children.push(adapter);
  const portalHttp = await freePort();
  // /version is an operator route: a token signed with the dev key the portal verifies.
  const keysDir = join(env.cfg.repoDir, '.hub', 'dev-keys');
  const token = await mintToken({
    keys: await ensureDevKeys(keysDir),
    subject: 'bench',
    scope: [HUB_SCOPES.operator],
    audience: OPERATOR_AUDIENCE,
    ttlSec: 24 * 3600,
  });
  const headers = { authorization: `Bearer ${token}` };
  const portal = await startService(env, 'projector-portal', {
    script: 'services/projector-portal/main.ts',
    env: serviceEnv(env, suffix, {
      HTTP_PORT: String(portalHttp),
      PROJECTION_SCHEMA: r.portalSchema,
      AUTH_DEV_KEYS_DIR: keysDir,
    }),
    ready: async () => {
      const res = await fetch(`http://127.0.0.1:${portalHttp}/version`, { headers });
      const v = (await res.json()) as { schema?: string | null };
      return res.ok && Boolean(v.schema);
    },
  });
  r.children.push(portal);
  const version = (await (await fetch(`http://127.0.0.1:${portalHttp}/version`, { headers })).json()) as {
    schema: string;
  };
  r.portalTables = version.schema;
  for (const c of r.children) r.idle[c.name] = await c.rssMiB();
  r.run = randomBytes(3).toString('hex');
  // The null listener runs beside the hub from the start: its slices
  // alternate with the hub's in every phase (see measurePhase), so that a
  // change in machine load hits both sides of a ratio alike.
  r.nullPort = r.o.nullListener ? await freePort() : 0;
  if (r.o.nullListener) {
    const nullPort = r.nullPort;
    r.nul = await startService(env, 'null-mllp', {
      script: 'scripts/bench/null-mllp.ts',
      // scripts/ is not in the build (since #16 moved the services' code to libs/): from source.
      fromSource: true,
      env: { ...process.env, NULL_MLLP_PORT: String(nullPort) },
      ready: async () => {
        (await RawMllpClient.connect(nullPort)).close();
        return true;
      },
    });
  }
}

/** Peak RSS of each hub child, sampled while the hub is under load. */
function sampleRss(r: Hl7Run): void {
  for (const c of r.children) {
    void c.rssMiB().then(
      (v) => (r.peak[c.name] = Math.max(r.peak[c.name] ?? 0, v)),
      () => undefined,
    );
  }
}

async function warmUp(r: Hl7Run): Promise<void> {
  const warmUps: [number, string][] = [[r.mllpPort, 'hl7']];
  if (r.nul) warmUps.push([r.nullPort, 'null']);
  for (const [port, side] of warmUps) {
    await driveLoad({
      port,
      connections: 8,
      seconds: r.warmup,
      run: `W${side}${r.run}`,
      label: `${side} warm-up`,
    });
  }
}

interface SliceOptions {
  connections: number;
  seconds: number;
  run: string;
  label: string;
  rate: number | undefined;
  sampleEvery: number;
}

/** One slice against the null listener, pooled; what it reached. */
async function nullSlice(r: Hl7Run, pool: Pool, s: SliceOptions): Promise<SliceStat> {
  const res = await driveLoad({
    port: r.nullPort,
    connections: s.connections,
    seconds: s.seconds,
    run: s.run,
    label: `null ${s.label}`,
    ...(s.rate ? { rate: s.rate } : {}),
  });
  return addToPool(pool, res);
}

/** One slice against the hub, pooled with the CPU each process spent on it; what it reached. */
async function hubSlice(r: Hl7Run, pool: Pool, s: SliceOptions): Promise<SliceStat> {
  const probe = new VisibilityProbe(r.db, r.portalTables);
  const cpu0 = await Promise.all(pool.cpu.map(async (c) => ({ c, at: await cpuSecondsOf(c.child.pid) })));
  const ownCpu0 = process.cpuUsage();
  const res = await driveLoad({
    port: r.mllpPort,
    connections: s.connections,
    seconds: s.seconds,
    run: s.run,
    probe,
    sampleEvery: s.sampleEvery,
    label: `hub ${s.label}`,
    onTick: () => sampleRss(r),
    ...(s.rate ? { rate: s.rate } : {}),
  });
  const own = process.cpuUsage(ownCpu0);
  const cpu1 = await Promise.all(
    cpu0.map(async ({ c, at }) => ({ c, used: (await cpuSecondsOf(c.child.pid)) - at })),
  );
  for (const { c, used } of cpu1) c.seconds += used;
  pool.ownCpu += (own.user + own.system) / 1e6;
  return addToPool(pool, res);
}

interface PhaseResult {
  hub: Pool;
  nul: Pool | null;
  /** Each hub slice with the null slice it was paired with, in order. */
  pairs: { hub: SliceStat; nul: SliceStat }[];
}

/** The ratio of each slice pair of a phase for one statistic, with median and IQR. */
function phaseSpread(ph: PhaseResult, of: keyof SliceStat): Spread {
  const better = of === 'rate' ? 'higher' : 'lower';
  return pairSpread(
    ph.pairs.map((p) => ({ hub: p.hub[of], limit: p.nul[of] })),
    better,
  );
}

/**
 * One phase as `slices` pairs of a hub slice and a null slice, ABBA
 * order (hub first in even pairs, null first in odd ones) so that a
 * steady drift in load cancels too. A hub slice ends only when its
 * sampled rows are visible, so the projector has caught up before the
 * null listener gets the machine.
 */
async function measurePhase(
  r: Hl7Run,
  p: { label: string; connections: number; rate?: number; sampleEvery: number; seconds?: number },
): Promise<PhaseResult> {
  const phaseSeconds = p.seconds ?? r.seconds;
  // Slices as long as in the other phases: a longer phase gets more of them.
  const phaseSlices = Math.max(1, Math.round((r.slices * phaseSeconds) / r.seconds));
  const hub = emptyPool(r.children);
  const nulPool = emptyPool([]);
  const pairs: PhaseResult['pairs'] = [];
  for (let i = 0; i < phaseSlices; i++) {
    const order: ('hub' | 'null')[] = i % 2 === 0 ? ['hub', 'null'] : ['null', 'hub'];
    let hubStat: SliceStat | null = null;
    let nulStat: SliceStat | null = null;
    for (const side of order) {
      const s: SliceOptions = {
        connections: p.connections,
        seconds: phaseSeconds / phaseSlices,
        run: `${side === 'hub' ? 'H' : 'N'}${r.sliceNo++}${r.run}`,
        label: `${p.label} ${i + 1}/${phaseSlices}`,
        rate: p.rate,
        sampleEvery: p.sampleEvery,
      };
      if (side === 'hub') hubStat = await hubSlice(r, hub, s);
      else if (r.nul) nulStat = await nullSlice(r, nulPool, s);
    }
    if (hubStat && nulStat) pairs.push({ hub: hubStat, nul: nulStat });
  }
  return { hub, nul: r.nul ? nulPool : null, pairs };
}

type LatencySummary = ReturnType<typeof latencySummary>;

/** The slice pairs' ratios of a phase, for a figure's ratioSpread (none without a null listener). */
function spreadsOf(ph: PhaseResult): Partial<Record<keyof SliceStat, { ratioSpread: Spread }>> {
  if (ph.pairs.length === 0) return {};
  return {
    rate: { ratioSpread: phaseSpread(ph, 'rate') },
    p50: { ratioSpread: phaseSpread(ph, 'p50') },
    p99: { ratioSpread: phaseSpread(ph, 'p99') },
  };
}

/** The figures of one closed-loop phase: the hub's, each against its null-listener limit. */
function closedFigures(n: number, ph: PhaseResult, a: LatencySummary, v: LatencySummary): Figure[] {
  const sp = spreadsOf(ph);
  return [
    {
      name: `hub ${n} conn closed msg/s`,
      value: ph.hub.messages / ph.hub.seconds,
      unit: 'msg/s',
      better: 'higher',
      limit: `null ${n} conn closed msg/s`,
      ...sp.rate,
    },
    {
      name: `hub ${n} conn ACK p50`,
      value: a.p50,
      unit: 'ms',
      better: 'lower',
      limit: `null ${n} conn ACK p50`,
      ...sp.p50,
    },
    {
      name: `hub ${n} conn ACK p99`,
      value: sliceMedianP99(ph.hub),
      unit: 'ms',
      better: 'lower',
      limit: `null ${n} conn ACK p99`,
      ...sp.p99,
    },
    { name: `hub ${n} conn ACK p99.9`, value: a.p999, unit: 'ms', better: 'lower' },
    { name: `hub ${n} conn visible p50`, value: v.p50, unit: 'ms', better: 'lower' },
    { name: `hub ${n} conn visible p99`, value: v.p99, unit: 'ms', better: 'lower' },
  ];
}

/** " (nice n)" for a running process, "" once it is gone. */
function niceLabel(pid: number): string {
  try {
    return ` (nice ${getPriority(pid)})`;
  } catch {
    return '';
  }
}

/** Notes, log line and figures of one closed-loop phase. */
function reportClosed(r: Hl7Run, n: number, ph: PhaseResult): void {
  const { hub, nul } = ph;
  const rate = hub.messages / hub.seconds;
  // Cores each process kept busy during the hub slices: which one is the hottest.
  // With each service's niceness (CPU_NICE): on two shared cores, who yields first shapes these figures.
  const busy = hub.cpu.map(
    (c) => `${c.child.name} ${(c.seconds / hub.seconds).toFixed(2)}${niceLabel(c.child.pid)}`,
  );
  busy.push(`load generator ${(hub.ownCpu / hub.seconds).toFixed(2)}`);
  r.notes.push(`${n} connections closed loop, CPU cores busy: ${busy.join(', ')}.`);
  if (ph.pairs.length > 1) r.notes.push(pairNote(`${n} connections closed loop`, ph, ['rate', 'p50', 'p99']));
  const a = latencySummary(hub.ackNs);
  const na = nul ? latencySummary(nul.ackNs) : null;
  r.notes.push(p99Note(`${n} connections closed loop`, hub, a.p99, nul, na?.p99));
  const v = latencySummary(hub.visibleNs);
  r.env.log(
    `hl7 closed ${n}: ${Math.round(rate)} msg/s, ack p99 ${ms(a.p99)} ms, visible p99 ${ms(v.p99)} ms` +
      (nul ? `; null ${Math.round(nul.messages / nul.seconds)} msg/s` : ''),
  );
  r.figures.push(...closedFigures(n, ph, a, v));
  if (nul && na) {
    r.nullFigures.push(
      {
        name: `null ${n} conn closed msg/s`,
        value: nul.messages / nul.seconds,
        unit: 'msg/s',
        better: 'higher',
      },
      { name: `null ${n} conn ACK p50`, value: na.p50, unit: 'ms', better: 'lower' },
      { name: `null ${n} conn ACK p99`, value: sliceMedianP99(nul), unit: 'ms', better: 'lower' },
    );
  }
  if (hub.unexpected) r.notes.push(`${n} connections: ${hub.unexpected} ACKs with an unexpected code.`);
  if (hub.visibleMissing)
    r.notes.push(`${n} connections: ${hub.visibleMissing} sampled rows not visible within 30 s.`);
}

/** Closed loop at each connection count; the msg/s at the largest one. */
async function closedLoop(r: Hl7Run): Promise<number> {
  let max32 = 0;
  const nMax = Math.max(...r.o.connections);
  for (const n of r.o.connections) {
    const phase = await measurePhase(r, { label: `closed ${n} conn`, connections: n, sampleEvery: 10 });
    if (n === nMax) max32 = phase.hub.messages / phase.hub.seconds;
    reportClosed(r, n, phase);
  }
  return max32;
}

/** Open loop at half the closed-loop maximum (or BENCH_OPEN_RATE); the rate it ran at, 0 when skipped. */
async function openLoop(r: Hl7Run, max32: number): Promise<number> {
  if (!r.o.openLoop || max32 <= 0) return 0;
  const { env } = r;
  const nMax = Math.max(...r.o.connections);
  const openRate = env.openRate ?? Math.max(1, Math.round(max32 / 2));
  if (openRate > max32 / 2) {
    r.notes.push(
      `open loop at ${openRate} msg/s is above half of this run's ${nMax}-connection maximum (${Math.round(max32)} msg/s).`,
    );
  }
  const ph = await measurePhase(r, {
    label: `open ${openRate}/s`,
    connections: nMax,
    rate: openRate,
    sampleEvery: 5,
    seconds: env.openSeconds,
  });
  const { hub, nul } = ph;
  const sp = spreadsOf(ph);
  const a = latencySummary(hub.ackNs);
  const v = latencySummary(hub.visibleNs);
  env.log(
    `hl7 open ${openRate}/s: ${Math.round(hub.messages / hub.seconds)} msg/s, ack p99 ${ms(a.p99)} ms, visible p99 ${ms(v.p99)} ms`,
  );
  r.figures.push(
    {
      name: `hub open ${nMax} conn msg/s`,
      value: hub.messages / hub.seconds,
      unit: 'msg/s',
      better: 'higher',
    },
    {
      name: `hub open ACK p50`,
      value: a.p50,
      unit: 'ms',
      better: 'lower',
      limit: 'null open ACK p50',
      ...sp.p50,
    },
    {
      name: `hub open ACK p99`,
      value: sliceMedianP99(hub),
      unit: 'ms',
      better: 'lower',
      limit: 'null open ACK p99',
      ...sp.p99,
    },
    { name: `hub open ACK p99.9`, value: a.p999, unit: 'ms', better: 'lower' },
    { name: `hub open visible p50`, value: v.p50, unit: 'ms', better: 'lower' },
    { name: `hub open visible p99`, value: v.p99, unit: 'ms', better: 'lower' },
  );
  const na = nul ? latencySummary(nul.ackNs) : null;
  if (nul && na) {
    r.nullFigures.push(
      { name: 'null open ACK p50', value: na.p50, unit: 'ms', better: 'lower' },
      { name: 'null open ACK p99', value: sliceMedianP99(nul), unit: 'ms', better: 'lower' },
    );
  }
  if (ph.pairs.length > 1) r.notes.push(pairNote('open loop', ph, ['p50', 'p99']));
  r.notes.push(p99Note('open loop', hub, a.p99, nul, na?.p99));
  if (hub.visibleMissing)
    r.notes.push(`open loop: ${hub.visibleMissing} sampled rows not visible within 30 s.`);
  return openRate;
}

/** Stops the services (before the Kafka tools run, so that they have the machine to themselves) and writes the profile summary. */
async function stopServices(r: Hl7Run): Promise<void> {
  for (const c of r.children.splice(0)) await c.stop();
  if (r.nul) await r.nul.stop();
  if (!r.profDir) return;
  lastProfileDir = r.profDir;
  const summary = await summariseProfileFile(r.profDir, 25);
  const out = join(r.env.cfg.repoDir, 'docs', 'benchmarks', 'profile-adapter-hl7.md');
  await mkdir(join(r.env.cfg.repoDir, 'docs', 'benchmarks'), { recursive: true });
  await writeFile(
    out,
    `# CPU profile: adapter-hl7 under the hl7 scenario load (${new Date().toISOString()})\n\n` +
      `Whole process life (start-up, warm-up, every phase). Profile: ${summary.file}\n\n${profileMarkdown(summary)}\n`,
  );
  r.notes.push(
    `CPU profile of adapter-hl7 under this load: ${summary.file}, summary in docs/benchmarks/profile-adapter-hl7.md.`,
  );
}

/** Kafka's own tools at the hub's median record size: the ceiling the hub's records/s is read against. */
async function kafkaLimits(r: Hl7Run, max32: number): Promise<void> {
  const { env } = r;
  const size = await recordSizes(env.stack.registryUrl, r.topicFor);
  r.notes.push(
    `Hub median Kafka record size for this mix: ${size.median} B (Avro events with registry header, and raw messages); ` +
      `${size.perMessage.toFixed(2)} records per message.`,
  );
  const limits = await measureKafkaLimits(env, size.median, Math.round(200_000 * env.scale));
  r.figures.push(...kafkaLimitFigures(limits));
  r.notes.push(
    `ProducerPerformance runs (records/s; the median is the limit): ${limits.producerRuns.map((x) => Math.round(x).toLocaleString('en-US')).join(', ')}.`,
  );
  // Messages/s to Kafka records/s: each message of the mix writes its raw copy plus its events.
  r.figures.push({
    name: `hub ${Math.max(...r.o.connections)} conn closed records/s`,
    value: max32 * size.perMessage,
    unit: 'records/s',
    better: 'higher',
    limit: 'kafka ProducerPerformance',
  });
}

function setupText(r: Hl7Run, openRate: number): string {
  const { env, o, seconds } = r;
  return (
    `Mix: 40% ADT^A01, 35% ORU^R01 with 5 OBX, 20% ORM^O01, 5% content errors (AE); messages ${mixSizes()}. ` +
    `Warm-up ${r.warmup}s at 8 connections (hub and null listener each), then ${seconds}s per phase and side: closed loop ` +
    `(one message in flight per connection) at ${o.connections.join(', ')} connections, then open loop for ${env.openSeconds}s per side at ${openRate} msg/s ` +
    `(${env.openRate ? 'BENCH_OPEN_RATE' : "half this run's closed-loop maximum"}) over ${Math.max(...o.connections)} connections, latency counted from the scheduled send time. ` +
    `Each phase is cut into slices of ${ms(seconds / r.slices)}s per side, hub and null listener alternating (ABBA; ${r.slices} pairs per closed-loop phase); ` +
    `each ratio is the median of the slice pairs' ratios, with its IQR (q1–q3) and the number of pairs. ` +
    `Values are pooled over the slices, except ACK p99, which is the median of the slices' p99s (each slice's p99 and the pooled p99 are in the notes). ` +
    `Visible = sampled ORM/ORU until its row is in the portal read model (polled every 5 ms). Load generator, adapter, ` +
    `projector, Kafka, registry and Postgres share the machine. Null listener = same MLLP server, parser, mapper and ACK, no Kafka.`
  );
}

/** The bench stack outlives a run: what this run made goes, so that runs do not pile up topics and read models (nine runs had left 63 topics). */
async function cleanUp(r: Hl7Run): Promise<void> {
  for (const c of r.children) await c.stop().catch(() => undefined);
  await r.nul?.stop().catch(() => undefined);
  await deleteTopics(r.kafka, [
    ...catalogTopicDefinitions(r.topic).map((t) => t.name),
    // Created by the projector itself, for its dead letters.
    dlqTopicFor('projector-portal', r.topic),
  ]).catch(() => undefined);
  await r.db.end();
  const knex = createDb(r.env.databaseUrl);
  for (const s of [r.portalSchema, r.portalTables]) if (s) await dropSchema(knex, s).catch(() => undefined);
  await knex.destroy();
}

export async function hl7Scenario(env: BenchEnv, opt: Partial<Hl7Options> = {}): Promise<ScenarioResult> {
  const o: Hl7Options = {
    connections: [1, 8, 32],
    limits: true,
    openLoop: true,
    nullListener: true,
    ...opt,
  };
  const r = await prepareRun(env, o);
  try {
    await startServices(r);
    await warmUp(r);
    const max32 = await closedLoop(r);
    const openRate = await openLoop(r, max32);
    r.figures.push(...r.nullFigures);
    await stopServices(r);
    if (o.limits) await kafkaLimits(r, max32);
    return {
      scenario: '1. HL7 end to end (adapter-hl7 + projector-portal)',
      setup: setupText(r, openRate),
      figures: r.figures,
      notes: r.notes,
    };
  } finally {
    await cleanUp(r);
  }
}
