/**
 * Throughput and ACK latency of the HL7 adapter over MLLP against the real
 * stack. Starts the adapter (services/adapter-hl7/main.ts) as its own
 * process on isolated topics (HUB_TOPIC_SUFFIX), then for each connection
 * count runs that many concurrent senders; each sender behaves like an
 * original-mode interface engine: send, wait for the ACK, send the next.
 *
 *   npm run bench:hl7:standalone -- [--connections 8,32] [--messages 4000] [--rate 2000] [--target host:port] [--keep]
 *
 * --target benchmarks an adapter that is already running (its topics are
 * then the caller's business); --messages is per connection-count run.
 * --rate runs open loop instead: messages are due on a fixed schedule
 * (connections interleaved) and each ACK's latency counts from when its
 * message was due, so a stall is not hidden by the sender waiting for it
 * (the bench's open-loop phase, scripts/bench/hl7.ts). When this run
 * started the adapter, each line also gives the adapter's CPU per message
 * (/proc), the figure that compares runs on a shared machine.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { Command } from 'commander';
import { kafkaEnv, loadConfig, topicNamer, z } from '../libs/config/index.js';
import { catalogTopicDefinitions, registerAllSchemas } from '../libs/events/contracts.js';
import { EVENT_CONTRACTS, type EventType } from '../libs/events/index.js';
import { createRegistryClientFromEnv } from '../libs/events/registry.js';
import { deleteTopics, ensureTopics } from '../libs/kafka/admin.js';
import { createKafkaClientFromEnv } from '../libs/kafka/client.js';
import { createLogger } from '../libs/telemetry/logger.js';
import { adtA01, adtMissingPid3, ormO01, oruR01 } from '../test/support/hl7-fixtures.js';
import { RawMllpClient, ackField } from '../test/support/raw-mllp-client.js';
import { cpuSecondsOf, freePort } from './bench/services.js';

const repoDir = join(dirname(fileURLToPath(import.meta.url)), '..');

function percentile(sorted: number[], p: number): number {
  // Undefined only when there is nothing to rank.
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** The mix: mostly ADT and results, some orders, a few content errors. */
function message(run: string, n: number): { text: string; expect: string } {
  const id = `${run}-${n}`;
  const mrn = `BENCH-${n % 997}`;
  const r = n % 20;
  if (r < 8) return { text: adtA01(id, mrn), expect: 'AA' };
  if (r < 15) return { text: oruR01(id, mrn), expect: 'AA' };
  if (r < 19) return { text: ormO01(id, mrn), expect: 'AA' };
  return { text: adtMissingPid3(id), expect: 'AE' };
}

