// Scenario: outbound delivery (issue 20). Per channel (signed webhook, FHIR
// rest-hook, HL7 v2 over MLLP), against a local receiver that answers at
// once: the delivery service (built dist/, as deployed) catching a new
// subscription up over N registrations (events/s), then live: registrations
// published at a steady rate, each one's time from the publish call to its
// arrival at the receiver (p50/p99). The receiver's own limit is measured in
// the same run: a client that is not the hub sends it the same request the
// hub sent, one in flight as the hub has, for as long as the hub's slice took;
// hub and limit slices alternate so that they share the machine's moment.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Hl7Client, Hl7Server, type Hl7MessageEvent } from '@medplum/hl7';
import { Hl7Message } from '@medplum/core';
import { createDb, type Knex } from '../../libs/db/index.js';
import type { Channel, SubscriptionInput } from '../../libs/delivery/model.js';
import { createSubscription, deleteSubscription, migrateDelivery } from '../../libs/delivery/store.js';
import { createEventCodec } from '../../libs/events/codec.js';
import { registerAllSchemas } from '../../libs/events/contracts.js';
import { EVENT_CONTRACTS, type ClinicalEvent, type EventType } from '../../libs/events/index.js';
import { createRegistryClient } from '../../libs/events/registry.js';
import { deleteTopics, ensureTopics } from '../../libs/kafka/admin.js';
import { createKafkaClient } from '../../libs/kafka/client.js';
import { createEventProducer, type EventProducer } from '../../libs/kafka/producer.js';
import { createLogger } from '../../libs/telemetry/logger.js';
import { registration } from './events.js';
import {
  latencySummary,
  medianFigure,
  pairSpread,
  type BenchEnv,
  type Figure,
  type ScenarioResult,
} from './lib.js';
import { freePort, serviceEnv, startService } from './services.js';

/** What a receiver saw: arrival times in order, and one request to replay for the limit. */
interface Receiver {
  kind: 'http' | 'mllp';
  port: number;
  arrivals: number[];
  sample: { body: string; headers: Record<string, string> } | null;
  close(): Promise<void>;
}

const KEEP_HEADERS = [
  'content-type',
  'authorization',
  'webhook-id',
  'webhook-timestamp',
  'webhook-signature',
];

async function httpReceiver(): Promise<Receiver> {
  const r: Receiver = { kind: 'http', port: 0, arrivals: [], sample: null, close: () => Promise.resolve() };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      r.arrivals.push(performance.now());
      r.sample ??= { body: Buffer.concat(chunks).toString('utf8'), headers: pick(req.headers) };
      res.writeHead(204).end();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
  r.port = (server.address() as AddressInfo).port;
  r.close = () => new Promise<void>((res) => server.close(() => res()));
  return r;
}

function pick(h: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of KEEP_HEADERS) if (typeof h[k] === 'string') out[k] = h[k];
  return out;
}

async function mllpReceiver(): Promise<Receiver> {
  const r: Receiver = {
    kind: 'mllp',
    port: await freePort(),
    arrivals: [],
    sample: null,
    close: () => Promise.resolve(),
  };
  const server = new Hl7Server((conn) => {
    conn.addEventListener('message', ({ message }: Hl7MessageEvent) => {
      r.arrivals.push(performance.now());
      r.sample ??= { body: message.toString(), headers: {} };
      conn.send(message.buildAck());
    });
  });
  await server.start(r.port);
  r.close = () => server.stop({ forceDrainTimeoutMs: 1_000 });
  return r;
}

/** One request the hub sent, sent again by a client that is not the hub, one at a time, for `ms`. */
async function receiverLimit(r: Receiver, ms: number): Promise<number> {
  const sample = r.sample;
  if (!sample) throw new Error('the receiver got nothing to replay');
  const before = r.arrivals.length;
  const end = performance.now() + ms;
  if (r.kind === 'http') {
    const url = `http://127.0.0.1:${r.port}/`;
    while (performance.now() < end) {
      const res = await fetch(url, { method: 'POST', body: sample.body, headers: sample.headers });
      await res.arrayBuffer();
    }
  } else {
    const client = new Hl7Client({ host: '127.0.0.1', port: r.port, keepAlive: true });
    const msg = Hl7Message.parse(sample.body);
    try {
      while (performance.now() < end) await client.sendAndWait(msg);
    } finally {
      await client.close();
    }
  }
  const n = r.arrivals.length - before;
  return n / (ms / 1000);
}

