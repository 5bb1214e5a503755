/**
 * adapter-hl7's per-message CPU path without Kafka or a socket: MLLP frame
 * → MSH sniff → parse → map → Avro encode with the registry codec (schema
 * ids cached, as after warm-up) → raw record + event records → ACK → framed
 * ACK. The producer is a stand-in that encodes the events the way
 * libs/kafka/producer.ts does and hands nothing to kafkajs.
 *
 * A/B in one process: `--a <root>` loads a second copy of the same modules
 * from another tree (e.g. a copy of libs/ and services/adapter-hl7 taken
 * before a change, with node_modules linked) and runs the two in
 * alternating slices, so that the VM's drifting speed hits both alike.
 * Both sides must give byte-identical ACKs and event records for the same
 * messages (checked before timing).
 *
 *   npx tsx scripts/bench-hl7-hotpath.ts [--a <root>] [--b <root>] [--slices 10] [--messages 2000]
 *
 * A root holding compiled .js (tsc's outDir, with node_modules linked and a
 * package.json of type module) is run as the services run from dist/; a
 * source root goes through tsx, whose helpers (keepNames) add their own
 * cost to every closure. B defaults to this tree.
 *   node --cpu-prof --cpu-prof-dir /tmp/prof --import tsx scripts/bench-hl7-hotpath.ts --only b --slices 20
 *   npm run bench:profile -- /tmp/prof
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import avsc from 'avsc';
import type * as CodecTypes from '../libs/events/codec.js';
import type * as EventsTypes from '../libs/events/index.js';
import type { ClinicalEvent } from '../libs/events/index.js';
import type * as MapTypes from '../libs/hl7/map.js';
import type * as MllpTypes from '../libs/hl7/mllp.js';
import type * as IdentityTypes from '../libs/identity/index.js';
import type * as LoggerTypes from '../libs/telemetry/logger.js';
import type * as MetricsTypes from '../libs/telemetry/metrics.js';
import type { RegistryClient } from '../libs/events/registry.js';
import type { EventProducer } from '../libs/kafka/producer.js';
import { hl7Message } from './bench/hl7.js';

/**
 * What this calls of services/adapter-hl7/app.ts. Scripts never import a
 * service's code (lint:layers); like the benchmark, which starts services
 * by path, this loads the adapter by path. Its deps and config are the
 * service's own types (Hl7AdapterDeps, Hl7AdapterConfig), not restated
 * here: a mismatch fails the first message, before anything is timed.
 */
interface AppModule {
  buildHl7Adapter(deps: object, cfg: object): { handleMessage(bytes: Buffer): Promise<Buffer[]> };
}
type MllpModule = typeof MllpTypes;
type MapModule = typeof MapTypes;
type CodecModule = typeof CodecTypes;
type EventsModule = typeof EventsTypes;
type LoggerModule = typeof LoggerTypes;
type MetricsModule = typeof MetricsTypes;
type IdentityModule = typeof IdentityTypes;

const { values: args } = parseArgs({
  options: {
    a: { type: 'string' },
    b: { type: 'string' },
    only: { type: 'string' },
    slices: { type: 'string', default: '10' },
    messages: { type: 'string', default: '2000' },
  },
});
const SLICES = Number(args.slices);
const PER_SLICE = Number(args.messages);
const NOW = Date.UTC(2026, 0, 2, 3, 4, 5);

/** Schemas by subject, ids handed out in order: the two calls the codec makes, without a server. */
function memoryRegistry(): RegistryClient {
  const ids = new Map<string, number>();
  const schemas = new Map<number, object>();
  const calls: Pick<RegistryClient, 'idOf' | 'typeOf'> = {
    idOf: (subject, schema) => {
      const id = ids.get(subject) ?? ids.size + 1;
      ids.set(subject, id);
      schemas.set(id, schema);
      return Promise.resolve(id);
    },
    typeOf: (id) => Promise.resolve(avsc.Type.forSchema(schemas.get(id) as avsc.Schema)),
  };
  // Nothing else is called on the hot path (encode, and warm-up's resolution of each id).
  return calls as RegistryClient;
}

interface Side {
  name: string;
  /** One framed message through the whole path; the framed ACKs and encoded event values. */
  handle(framed: Buffer): Promise<{ acks: Buffer[]; values: Buffer[] }>;
}