async function runLoad(
  host: string,
  port: number,
  connections: number,
  total: number,
  run: string,
  rate?: number,
): Promise<{ secs: number; latencies: number[]; codes: Map<string, number>; unexpected: number }> {
  const clients = await Promise.all(
    Array.from({ length: connections }, () => RawMllpClient.connect(port, host)),
  );
  const latencies: number[] = [];
  const codes = new Map<string, number>();
  let unexpected = 0;
  let next = 0;
  const t0 = performance.now();
  const interval = rate ? 1000 / rate : 0;
  await Promise.all(
    clients.map(async (c, ci) => {
      for (let k = 0; ; k++) {
        // Open loop: message k of connection ci is due at a fixed time, connections interleaved.
        const n = rate ? k * connections + ci : next++;
        if (n >= total) return;
        const due = t0 + n * interval;
        const wait = due - performance.now();
        if (rate && wait > 1) await new Promise((r) => setTimeout(r, wait));
        const m = message(run, n);
        // Late: from the due time (no coordinated omission); early (a wait under 1 ms is skipped): from the send.
        const s = rate ? Math.min(due, performance.now()) : performance.now();
        await c.send(m.text);
        const code = ackField(await c.nextAck(60_000), 'MSA', 1);
        latencies.push(performance.now() - s);
        codes.set(code, (codes.get(code) ?? 0) + 1);
        if (code !== m.expect) unexpected++;
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  for (const c of clients) c.close();
  return { secs, latencies: latencies.sort((a, b) => a - b), codes, unexpected };
}

interface BenchOptions {
  connections: string;
  messages: string;
  warmup: string;
  rate?: string;
  target?: string;
  keep?: boolean;
}

function parseOptions(): BenchOptions {
  return new Command('bench-hl7')
    .option('--connections <list>', 'comma-separated connection counts', '8,32')
    .option('--messages <n>', 'messages per run', '4000')
    .option('--warmup <n>', 'messages before measuring', '200')
    .option('--rate <msg/s>', 'open loop at this many messages per second (in total) instead of closed loop')
    .option('--target <host:port>', 'an adapter that is already running')
    .option('--keep', 'keep the benchmark topics and subjects')
    .parse()
    .opts<BenchOptions>();
}

/** Where the load goes, and how to stop the adapter when this run started it. */
interface Target {
  host: string;
  port: number;
  stop: (() => Promise<void>) | null;
  /** The adapter's process when this run started it: its CPU per message is reported. */
  pid: number | null;
}

/** main.ts as its own process on the run's topics; resolves once its MLLP port answers. */
async function startAdapter(suffix: string): Promise<Target> {
  const host = '127.0.0.1';
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', join('services', 'adapter-hl7', 'main.ts')], {
    cwd: repoDir,
    env: {
      ...process.env,
      HUB_TOPIC_SUFFIX: suffix,
      MLLP_PORT: String(port),
      HTTP_PORT: '0',
      LOG_LEVEL: 'warn',
      // The adapter needs a zone; the fixtures' times are read as UTC, as before.
      HUB_SITE_CONFIG: process.env['HUB_SITE_CONFIG'] || 'test/fixtures/site/utc.yaml',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (b: Buffer) => {
      out += b.toString();
      if (out.includes('adapter-hl7 ready')) resolve();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`adapter exited (${code}):\n${out}`)));
    // The adapter logs at warn here; its readiness line is info, so poll the port instead.
    const poll = setInterval(() => {
      RawMllpClient.connect(port, host).then(
        (c) => {
          c.close();
          clearInterval(poll);
          resolve();
        },
        () => undefined,
      );
    }, 250);
    child.once('exit', () => clearInterval(poll));
  });
  return {
    host,
    port,
    pid: child.pid ?? null,
    stop: async () => {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

function reportLine(
  connections: number,
  total: number,
  r: Awaited<ReturnType<typeof runLoad>>,
  cpuSeconds: number | null,
): string {
  const codes = [...r.codes].map(([k, v]) => `${k}=${v}`).join(' ');
  const cpu = cpuSeconds === null ? '' : ` adapter cpu=${((cpuSeconds * 1e6) / total).toFixed(0)}us/msg`;
  return (
    `connections=${connections} messages=${total} time=${r.secs.toFixed(2)}s throughput=${(total / r.secs).toFixed(0)} msg/s ` +
    `ack p50=${percentile(r.latencies, 50).toFixed(1)}ms p99=${percentile(r.latencies, 99).toFixed(1)}ms ` +
    `max=${(r.latencies.at(-1) ?? NaN).toFixed(1)}ms${cpu} codes: ${codes} unexpected=${r.unexpected}\n`
  );
}

async function main(): Promise<void> {
  const o = parseOptions();
  const counts = o.connections.split(',').map((s) => Number(s.trim()));
  const total = Number(o.messages);
  const env = loadConfig(z.object({ ...kafkaEnv }));
  const suffix = `bench_${randomBytes(3).toString('hex')}`;
  const topic = topicNamer(suffix);
  const logger = createLogger({ name: 'bench-hl7', level: 'error' });
  const kafka = createKafkaClientFromEnv(env, { clientId: 'bench-hl7', logger });
  const registry = createRegistryClientFromEnv(env);
  const topicFor = (t: EventType) => topic(EVENT_CONTRACTS[t].topic);

  let target: Target;
  if (o.target) {
    const [h, p] = o.target.split(':');
    target = { host: h ?? '127.0.0.1', port: Number(p), stop: null, pid: null };
  } else {
    await ensureTopics(kafka, catalogTopicDefinitions(topic));
    await registerAllSchemas(registry, { topicFor });
    target = await startAdapter(suffix);
  }
  const { host, port } = target;

  process.stdout.write(
    `adapter ${host}:${port}; machine: ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), node ${process.version}\n`,
  );
  try {
    const run = randomBytes(3).toString('hex');
    await runLoad(host, port, 4, Number(o.warmup), `W${run}`);
    const rate = o.rate ? Number(o.rate) : undefined;
    const { pid } = target;
    for (const n of counts) {
      const cpu0 = pid === null ? 0 : await cpuSecondsOf(pid);
      const r = await runLoad(host, port, n, total, `C${n}-${run}`, rate);
      const cpu = pid === null ? null : (await cpuSecondsOf(pid)) - cpu0;
      process.stdout.write(reportLine(n, total, r, cpu));
    }
  } finally {
    await target.stop?.();
    if (!o.target && !o.keep) {
      await deleteTopics(
        kafka,
        catalogTopicDefinitions(topic).map((t) => t.name),
      );
      for (const t of Object.keys(EVENT_CONTRACTS) as EventType[]) {
        await registry.deleteSubject(`${topicFor(t)}-${EVENT_CONTRACTS[t].fullName}`).catch(() => undefined);
      }
    }
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench-hl7 failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