function channelFor(kind: string, r: Receiver): Channel {
  const endpoint = `http://127.0.0.1:${r.port}/hook`;
  if (kind === 'webhook') {
    return {
      type: 'webhook',
      endpoint,
      secret: `whsec_${Buffer.alloc(32, 7).toString('base64')}`,
      timeoutMs: 10_000,
    };
  }
  if (kind === 'rest-hook') {
    return {
      type: 'rest-hook',
      endpoint,
      topic: 'http://hub.example/fhir/SubscriptionTopic/patient',
      payload: 'id-only',
      auth: { type: 'bearer', token: 'bench-token-0000' },
      heartbeatSeconds: 0,
      timeoutMs: 10_000,
    };
  }
  return {
    type: 'mllp',
    host: '127.0.0.1',
    port: r.port,
    version: '2.5.1',
    sendingApplication: 'HUB',
    sendingFacility: 'HUB',
    ackTimeoutMs: 30_000,
    tls: false,
  };
}

interface Rig {
  db: Knex;
  schema: string;
  producer: EventProducer;
  tag: string;
}

async function subscribe(rig: Rig, channel: Channel, from: 'beginning' | 'now'): Promise<string> {
  const input: SubscriptionInput = {
    name: `bench ${channel.type}`,
    criteria: {
      eventTypes: ['PatientRegistered'],
      resourceTypes: [],
      facilities: [],
      orderCodes: [],
      patients: [],
    },
    channel,
    start: { from },
    retry: { maxBackoffSeconds: 5, giveUpAfterSeconds: 600 },
  };
  const id = randomUUID();
  await createSubscription(rig.db, rig.schema, input, { id, now: new Date() });
  return id;
}

async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Catch-up slices alternating with limit slices; then the live phase. */
async function benchChannel(env: BenchEnv, rig: Rig, kind: string, n: number): Promise<Figure[]> {
  const r = kind === 'mllp' ? await mllpReceiver() : await httpReceiver();
  try {
    const hub: number[] = [];
    const limit: number[] = [];
    for (let s = 0; s < env.slices; s++) {
      const start = r.arrivals.length;
      const id = await subscribe(rig, channelFor(kind, r), 'beginning');
      await until(() => r.arrivals.length > start, 120_000, `${kind}: first delivery`);
      const t0 = r.arrivals[start] ?? 0;
      await until(() => r.arrivals.length >= start + n, 600_000, `${kind}: ${n} deliveries`);
      const t1 = r.arrivals[start + n - 1] ?? t0;
      await deleteSubscription(rig.db, rig.schema, id);
      const seconds = (t1 - t0) / 1000;
      hub.push((n - 1) / seconds);
      limit.push(await receiverLimit(r, Math.max(1000, t1 - t0)));
      env.log(
        `delivery ${kind}: slice ${s + 1}: hub ${Math.round(hub.at(-1) ?? 0)}/s, receiver ${Math.round(limit.at(-1) ?? 0)}/s`,
      );
    }
    const live = await livePhase(env, rig, kind, r);
    return [
      medianFigure(`${kind} catch-up`, hub, 'events/s', {
        limit: `${kind} receiver limit`,
        ratioSpread: pairSpread(
          hub.map((h, i) => ({ hub: h, limit: limit[i] ?? Number.NaN })),
          'higher',
        ),
      }),
      medianFigure(`${kind} receiver limit`, limit, 'requests/s'),
      { name: `${kind} live p50`, value: live.p50, unit: 'ms', better: 'lower' },
      { name: `${kind} live p99`, value: live.p99, unit: 'ms', better: 'lower' },
    ];
  } finally {
    await r.close();
  }
}

