// Scenario 5, memory: every hub service as its own child process from the
// build output (as the Dockerfile runs them), on topics and schemas of its
// own, VmRSS sampled every 0.5 s while the scenario-1 HL7 load, FHIR bundles
// and a FHIR $import run one after the other. The projectors, the matcher,
// delivery and the API consume what the adapters publish, so each service is
// measured under the load it sees in production, not idle beside it.
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { Readable } from 'node:stream';
import pg from 'pg';
import { topicNamer } from '../../libs/config/index.js';
import { catalogTopicDefinitions, registerAllSchemas } from '../../libs/events/contracts.js';
import { EVENT_CONTRACTS, type EventType } from '../../libs/events/index.js';
import { createRegistryClient } from '../../libs/events/registry.js';
import { deleteTopics, ensureTopics } from '../../libs/kafka/admin.js';
import { createKafkaClient } from '../../libs/kafka/client.js';
import { dlqTopicFor } from '../../libs/kafka/dlq.js';
import { LOCAL_FHIR_CLIENTS_FILE, localIngestAuth } from '../../libs/stack/ingest-token.js';
import { createLogger } from '../../libs/telemetry/logger.js';
import { generateResources } from '../../test/fixtures/fhir/generate.js';
import { driveLoad } from './hl7.js';
import type { BenchEnv, Figure, ScenarioResult } from './lib.js';
import { cpuSecondsOf, freePort, serviceEnv, startService, type ServiceChild } from './services.js';

/** The issue's target for every service, in MB (10^6 bytes), as the issue says it. */
export const RSS_TARGET_MB = 256;
const MIB_PER_MB = 1e6 / 2 ** 20;

export const MEMORY_PHASES = ['hl7', 'fhir bundles', 'fhir import'] as const;
export type MemoryPhase = (typeof MEMORY_PHASES)[number];

export interface ServiceMemory {
  name: string;
  idleMiB: number;
  /** Highest VmRSS sampled in each phase. */
  peakMiB: Record<MemoryPhase, number>;
  /** V8's spaces and external memory (MiB) after the last phase, from the service's /metrics: what the RSS is made of. */
  heap: Record<string, number>;
  heapIdle: Record<string, number>;
  /** The same, read right after the sample that gave the run's highest VmRSS. */
  heapAtPeak: Record<string, number>;
  rssAtPeakMiB: number;
  /** CPU seconds the service used in each phase (with its 5 s tail): what smaller heaps cost in GC. */
  cpuSeconds: Record<MemoryPhase, number>;
}

export interface MemoryRun {
  services: ServiceMemory[];
  /** What each phase did, in words (messages, resources). */
  phases: Record<MemoryPhase, string>;
}

export interface MemoryOptions {
  /** Seconds of each load phase. */
  seconds: number;
  /** Resources in the $import body. */
  importCount: number;
  /**
   * Extra environment: `NAME` for every service (e.g. NODE_HEAP_MB=0 for V8's
   * own sizing), `<service>:NAME` for that service only.
   */
  serviceExtra?: Record<string, string>;
}

/** The extra environment of one service (see MemoryOptions.serviceExtra). */
function extraFor(o: MemoryOptions, service: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(o.serviceExtra ?? {})) {
    const at = key.indexOf(':');
    if (at < 0) out[key] = value;
    else if (key.slice(0, at) === service) out[key.slice(at + 1)] = value;
  }
  return out;
}

interface Names {
  suffix: string;
  /** Prefix of every Postgres schema of the run (read models make versioned schemas after it). */
  schema: string;
  topic: (catalogName: string) => string;
}

