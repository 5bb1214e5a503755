// Scenario 2, FHIR: bundle ingest over HTTP (the real adapter-fhir as a child
// process on the bench stack: POST / with transaction and batch bundles of
// PUT entries) and NDJSON bulk import (the `hub fhir import` code path,
// importFile), in resources/s. Resources come from the same generator as
// scripts/bench-fhir.ts (patients, encounters, orders, results).
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { importFile } from '../../libs/fhir/import/file.js';
import { topicNamer } from '../../libs/config/index.js';
import { createDb, dropSchema } from '../../libs/db/index.js';
import { catalogTopicDefinitions, registerAllSchemas } from '../../libs/events/contracts.js';
import { EVENT_CONTRACTS, type EventType } from '../../libs/events/index.js';
import { createRegistryClient } from '../../libs/events/registry.js';
import { deleteTopics, ensureTopics } from '../../libs/kafka/admin.js';
import { createKafkaClient } from '../../libs/kafka/client.js';
import { dlqTopicFor } from '../../libs/kafka/dlq.js';
import { LOCAL_FHIR_CLIENTS_FILE, localIngestAuth } from '../../libs/stack/ingest-token.js';
import { createLogger } from '../../libs/telemetry/logger.js';
import { generateResources } from '../../test/fixtures/fhir/generate.js';
import { latencySummary, medianFigure, progressBar, type BenchEnv, type Figure } from './lib.js';
import type { ScenarioResult } from './lib.js';
import { freePort, serviceEnv, startService } from './services.js';

const BUNDLE_SIZE = 100;
const CLIENTS = 8;

interface Entry {
  resourceType: string;
  id: string;
}

function bundleOf(type: 'transaction' | 'batch', resources: Entry[]): string {
  return JSON.stringify({
    resourceType: 'Bundle',
    type,
    entry: resources.map((r) => ({
      resource: r,
      request: { method: 'PUT', url: `${r.resourceType}/${r.id}` },
    })),
  });
}

async function bundleLoad(
  base: string,
  type: 'transaction' | 'batch',
  seconds: number,
  prefix: string,
  label = `fhir ${type} bundles`,
): Promise<{ resources: number; seconds: number; latNs: number[]; failed: number }> {
  const auth = await localIngestAuth();
  // Each client walks its own slice of the generator, so every bundle is new resources.
  const gen = generateResources(10_000_000, { prefix }) as Generator<Entry>;
  const take = (): Entry[] => {
    const out: Entry[] = [];
    for (let i = 0; i < BUNDLE_SIZE; i++) {
      const n = gen.next();
      if (n.done) break;
      out.push(n.value);
    }
    return out;
  };
  let resources = 0;
  let failed = 0;
  const latNs: number[] = [];
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  const bar = progressBar(label, Math.round(seconds), 's');
  const tick = setInterval(
    () => bar.update(Math.min(seconds, Math.round((performance.now() - t0) / 1000))),
    500,
  );
  try {
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (performance.now() < end) {
          const body = bundleOf(type, take());
          const s = performance.now();
          const res = await fetch(`${base}/`, {
            method: 'POST',
            headers: { 'content-type': 'application/fhir+json', ...auth },
            body,
          });
          const answer = (await res.json()) as { entry?: { response?: { status?: string } }[] };
          latNs.push((performance.now() - s) * 1e6);
          // A batch answers 200 with a status per entry: only accepted entries count.
          const ok = (answer.entry ?? []).filter((e) => /^2/.test(e.response?.status ?? '')).length;
          if (res.ok) resources += ok;
          if (!res.ok || ok < BUNDLE_SIZE) failed++;
        }
      }),
    );
  } finally {
    clearInterval(tick);
    bar.update(Math.round(seconds));
    bar.stop();
  }
  return { resources, seconds: (performance.now() - t0) / 1000, latNs, failed };
}

/** What the phases of one run share. */
interface FhirRun {
  env: BenchEnv;
  suffix: string;
  /** For resource ids: FHIR ids allow [A-Za-z0-9.-] only. */
  idPrefix: string;
  figures: Figure[];
  notes: string[];
}

type BundleType = 'transaction' | 'batch';

/**
 * Transaction and batch bundles in `env.slices` slices each, alternating
 * (ABBA) so that both kinds see the machine alike; resources/s is the
 * median of the slices with its IQR, latencies are pooled.
 */
async function bundleSlices(run: FhirRun, base: string): Promise<void> {
  const { env, idPrefix } = run;
  const slices = Math.max(1, env.slices);
  const rates: Record<BundleType, number[]> = { transaction: [], batch: [] };
  const lat: Record<BundleType, number[]> = { transaction: [], batch: [] };
  const failed: Record<BundleType, number> = { transaction: 0, batch: 0 };
  for (let i = 0; i < slices; i++) {
    const order: BundleType[] = i % 2 === 0 ? ['transaction', 'batch'] : ['batch', 'transaction'];
    for (const type of order) {
      const label = `fhir ${type} ${i + 1}/${slices}`;
      const r = await bundleLoad(base, type, env.seconds / slices, `${type[0]}${i}${idPrefix}`, label);
      rates[type].push(r.resources / r.seconds);
      for (const x of r.latNs) lat[type].push(x);
      failed[type] += r.failed;
    }
  }
  for (const type of ['transaction', 'batch'] as const) {
    const ingest = medianFigure(`${type} bundle ingest`, rates[type], 'resources/s');
    const l = latencySummary(lat[type]);
    run.figures.push(
      ingest,
      { name: `${type} bundle p50`, value: l.p50, unit: 'ms', better: 'lower' },
      { name: `${type} bundle p99`, value: l.p99, unit: 'ms', better: 'lower' },
    );
    if (failed[type])
      run.notes.push(`${type}: ${failed[type]} bundles answered with an error status or rejected entries.`);
    env.log(`fhir ${type}: ${Math.round(ingest.value)} resources/s (median of ${rates[type].length} slices)`);
  }
}