async function loadSide(name: string, root: string): Promise<Side> {
  // A tree compiled by tsc (as the services run, from dist/) or sources through tsx.
  const ext = existsSync(resolve(root, 'libs/hl7/mllp.js')) ? 'js' : 'ts';
  const load = <T>(rel: string): Promise<T> => import(resolve(root, `${rel}.${ext}`)) as Promise<T>;
  const [app, mllp, map, codecMod, events, logger, metrics, identity] = await Promise.all([
    load<AppModule>('services/adapter-hl7/app'),
    load<MllpModule>('libs/hl7/mllp'),
    load<MapModule>('libs/hl7/map'),
    load<CodecModule>('libs/events/codec'),
    load<EventsModule>('libs/events/index'),
    load<LoggerModule>('libs/telemetry/logger'),
    load<MetricsModule>('libs/telemetry/metrics'),
    load<IdentityModule>('libs/identity/index'),
  ]);
  const codec = codecMod.createEventCodec(memoryRegistry());
  await codec.warmUp();
  let values: Buffer[] = [];
  // What libs/kafka/producer.ts does before kafkajs: encode each event, key and headers.
  const encodeAll = async (list: readonly ClinicalEvent[], extra: Record<string, string>) => {
    for (const e of list) {
      const topic = events.EVENT_CONTRACTS[e.type].topic;
      const value = await codec.encode(e, topic);
      const record = {
        topic,
        key: e.data.patientId,
        value,
        headers: { ...extra, 'hub-event-type': e.type, 'hub-event-id': e.data.meta.eventId },
      };
      values.push(record.value);
    }
    return [];
  };
  const producer: EventProducer = {
    connect: () => Promise.resolve(),
    disconnect: () => Promise.resolve(),
    health: () => ({ ok: true }),
    publishRaw: () => Promise.resolve(),
    publish: (list, extra) => encodeAll(list, (extra ?? {}) as Record<string, string>),
  };
  let n = 0;
  const adapter = app.buildHl7Adapter(
    {
      producer,
      logger: logger.createLogger({ name: `hotpath-${name}`, level: 'silent' }),
      metrics: metrics.createMetrics({ defaultMetrics: false }),
      clock: () => NOW,
      idGenerator: () => `ACK${++n}`,
      policy: identity.DEFAULT_IDENTITY_POLICY,
      timeZoneFor: () => 'UTC',
      mapper: map.mapHl7Message,
    },
    {
      host: '127.0.0.1',
      port: 0,
      maxMessageBytes: 1024 * 1024,
      frameTimeoutMs: 10_000,
      rawTopic: 'hl7.raw.v1',
      dlqTopic: 'hl7.dlq.v1',
      // No resend memory worth speaking of: every message is new anyway.
      recentIdsCapacity: 1_000,
    },
  );
  const framer = new mllp.MllpFramer({ maxMessageBytes: 1024 * 1024 });
  return {
    name,
    async handle(framed) {
      values = [];
      const acks: Buffer[] = [];
      for (const ev of framer.push(framed)) {
        if (ev.kind !== 'frame') throw new Error(`unexpected ${ev.kind}`);
        for (const a of await adapter.handleMessage(ev.bytes)) acks.push(mllp.mllpFrame(a));
      }
      return { acks, values };
    },
  };
}

/** Fresh control ids for every slice: a repeated id would be answered from the resend memory. */
function framedMessages(run: string, count: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const text = hl7Message(run, i).text;
    const body = Buffer.from(text, 'utf8');
    out.push(Buffer.concat([Buffer.from([0x0b]), body, Buffer.from([0x1c, 0x0d])]));
  }
  return out;
}

/** µs per message of wall time and of this process's CPU time (all threads: GC included). */
interface Timing {
  wall: number;
  cpu: number;
}

async function slice(side: Side, msgs: readonly Buffer[]): Promise<Timing> {
  const t = performance.now();
  const c = process.cpuUsage();
  for (const m of msgs) await side.handle(m);
  const used = process.cpuUsage(c);
  return {
    wall: ((performance.now() - t) * 1000) / msgs.length,
    // CPU time is what a loaded VM distorts least: time spent waiting for a core is not counted.
    cpu: (used.user + used.system) / msgs.length,
  };
}

function quantile(sorted: readonly number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return (sorted[lo] ?? NaN) + ((sorted[hi] ?? NaN) - (sorted[lo] ?? NaN)) * (pos - lo);
}

function summary(xs: readonly number[]): string {
  const s = [...xs].sort((x, y) => x - y);
  const q1 = quantile(s, 0.25);
  const q3 = quantile(s, 0.75);
  return `median ${quantile(s, 0.5).toFixed(2)}, IQR ${q1.toFixed(2)}-${q3.toFixed(2)} (${(q3 - q1).toFixed(2)})`;
}

/** Same messages, same clock and ACK ids: both sides must answer and encode byte for byte alike. */
async function assertSame(a: Side, b: Side): Promise<void> {
  for (const m of framedMessages('same', 400)) {
    const x = await a.handle(m);
    const y = await b.handle(m);
    const same = (p: Buffer[], q: Buffer[]) =>
      p.length === q.length && p.every((v, i) => q[i]?.equals(v) === true);
    if (!same(x.acks, y.acks) || !same(x.values, y.values)) {
      throw new Error(`A and B differ on ${m.toString('latin1', 1, 80)}`);
    }
  }
}

async function main(): Promise<void> {
  const b = await loadSide('b', resolve(args.b ?? resolve(import.meta.dirname, '..')));
  const a = args.a ? await loadSide('a', resolve(args.a)) : null;
  if (a) await assertSame(a, b);
  const sides = [a, b].filter((s): s is Side => s !== null && (!args.only || s.name === args.only));
  for (const s of sides) await slice(s, framedMessages(`warm-${s.name}`, 3 * PER_SLICE));
  const us = new Map<string, Timing[]>(sides.map((s) => [s.name, []]));
  const ratios: Timing[] = [];
  for (let i = 0; i < SLICES; i++) {
    // ABBA: neither side always runs first after the other.
    const order = i % 2 === 0 ? sides : [...sides].reverse();
    const got = new Map<string, Timing>();
    for (const s of order) {
      const v = await slice(s, framedMessages(`s${i}-${s.name}`, PER_SLICE));
      got.set(s.name, v);
      us.get(s.name)?.push(v);
    }
    const [ta, tb] = [got.get('a'), got.get('b')];
    if (ta && tb) ratios.push({ wall: tb.wall / ta.wall, cpu: tb.cpu / ta.cpu });
  }
  console.log(`${SLICES} slices of ${PER_SLICE} messages per side (bench mix), ABBA:`);
  for (const k of ['cpu', 'wall'] as const) {
    console.log(`µs/message (${k === 'cpu' ? 'process CPU time' : 'wall time'}):`);
    for (const [name, xs] of us) console.log(`  ${name}: ${summary(xs.map((x) => x[k]))}`);
    if (ratios.length > 0) console.log(`  b/a per slice pair: ${summary(ratios.map((x) => x[k]))}`);
  }
}

await main();