/** Each service's own variables: its schemas and consumer groups under the run's prefix. */
function serviceVars(n: Names, name: string, ports: Map<string, number>): Record<string, string> {
  const s = n.schema;
  const schemas = {
    PORTAL_SCHEMA: `${s}_portal`,
    BILLING_SCHEMA: `${s}_billing`,
    ANALYTICS_SCHEMA: `${s}_analytics`,
    AUDIT_SCHEMA: `${s}_audit`,
    DELIVERY_SCHEMA: `${s}_delivery`,
    IDENTITY_SCHEMA: `${s}_identity`,
  };
  const projector = (schema: string) => ({ PROJECTION_SCHEMA: schema, CONSUMER_GROUP_PREFIX: `hub.${s}` });
  switch (name) {
    case 'adapter-hl7':
      return {
        MLLP_PORT: String(ports.get('mllp')),
        // The adapter needs a zone; the fixtures' times are read as UTC.
        HUB_SITE_CONFIG: resolve('test/fixtures/site/utc.yaml'),
      };
    case 'adapter-fhir':
      return {
        FHIR_STORE_SCHEMA: `${s}_fhir`,
        FHIR_TRANSACTIONAL_ID: `tx-${n.suffix}`,
        FHIR_CLIENTS_FILE: resolve(LOCAL_FHIR_CLIENTS_FILE),
      };
    case 'patient-directory':
      return projector(`${s}_directory`);
    case 'projector-portal':
      return projector(schemas.PORTAL_SCHEMA);
    case 'projector-billing':
      return projector(schemas.BILLING_SCHEMA);
    case 'projector-analytics':
      return projector(schemas.ANALYTICS_SCHEMA);
    case 'identity-matcher':
      return { IDENTITY_SCHEMA: schemas.IDENTITY_SCHEMA, IDENTITY_GROUP_ID: `hub.${s}.identity` };
    case 'delivery':
      return { DELIVERY_SCHEMA: schemas.DELIVERY_SCHEMA, PORTAL_SCHEMA: schemas.PORTAL_SCHEMA };
    case 'api':
      return schemas;
    default: // console
      return {
        ...schemas,
        HUB_OPS_SCHEMA: `${s}_ops`,
        CONSOLE_DEV_LOGIN: 'true',
        CONSOLE_SECURE_COOKIES: 'false',
      };
  }
}

/** In start order: the consumers first, so that they are in their groups before the adapters publish. */
export const MEMORY_SERVICES = [
  'patient-directory',
  'projector-portal',
  'projector-billing',
  'projector-analytics',
  'identity-matcher',
  'delivery',
  'api',
  'adapter-hl7',
  'adapter-fhir',
  'console',
] as const;

async function startAll(
  env: BenchEnv,
  n: Names,
  o: MemoryOptions,
  ports: Map<string, number>,
): Promise<ServiceChild[]> {
  for (const name of MEMORY_SERVICES) ports.set(name, await freePort());
  const children: ServiceChild[] = [];
  try {
    for (const name of MEMORY_SERVICES) {
      const base = `http://127.0.0.1:${ports.get(name)}`;
      children.push(
        await startService(env, name, {
          script: `services/${name}/main.ts`,
          env: serviceEnv(env, n.suffix, {
            HTTP_PORT: String(ports.get(name)),
            AUTH_DEV_KEYS_DIR: resolve('.hub/dev-keys'),
            ...serviceVars(n, name, ports),
            ...extraFor(o, name),
          }),
          ready: async () => (await fetch(`${base}/ready`)).ok,
          timeoutMs: 120_000,
        }),
      );
    }
  } catch (err) {
    for (const c of children) await c.stop().catch(() => undefined);
    throw err;
  }
  return children;
}

/** Heap spaces, external memory and array buffers from a service's prom-client default metrics, in MiB. */
export async function heapOf(base: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const out: Record<string, number> = {};
  const re =
    /^nodejs_(heap_size_total|heap_size_used|external_memory|heap_space_size_total)_bytes(?:\{space="(\w+)"\})? (\S+)$/gm;
  for (const m of text.matchAll(re)) {
    const key = m[2] ? `space ${m[2]}` : (m[1] ?? '');
    out[key] = Number(m[3]) / 2 ** 20;
  }
  return out;
}

/** A service's highest VmRSS over the whole run, and its heap as read right after that sample. */
interface AtPeak {
  rssMiB: number;
  heap: Record<string, number>;
}

/**
 * Samples every child's VmRSS every 0.5 s into `peaks` until stopped; at a
 * service's new highest RSS of the run, its heap is read at once into
 * `atPeak` (what the peak is made of: V8's heap or memory outside it).
 */