/** Registrations at a steady rate, one publish call each; latency from the call to the arrival. */
async function livePhase(
  env: BenchEnv,
  rig: Rig,
  kind: string,
  r: Receiver,
): Promise<{ p50: number; p99: number }> {
  const id = await subscribe(rig, channelFor(kind, r), 'now');
  // A first delivery shows the subscription's consumer is running: its start is not measured.
  const warm = r.arrivals.length;
  await rig.producer.publish([registration(999_999, `${rig.tag}-warm-${kind}`)]);
  await until(() => r.arrivals.length > warm, 120_000, `${kind}: warm-up delivery`);
  const rate = Number(process.env['BENCH_DELIVERY_RATE'] ?? 100);
  const total = Math.max(50, Math.round(rate * env.seconds));
  const start = r.arrivals.length;
  const sent: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((res) => setTimeout(res, wait));
    sent.push(performance.now());
    await rig.producer.publish([registration(1_000_000 + i, `${rig.tag}-live-${kind}`)]);
  }
  await until(() => r.arrivals.length >= start + total, 120_000, `${kind}: live deliveries`);
  await deleteSubscription(rig.db, rig.schema, id);
  const ns = sent.map((s, i) => ((r.arrivals[start + i] ?? s) - s) * 1e6);
  const l = latencySummary(ns);
  env.log(
    `delivery ${kind}: live ${total} at ${rate}/s: p50 ${l.p50.toFixed(1)} ms, p99 ${l.p99.toFixed(1)} ms`,
  );
  return { p50: l.p50, p99: l.p99 };
}

export const DELIVERY_CHANNELS = ['webhook', 'rest-hook', 'mllp'] as const;

export async function deliveryScenario(env: BenchEnv): Promise<ScenarioResult> {
  const tag = `bdel${Date.now().toString(36)}`;
  const topic = (name: string) => `${name}.${tag}`;
  const logger = createLogger({ name: 'bench-delivery', level: 'warn' });
  const kafka = createKafkaClient({ brokers: env.stack.kafka.brokers, clientId: tag, logger });
  const patientTopic = topic(EVENT_CONTRACTS.PatientRegistered.topic);
  // One partition: the log order is the publish order, so the k-th arrival is the k-th event.
  await ensureTopics(kafka, [{ name: patientTopic, partitions: 1, replicationFactor: 1, retentionMs: -1 }]);
  const registry = createRegistryClient(env.stack.registryUrl);
  const topicFor = (t: EventType) => topic(EVENT_CONTRACTS[t].topic);
  await registerAllSchemas(registry, { topicFor });
  const producer = createEventProducer({ kafka, codec: createEventCodec(registry), topicFor });
  await producer.connect();
  const db = createDb(env.databaseUrl);
  const schema = `bench_delivery_${tag}`;
  await migrateDelivery(db, schema);
  const n = Math.max(500, Math.round(5_000 * env.scale));
  const events: ClinicalEvent[] = Array.from({ length: n }, (_, i) => registration(i, tag));
  for (let i = 0; i < events.length; i += 1000) await producer.publish(events.slice(i, i + 1000));
  const port = await freePort();
  const svc = await startService(env, 'delivery', {
    script: 'services/delivery/main.ts',
    env: serviceEnv(env, tag, { HTTP_PORT: String(port), DELIVERY_SCHEMA: schema, DELIVERY_POLL_MS: '200' }),
    ready: async () => (await fetch(`http://127.0.0.1:${port}/ready`)).ok,
  });
  const figures: Figure[] = [];
  const notes: string[] = [];
  const rig: Rig = { db, schema, producer, tag };
  try {
    for (const kind of DELIVERY_CHANNELS) {
      env.log(`delivery: ${kind}`);
      figures.push(...(await benchChannel(env, rig, kind, n)));
    }
    notes.push(
      `Catch-up: a new subscription from the beginning over ${n.toLocaleString('en-US')} PatientRegistered events on one partition, ` +
        `${env.slices} slices per channel, each followed by the receiver-limit slice of the same length; values are medians over ` +
        `the slices (IQR beside them), the ratio is the median of the slice pairs' ratios. ` +
        `Live: ${process.env['BENCH_DELIVERY_RATE'] ?? 100} events/s for ${env.seconds} s, latency from the publish call to the arrival.`,
    );
  } finally {
    await svc.stop();
    await producer.disconnect();
    await deleteTopics(kafka, [patientTopic]).catch(() => undefined);
    await db.raw('drop schema if exists ?? cascade', [schema]);
    await db.destroy();
  }
  return {
    scenario: 'Outbound delivery per channel (issue 20)',
    setup:
      'The delivery service from dist/, one subscription at a time, a local receiver answering at once (HTTP 204, or AA over MLLP via @medplum/hl7).',
    figures,
    notes,
  };
}
