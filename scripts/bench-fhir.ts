/**
 * FHIR ingest benchmarks on a running stack (e.g. `npm run up`'s), in topics,
 * schemas and a store schema of their own, removed afterwards (unless --keep).
 *
 * NDJSON bulk import (default): writes an NDJSON file of made-up resources
 * (default 100,000), imports it with `hub fhir import`'s code path and
 * progress display, prints resources/s.
 *
 *   npm run bench:fhir:standalone -- [--count 100000] [--chunk-size 1000] [--workers n] [--keep]
 *
 * Bundles, A/B (--bundles): adapter-fhir as a child process from each of two
 * compiled trees (`<root>/dist`, e.g. `git archive HEAD | tar -x -C /tmp/old`,
 * node_modules linked, `npx tsc -p tsconfig.build.json` there; B defaults to
 * this tree's dist), POST / with batch and transaction Bundles of 100 PUT
 * entries from 8 clients, the two sides alternating (ABBA) in slices of
 * --bundles-per-slice Bundles. Per slice: resources/s and the adapter's CPU
 * (/proc) per resource; per pair: B ÷ A. Medians with IQR over --pairs.
 *
 *   npm run bench:fhir:standalone -- --bundles --a /tmp/old [--b .] [--pairs 7] [--bundles-per-slice 100] [--type batch|transaction|both] [--b-env KEY=VALUE ...]
 *
 * --b-env sets a variable for side B only (e.g. FHIR_VALIDATE_THREADS=1 to compare settings of
 * one tree: `--a . --b . --b-env ...`). Each side's peak RSS (VmHWM) is printed at the end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { AUDIT_TOPIC } from '../libs/audit/topic.js';
import { importFile } from '../libs/fhir/import/file.js';
import { databaseEnv, kafkaEnv, loadConfig, z } from '../libs/config/index.js';
import { createDb, dropSchema } from '../libs/db/index.js';
import { catalogTopicDefinitions, registerAllSchemas } from '../libs/events/contracts.js';
import { EVENT_CONTRACTS, type EventType } from '../libs/events/index.js';
import { createRegistryClientFromEnv } from '../libs/events/registry.js';
import { deleteTopics, ensureTopics } from '../libs/kafka/admin.js';
import { createKafkaClientFromEnv } from '../libs/kafka/client.js';
import { dlqTopicFor } from '../libs/kafka/dlq.js';
import { LOCAL_FHIR_CLIENTS_FILE, localIngestAuth } from '../libs/stack/ingest-token.js';
import { createLogger } from '../libs/telemetry/logger.js';
import { generateResources } from '../test/fixtures/fhir/generate.js';
import { spreadOf } from './bench/lib.js';
import { cpuSecondsOf, freePort } from './bench/services.js';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '100000' },
    'chunk-size': { type: 'string', default: '1000' },
    keep: { type: 'boolean', default: false },
    workers: { type: 'string' },
    bundles: { type: 'boolean', default: false },
    a: { type: 'string' },
    b: { type: 'string', default: '.' },
    pairs: { type: 'string', default: '7' },
    'bundles-per-slice': { type: 'string', default: '100' },
    type: { type: 'string', default: 'both' },
    'b-env': { type: 'string', multiple: true, default: [] },
  },
});
const count = Number.parseInt(values.count, 10);
const chunkSize = Number.parseInt(values['chunk-size'], 10);
const cfg = loadConfig(z.object({ ...kafkaEnv, ...databaseEnv }));
const id = `bench_${randomBytes(3).toString('hex')}`;
const topic = (n: string) => `${n}.${id}`;
const topicFor = (t: EventType) => topic(EVENT_CONTRACTS[t].topic);
const logger = createLogger({ name: 'bench-fhir', level: 'error' });
const kafka = createKafkaClientFromEnv(cfg, { clientId: id, logger });
const registry = createRegistryClientFromEnv(cfg);
const dir = mkdtempSync(join(tmpdir(), 'bench-fhir-'));
const file = join(dir, `bench-${count}.ndjson`);

async function cleanup(): Promise<void> {
  rmSync(dir, { recursive: true, force: true });
  if (values.keep) return;
  await deleteTopics(kafka, [
    ...catalogTopicDefinitions(topic).map((t) => t.name),
    dlqTopicFor('adapter-fhir', topic),
  ]);
  // The adapters' audit topic, which only bundle runs make.
  if (values.bundles) await deleteTopics(kafka, [topic(AUDIT_TOPIC)]);
  for (const t of Object.keys(EVENT_CONTRACTS) as EventType[]) {
    await registry.deleteSubject(`${topicFor(t)}-${EVENT_CONTRACTS[t].fullName}`).catch(() => undefined);
  }
  const db = createDb(cfg.DATABASE_URL, { passwordFile: cfg.DATABASE_PASSWORD_FILE });
  for (const schema of [id, `${id}_a`, `${id}_b`]) await dropSchema(db, schema);
  await db.destroy();
}

async function importRun(): Promise<void> {
  process.stderr.write(`generating ${count} resources into ${file}\n`);
  const out = createWriteStream(file);
  for (const r of generateResources(count, { prefix: id.replace('_', '-') })) {
    if (!out.write(`${JSON.stringify(r)}\n`)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  process.stderr.write(`${(statSync(file).size / 1e6).toFixed(1)} MB; topics *.${id}, store schema ${id}\n`);
  await ensureTopics(kafka, catalogTopicDefinitions(topic));
  await registerAllSchemas(registry, { topicFor });

  const r = await importFile({
    file,
    chunkSize,
    progress: true,
    ...(values.workers !== undefined ? { workers: Number.parseInt(values.workers, 10) } : {}),
    env: { ...process.env, HUB_TOPIC_SUFFIX: id, FHIR_STORE_SCHEMA: id },
  });
  const line = `bench:fhir ${r.lastLine} resources (${r.counts.created} created, ${r.counts.invalid} invalid), ${r.events} events in ${r.seconds.toFixed(1)} s = ${Math.round(r.resourcesPerSecond)} resources/s`;
  process.stdout.write(`${line}\n`);
}

// ---------- bundles, A/B ----------

const BUNDLE_SIZE = 100;
const CLIENTS = 8;
type BundleType = 'batch' | 'transaction';

interface Side {
  name: 'a' | 'b';
  base: string;
  pid: number;
  child: ChildProcess;
}

/** adapter-fhir from `<root>/dist` on this stack, writing into this run's topics and its own store schema. */
async function startSide(
  name: Side['name'],
  root: string,
  extra: Record<string, string> = {},
): Promise<Side> {
  const port = await freePort();
  const child = spawn(process.execPath, [resolve(root, 'dist/services/adapter-fhir/main.js')], {
    env: {
      ...process.env,
      HUB_TOPIC_SUFFIX: id,
      LOG_LEVEL: 'error',
      HTTP_PORT: String(port),
      FHIR_STORE_SCHEMA: `${id}_${name}`,
      FHIR_TRANSACTIONAL_ID: `tx-${id}-${name}`,
      FHIR_MAX_BODY_BYTES: String(8 * 1024 * 1024),
      FHIR_CLIENTS_FILE: LOCAL_FHIR_CLIENTS_FILE,
      ...extra,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  while (
    !(await fetch(`${base}/ready`).then(
      (r) => r.ok,
      () => false,
    ))
  ) {
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline)
      throw new Error(
        `adapter-fhir ${name} did not start (${child.signalCode ?? `exit code ${child.exitCode ?? 'none: still starting'}`})`,
      );
    await new Promise((r) => setTimeout(r, 200));
  }
  return { name, base, pid: child.pid ?? 0, child };
}

let sliceNo = 0;
/** `n` Bundles of new resources (always new ids: every entry is a create), as request bodies. */
function bundleBodies(type: BundleType, n: number): string[] {
  const gen = generateResources(n * BUNDLE_SIZE, { prefix: `s${sliceNo++}${id.replace('_', '-')}` });
  const out: string[] = [];
  for (let b = 0; b < n; b++) {
    const entry = [];
    for (let i = 0; i < BUNDLE_SIZE; i++) {
      const r = gen.next().value as { resourceType: string; id: string };
      entry.push({ resource: r, request: { method: 'PUT', url: `${r.resourceType}/${r.id}` } });
    }
    out.push(JSON.stringify({ resourceType: 'Bundle', type, entry }));
  }
  return out;
}

/** One slice: the bodies (made before the clock starts) from CLIENTS clients; accepted resources/s and adapter CPU µs per resource. */
async function slice(side: Side, type: BundleType, n: number, auth: { authorization: string }) {
  const work = bundleBodies(type, n);
  let next = 0;
  let ok = 0;
  let failed = 0;
  const cpu0 = await cpuSecondsOf(side.pid);
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      for (let body = work[next++]; body !== undefined; body = work[next++]) {
        const res = await fetch(`${side.base}/`, {
          method: 'POST',
          headers: { 'content-type': 'application/fhir+json', ...auth },
          body,
        });
        const answer = (await res.json()) as { entry?: { response?: { status?: string } }[] };
        const accepted = (answer.entry ?? []).filter((e) => /^2/.test(e.response?.status ?? '')).length;
        if (res.ok) ok += accepted;
        if (!res.ok || accepted < BUNDLE_SIZE) failed++;
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const cpu = (await cpuSecondsOf(side.pid)) - cpu0;
  if (failed > 0) process.stderr.write(`${side.name} ${type}: ${failed} Bundles not fully accepted\n`);
  return { rate: ok / seconds, cpuUs: (cpu * 1e6) / Math.max(1, ok) };
}

/** Peak resident set (VmHWM, MB) of a side's process so far. */
async function peakRssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) / 1024;
}

const bEnv = Object.fromEntries(
  values['b-env'].map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
);

const fmt = (xs: number[], digits = 0) => {
  const s = spreadOf(xs);
  return `${s.median.toFixed(digits)} (IQR ${s.q1.toFixed(digits)}-${s.q3.toFixed(digits)}, n ${s.n})`;
};

async function bundleRun(): Promise<void> {
  if (!values.a) throw new Error('--bundles needs --a <root of the other compiled tree>');
  await ensureTopics(kafka, [
    ...catalogTopicDefinitions(topic),
    { name: dlqTopicFor('adapter-fhir', topic), partitions: 1, retentionMs: -1 },
  ]);
  await registerAllSchemas(registry, { topicFor });
  const auth = await localIngestAuth();
  // Filled one at a time so that a side that fails to start does not leave the other running.
  const sides: Side[] = [];
  try {
    sides.push(await startSide('a', values.a));
    sides.push(await startSide('b', values.b, bEnv));
    const types: BundleType[] =
      values.type === 'both' ? ['batch', 'transaction'] : [values.type as BundleType];
    const n = Number(values['bundles-per-slice']);
    for (const s of sides) for (const t of types) await slice(s, t, Math.max(10, Math.round(n / 4)), auth);
    for (const t of types) {
      const got = {
        a: { rate: [] as number[], cpu: [] as number[] },
        b: { rate: [] as number[], cpu: [] as number[] },
      };
      const ratio = { rate: [] as number[], cpu: [] as number[] };
      for (let p = 0; p < Number(values.pairs); p++) {
        const order = p % 2 === 0 ? sides : [...sides].reverse();
        const pair = { a: { rate: 0, cpuUs: 0 }, b: { rate: 0, cpuUs: 0 } };
        for (const s of order) {
          const r = (pair[s.name] = await slice(s, t, n, auth));
          got[s.name].rate.push(r.rate);
          got[s.name].cpu.push(r.cpuUs);
        }
        ratio.rate.push(pair.b.rate / pair.a.rate);
        ratio.cpu.push(pair.b.cpuUs / pair.a.cpuUs);
      }
      process.stdout.write(
        `${new Date().toISOString()} ${t} bundles, ${values.pairs} pairs of ${n} Bundles x ${BUNDLE_SIZE} PUT, ${CLIENTS} clients\n` +
          `  a: ${fmt(got.a.rate)} resources/s, ${fmt(got.a.cpu)} CPU us/resource\n` +
          `  b: ${fmt(got.b.rate)} resources/s, ${fmt(got.b.cpu)} CPU us/resource\n` +
          `  b/a: resources/s ${fmt(ratio.rate, 3)}, CPU per resource ${fmt(ratio.cpu, 3)}\n`,
      );
    }
    for (const s of sides)
      process.stdout.write(`  ${s.name}: peak RSS ${(await peakRssMb(s.pid)).toFixed(0)} MB\n`);
  } finally {
    for (const s of sides) {
      if (s.child.exitCode !== null || s.child.signalCode !== null) continue;
      s.child.kill('SIGTERM');
      await once(s.child, 'exit');
    }
  }
}

try {
  await (values.bundles ? bundleRun() : importRun());
} finally {
  await cleanup();
}
process.exit(0);