/** Transaction and batch bundles against adapter-fhir as a child process, after a warm-up. */
async function bundlePhase(run: FhirRun, storeSchema: string, warmup: number): Promise<void> {
  const { env, suffix, idPrefix } = run;
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const svc = await startService(env, 'adapter-fhir', {
    script: 'services/adapter-fhir/main.ts',
    env: serviceEnv(env, suffix, {
      HTTP_PORT: String(port),
      FHIR_STORE_SCHEMA: storeSchema,
      FHIR_TRANSACTIONAL_ID: `tx-${suffix}`,
      FHIR_MAX_BODY_BYTES: String(8 * 1024 * 1024),
      FHIR_CLIENTS_FILE: LOCAL_FHIR_CLIENTS_FILE,
    }),
    ready: async () => (await fetch(`${base}/ready`)).ok,
  });
  try {
    await bundleLoad(base, 'batch', warmup, `w${idPrefix}`);
    await bundleSlices(run, base);
  } finally {
    await svc.stop();
  }
}

/** `count` generated resources written to an NDJSON file in `dir`, then imported with importFile. */
async function importPhase(run: FhirRun, storeSchema: string, dir: string, count: number): Promise<void> {
  const { env, suffix, idPrefix } = run;
  const file = join(dir, `bench-${count}.ndjson`);
  const out = createWriteStream(file);
  for (const r of generateResources(count, { prefix: `i${idPrefix}` })) {
    if (!out.write(`${JSON.stringify(r)}\n`)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  const size = (await stat(file)).size;
  const r = await importFile({
    file,
    progress: true,
    env: serviceEnv(env, suffix, { FHIR_STORE_SCHEMA: storeSchema, LOG_LEVEL: 'error' }),
  });
  run.figures.push({
    name: 'NDJSON import',
    value: r.resourcesPerSecond,
    unit: 'resources/s',
    better: 'higher',
  });
  run.notes.push(
    `NDJSON import: ${r.lines.toLocaleString('en-US')} resources (${(size / 1e6).toFixed(1)} MB), ${r.counts.created} created, ` +
      `${r.counts.invalid} invalid, ${r.events} events in ${r.seconds.toFixed(1)} s.`,
  );
  env.log(`fhir import: ${Math.round(r.resourcesPerSecond)} resources/s`);
}

export async function fhirScenario(env: BenchEnv): Promise<ScenarioResult> {
  const suffix = `bench_${randomBytes(3).toString('hex')}`;
  const run: FhirRun = { env, suffix, idPrefix: suffix.replace('_', '-'), figures: [], notes: [] };
  const topic = topicNamer(suffix);
  const topicFor = (t: EventType) => topic(EVENT_CONTRACTS[t].topic);
  const logger = createLogger({ name: 'bench-fhir', level: 'silent' });
  const kafka = createKafkaClient({ brokers: env.stack.kafka.brokers, clientId: 'bench-fhir', logger });
  await ensureTopics(kafka, [
    ...catalogTopicDefinitions(topic),
    { name: dlqTopicFor('adapter-fhir', topic), partitions: 1, retentionMs: -1 },
  ]);
  await registerAllSchemas(createRegistryClient(env.stack.registryUrl), { topicFor });
  const httpSchema = `${suffix}_http`;
  const importSchema = `${suffix}_import`;
  const dir = await mkdtemp(join(tmpdir(), 'bench-fhir-'));
  const warmup = Math.max(3, Math.round(env.seconds / 3));
  const count = Math.max(1000, Math.round(100_000 * env.scale));
  try {
    await bundlePhase(run, httpSchema, warmup);
    await importPhase(run, importSchema, dir, count);
  } finally {
    await rm(dir, { recursive: true, force: true });
    const db = createDb(env.databaseUrl);
    for (const s of [httpSchema, importSchema]) await dropSchema(db, s).catch(() => undefined);
    await db.destroy();
    await deleteTopics(kafka, [
      ...catalogTopicDefinitions(topic).map((t) => t.name),
      dlqTopicFor('adapter-fhir', topic),
    ]).catch(() => undefined);
  }
  return {
    scenario: '2. FHIR: bundle ingest (HTTP) and NDJSON import',
    setup:
      `adapter-fhir as a child process; warm-up ${warmup}s, then ${env.seconds}s each of transaction and batch bundles ` +
      `(${BUNDLE_SIZE} PUT entries each: patients, encounters, orders, results, always new ids) from ${CLIENTS} concurrent HTTP clients, ` +
      `in ${Math.max(1, env.slices)} slices of each kind, the two kinds alternating (ABBA); resources/s is the median of the slices ` +
      `(IQR beside it), latencies are pooled. ` +
      `NDJSON import: ${count.toLocaleString('en-US')} resources of the same generator through importFile (hub fhir import), default chunking and workers.`,
    figures: run.figures,
    notes: [
      ...run.notes,
      'Target (issue 23): FHIR ingest >= 5,000 resources/s for transaction and batch Bundles and the NDJSON import (issue 8 asked 10,000).',
    ],
  };
}