function sampler(
  children: readonly ServiceChild[],
  heapOfChild: (name: string) => Promise<Record<string, number>>,
  atPeak: Map<string, AtPeak>,
): { stop(): Promise<Map<string, number>> } {
  const peaks = new Map<string, number>();
  let running = true;
  const loop = (async () => {
    while (running) {
      for (const c of children) {
        const v = await c.rssMiB().catch(() => 0);
        peaks.set(c.name, Math.max(peaks.get(c.name) ?? 0, v));
        if (v > (atPeak.get(c.name)?.rssMiB ?? 0))
          atPeak.set(c.name, { rssMiB: v, heap: await heapOfChild(c.name).catch(() => ({})) });
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return peaks;
    },
  };
}

interface Entry {
  resourceType: string;
  id: string;
}

/** Transaction bundles of 100 PUT entries from 8 clients for `seconds`: the FHIR bench's bundle load. */
async function fhirBundles(base: string, seconds: number, prefix: string): Promise<string> {
  const auth = await localIngestAuth();
  const gen = generateResources(10_000_000, { prefix }) as Generator<Entry>;
  const end = Date.now() + seconds * 1000;
  let resources = 0;
  let refused = 0;
  await Promise.all(
    Array.from({ length: 8 }, async (_, i) => {
      while (Date.now() < end) {
        const entry = [];
        for (let k = 0; k < 100; k++) {
          const r = gen.next().value as Entry;
          entry.push({ resource: r, request: { method: 'PUT', url: `${r.resourceType}/${r.id}` } });
        }
        const type = i % 2 ? 'batch' : 'transaction';
        const res = await fetch(`${base}/`, {
          method: 'POST',
          headers: { 'content-type': 'application/fhir+json', ...auth },
          body: JSON.stringify({ resourceType: 'Bundle', type, entry }),
        });
        await res.arrayBuffer();
        if (res.ok) resources += 100;
        else refused++;
      }
    }),
  );
  return `${resources.toLocaleString('en-US')} resources in transaction and batch bundles of 100 from 8 clients, ${refused} refused`;
}

/** One POST /$import of `count` generated resources, the body streamed as it is generated. */
async function fhirImport(base: string, count: number, prefix: string): Promise<string> {
  const auth = await localIngestAuth();
  const lines = (function* () {
    for (const r of generateResources(count, { prefix })) yield `${JSON.stringify(r)}\n`;
  })();
  const res = await fetch(`${base}/$import?label=memory`, {
    method: 'POST',
    headers: { 'content-type': 'application/fhir+ndjson', ...auth },
    body: Readable.toWeb(Readable.from(lines)) as ReadableStream<Uint8Array>,
    duplex: 'half',
  });
  const summary = (await res.json()) as { counts?: { created?: number } };
  return `$import of ${count.toLocaleString('en-US')} resources (HTTP ${res.status}, ${summary.counts?.created ?? 0} created)`;
}

async function prepare(env: BenchEnv, n: Names): Promise<() => Promise<void>> {
  const logger = createLogger({ name: 'bench-memory', level: 'silent' });
  const kafka = createKafkaClient({ brokers: env.stack.kafka.brokers, clientId: 'bench-memory', logger });
  const dlqs = MEMORY_SERVICES.map((s) => dlqTopicFor(s, n.topic));
  await ensureTopics(kafka, [
    ...catalogTopicDefinitions(n.topic),
    ...dlqs.map((name) => ({ name, partitions: 1, retentionMs: -1 })),
  ]);
  const topicFor = (t: EventType) => n.topic(EVENT_CONTRACTS[t].topic);
  const registry = createRegistryClient(env.stack.registryUrl);
  await registerAllSchemas(registry, { topicFor });
  return async () => {
    for (const t of Object.keys(EVENT_CONTRACTS) as EventType[]) {
      await registry.deleteSubject(`${topicFor(t)}-${EVENT_CONTRACTS[t].fullName}`).catch(() => undefined);
    }
    // Every topic of the run, the ones the services made themselves (audit, its dead letters) too.
    const admin = kafka.admin();
    await admin.connect();
    const ours = (await admin.listTopics()).filter((t) => t.endsWith(`.${n.suffix}`));
    await admin.disconnect();
    await deleteTopics(kafka, ours).catch(() => undefined);
    const db = new pg.Client({ connectionString: env.databaseUrl });
    await db.connect();
    // Versioned read-model schemas are named after the stable ones: all start with the run's prefix.
    const { rows } = await db.query<{ nspname: string }>(
      `SELECT nspname FROM pg_namespace WHERE nspname LIKE $1`,
      [`${n.schema}%`],
    );
    for (const r of rows) await db.query(`DROP SCHEMA IF EXISTS "${r.nspname}" CASCADE`);
    await db.end();
  };
}

/** Starts every service, samples idle RSS, then each load phase's peak; stops and removes everything. */
export async function measureMemory(env: BenchEnv, o: MemoryOptions): Promise<MemoryRun> {
  const hex = randomBytes(3).toString('hex');
  const n: Names = { suffix: `mem_${hex}`, schema: `mem_${hex}`, topic: topicNamer(`mem_${hex}`) };
  const cleanUp = await prepare(env, n);
  const ports = new Map<string, number>([['mllp', await freePort()]]);
  let children: ServiceChild[] = [];
  try {
    children = await startAll(env, n, o, ports);
    // Idle: after start-up has settled (timers, first polls, JIT of start-up code).
    await new Promise((r) => setTimeout(r, 5000));
    const idle = new Map<string, number>();
    const heapIdle = new Map<string, Record<string, number>>();
    for (const c of children) {
      idle.set(c.name, await c.rssMiB());
      heapIdle.set(c.name, await heapOf(`http://127.0.0.1:${ports.get(c.name)}`).catch(() => ({})));
    }
    const fhirBase = `http://127.0.0.1:${ports.get('adapter-fhir')}`;
    const peaks = {} as Record<MemoryPhase, Map<string, number>>;
    const phases = {} as Record<MemoryPhase, string>;
    const atPeak = new Map<string, AtPeak>();
    const cpu = new Map<string, Partial<Record<MemoryPhase, number>>>(children.map((c) => [c.name, {}]));
    const cpuNow = async () =>
      new Map(await Promise.all(children.map(async (c) => [c.name, await cpuSecondsOf(c.pid)] as const)));
    const run = async (phase: MemoryPhase, load: () => Promise<string>) => {
      env.log(`memory: ${phase}`);
      const before = await cpuNow();
      const s = sampler(children, (name) => heapOf(`http://127.0.0.1:${ports.get(name)}`), atPeak);
      phases[phase] = await load();
      // The consumers behind the adapters catch up after the load: their peak can come then.
      await new Promise((r) => setTimeout(r, 5000));
      peaks[phase] = await s.stop();
      const after = await cpuNow();
      for (const c of children) {
        const used = cpu.get(c.name);
        if (used) used[phase] = (after.get(c.name) ?? 0) - (before.get(c.name) ?? 0);
      }
    };
    await run('hl7', async () => {
      const r = await driveLoad({
        port: ports.get('mllp') ?? 0,
        connections: 32,
        seconds: o.seconds,
        run: hex,
        label: 'memory hl7',
      });
      return `${r.messages.toLocaleString('en-US')} HL7 messages at 32 connections, closed loop, ${o.seconds} s`;
    });
    await run('fhir bundles', () => fhirBundles(fhirBase, o.seconds, `b${hex}`));
    await run('fhir import', () => fhirImport(fhirBase, o.importCount, `i${hex}`));
    const heaps = new Map<string, Record<string, number>>();
    for (const c of children)
      heaps.set(c.name, await heapOf(`http://127.0.0.1:${ports.get(c.name)}`).catch(() => ({})));
    return {
      services: children.map((c) => ({
        name: c.name,
        idleMiB: idle.get(c.name) ?? NaN,
        peakMiB: Object.fromEntries(MEMORY_PHASES.map((p) => [p, peaks[p].get(c.name) ?? NaN])) as Record<
          MemoryPhase,
          number
        >,
        heap: heaps.get(c.name) ?? {},
        heapIdle: heapIdle.get(c.name) ?? {},
        heapAtPeak: atPeak.get(c.name)?.heap ?? {},
        rssAtPeakMiB: atPeak.get(c.name)?.rssMiB ?? NaN,
        cpuSeconds: Object.fromEntries(MEMORY_PHASES.map((p) => [p, cpu.get(c.name)?.[p] ?? NaN])) as Record<
          MemoryPhase,
          number
        >,
      })),
      phases,
    };
  } finally {
    for (const c of children.reverse()) await c.stop().catch(() => undefined);
    await cleanUp();
  }
}

const heapLine = (h: Record<string, number>): string =>
  ['heap_size_used', 'heap_size_total', 'external_memory'].map((k) => (h[k] ?? NaN).toFixed(0)).join(', ');

const outsideHeap = (s: ServiceMemory): number =>
  s.rssAtPeakMiB - (s.heapAtPeak['heap_size_total'] ?? NaN) - (s.heapAtPeak['external_memory'] ?? NaN);

/** The run as the bench report's figures: idle and peak per service, the target beside them. */
export function memoryResult(r: MemoryRun, o: MemoryOptions): ScenarioResult {
  const figures: Figure[] = [];
  const over: string[] = [];
  for (const s of r.services) {
    const peak = Math.max(...MEMORY_PHASES.map((p) => s.peakMiB[p]));
    figures.push(
      { name: `${s.name} RSS idle`, value: s.idleMiB, unit: 'MiB', better: 'lower' },
      { name: `${s.name} RSS peak`, value: peak, unit: 'MiB', better: 'lower' },
    );
    if (peak > RSS_TARGET_MB * MIB_PER_MB) over.push(`${s.name} (${peak.toFixed(0)} MiB)`);
  }
  return {
    scenario: '5. Memory (VmRSS of every service under load)',
    setup:
      `Every service as a child process from dist/, on its own topics and schemas; VmRSS from /proc/<pid>/status 5 s after ` +
      `all are ready (idle), then the peak sampled every 0.5 s through each phase and 5 s after it: ${MEMORY_PHASES.map(
        (p) => `${p}: ${r.phases[p]}`,
      ).join('; ')}.`,
    figures,
    notes: [
      `Peak per phase (MiB): ${r.services
        .map((s) => `${s.name} ${MEMORY_PHASES.map((p) => s.peakMiB[p].toFixed(0)).join('/')}`)
        .join(', ')} (${MEMORY_PHASES.join('/')}).`,
      `Heap at idle / at the RSS peak / after the phases (MiB, V8 heap used, heap total, external): ${r.services
        .map((s) => `${s.name} ${[s.heapIdle, s.heapAtPeak, s.heap].map(heapLine).join(' / ')}`)
        .join(', ')}.`,
      `Outside V8's heap at the RSS peak (MiB, VmRSS minus heap total and external; native allocations, code, stacks): ${r.services
        .map((s) => `${s.name} ${outsideHeap(s).toFixed(0)}`)
        .join(', ')}.`,
      `Target: each service <= ${RSS_TARGET_MB} MB (${(RSS_TARGET_MB * MIB_PER_MB).toFixed(0)} MiB) RSS under load. ` +
        (over.length ? `Over it: ${over.join(', ')}.` : 'Every service within it.'),
      ...(o.serviceExtra && Object.keys(o.serviceExtra).length
        ? [
            `Services ran with ${Object.entries(o.serviceExtra)
              .map(([k, v]) => `${k}=${v}`)
              .join(' ')}.`,
          ]
        : []),
    ],
  };
}

/** For run.ts: `memory` as a scenario of `npm run bench`, on the bench stack. */
export async function memoryScenario(env: BenchEnv): Promise<ScenarioResult> {
  const o: MemoryOptions = {
    seconds: env.seconds,
    importCount: Math.max(1000, Math.round(20_000 * env.scale)),
  };
  return memoryResult(await measureMemory(env, o), o);
}
