/**
 * The memory scenario (scripts/bench/memory.ts) against a stack that is
 * already running (the test stack, a dev stack), without the bench runner:
 * every service from the build output, on topics and schemas of its own,
 * removed afterwards. Prints the table and the figures as JSON.
 *
 *   npm run build
 *   KAFKA_BROKERS=... SCHEMA_REGISTRY_URL=... DATABASE_URL=... \
 *     npx tsx scripts/bench-memory.ts [--seconds 20] [--import 20000] [--dist dir] [--env NAME=value]...
 *
 * --dist: a build output elsewhere than dist/ (it must lie inside the
 * repository, for node_modules); --env: extra environment for every service
 * (e.g. --env NODE_HEAP_MB=0 for V8's own heap sizing, to compare), or with
 * a service's name first for that one (--env identity-matcher:NODE_HEAP_MB=128).
 */
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { databaseEnv, kafkaEnv, loadConfig, z } from '../libs/config/index.js';
import { stackConfig } from '../libs/stack/index.js';
import type { BenchEnv } from './bench/lib.js';
import { MEMORY_PHASES, measureMemory, memoryResult, type MemoryOptions } from './bench/memory.js';

const repoDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '20' },
    import: { type: 'string', default: '20000' },
    dist: { type: 'string' },
    env: { type: 'string', multiple: true, default: [] },
  },
});
const cfg = loadConfig(z.object({ ...kafkaEnv, ...databaseEnv }));
const o: MemoryOptions = {
  seconds: Number(values.seconds),
  importCount: Number(values.import),
  serviceExtra: Object.fromEntries(
    values.env.map((kv) => {
      const i = kv.indexOf('=');
      return [kv.slice(0, i), kv.slice(i + 1)];
    }),
  ),
};
// startService runs <repoDir>/dist/<script>.js: a build elsewhere is the parent of its dist/.
const distParent = values.dist ? dirname(resolve(values.dist)) : repoDir;
if (values.dist && !resolve(values.dist).endsWith('/dist'))
  throw new Error('--dist must name a directory called dist');
const env: BenchEnv = {
  stack: {
    kafka: { brokers: cfg.KAFKA_BROKERS },
    registryUrl: cfg.SCHEMA_REGISTRY_URL,
    databaseUrl: cfg.DATABASE_URL,
    secure: null,
    started: [],
    stop: () => Promise.resolve(),
  },
  cfg: { ...stackConfig('test'), repoDir: distParent },
  databaseUrl: cfg.DATABASE_URL,
  seconds: o.seconds,
  scale: 1,
  slices: 1,
  openSeconds: o.seconds,
  openRate: null,
  log: (m) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${m}\n`),
};
env.log(`services from ${relative(repoDir, distParent) || '.'}/dist`);
const run = await measureMemory(env, o);
const result = memoryResult(run, o);
const rows = run.services.map(
  (s) =>
    `| ${s.name.padEnd(19)} | ${s.idleMiB.toFixed(0).padStart(4)} | ${MEMORY_PHASES.map((p) =>
      s.peakMiB[p].toFixed(0).padStart(5),
    ).join(' | ')} |`,
);
process.stdout.write(
  [
    `| service             | idle | ${MEMORY_PHASES.join(' | ')} |`,
    `| ------------------- | ---: | ${MEMORY_PHASES.map(() => '---:').join(' | ')} |`,
    ...rows,
    '',
    result.setup,
    ...(result.notes ?? []),
    '',
    `CPU seconds per phase (${MEMORY_PHASES.join('/')}): ${run.services
      .map((s) => `${s.name} ${MEMORY_PHASES.map((p) => s.cpuSeconds[p].toFixed(1)).join('/')}`)
      .join(', ')}`,
    '',
    'V8 heap after the last phase (MiB; idle in parentheses):',
    ...run.services.map(
      (s) =>
        `  ${s.name}: ${Object.entries(s.heap)
          .filter(([, v]) => v >= 0.5)
          .map(([k, v]) => `${k} ${v.toFixed(0)} (${(s.heapIdle[k] ?? NaN).toFixed(0)})`)
          .join(', ')}`,
    ),
    '',
    JSON.stringify(run),
    '',
  ].join('\n'),
);
