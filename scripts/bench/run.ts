// `npm run bench [-- scenario ...]`: starts the bench stack (its own ports,
// data and databases; see lib.ts), runs the scenarios, writes
// docs/benchmarks/latest.json and latest.md, prints the table and appends
// the run's ratios to docs/benchmarks/history.md (BENCH_HISTORY=0: not).
// `npm run bench:<scenario>` runs one.
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { codecScenario } from './codec.js';
import { deliveryScenario } from './delivery.js';
import { fhirScenario } from './fhir.js';
import { hl7Scenario } from './hl7.js';
import { memoryScenario } from './memory.js';
import { appendHistory, commitLabel, historyRows, settingsLabel } from './history.js';
import { replayScenario } from './replay.js';
import { kafkaLimitFigures, measureKafkaLimits } from './kafka-limits.js';
import {
  benchStackConfig,
  loadAverages,
  machineFacts,
  markdownReport,
  openBenchEnv,
  type BenchEnv,
  type ScenarioResult,
} from './lib.js';

type Scenario = (env: BenchEnv) => Promise<ScenarioResult>;

const SCENARIOS = {
  hl7: (env) => hl7Scenario(env),
  kafka: async (env) => {
    const limits = await measureKafkaLimits(env, 800, Math.round(200_000 * env.scale));
    return {
      scenario: 'Limits: Kafka producer and end-to-end latency',
      setup: `ProducerPerformance (acks=all, idempotent, 6 partitions, 800 B records, ${Math.round(200_000 * env.scale)} records, no throttle; median of ${limits.producerRuns.length} runs) and EndToEndLatency (one message in flight).`,
      figures: kafkaLimitFigures(limits),
    };
  },
  fhir: fhirScenario,
  replay: replayScenario,
  codec: codecScenario,
  memory: memoryScenario,
  delivery: deliveryScenario,
} satisfies Record<string, Scenario>;

type ScenarioName = keyof typeof SCENARIOS;
const isScenario = (name: string): name is ScenarioName => Object.hasOwn(SCENARIOS, name);

function build(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', '--silent', 'build'], { stdio: ['ignore', 'ignore', 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`npm run build exited ${code}`)),
    );
  });
}

async function main(): Promise<void> {
  const asked = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const unknown = asked.filter((a) => !isScenario(a));
  if (unknown.length) {
    process.stderr.write(
      `unknown scenario(s): ${unknown.join(', ')}; known: ${Object.keys(SCENARIOS).join(', ')}\n`,
    );
    process.exit(2);
  }
  const names = (asked.length ? asked : Object.keys(SCENARIOS)).filter(isScenario);
  const log = (m: string) => process.stderr.write(`[bench] ${m}\n`);
  // Before anything is built or written: the commit and settings the figures belong to.
  const run = { commit: await commitLabel(benchStackConfig().repoDir), settings: settingsLabel(process.env) };
  // The services under test run from the build output (as deployed); a stale dist/ would measure old code.
  log('building dist/ (npm run build)');
  await build();
  const env = await openBenchEnv(log);
  const results: ScenarioResult[] = [];
  const failed: string[] = [];
  try {
    const machine = await machineFacts(env);
    for (const n of names) {
      log(`scenario ${n}`);
      try {
        results.push({ ...(await SCENARIOS[n](env)), key: n });
      } catch (err) {
        // One broken scenario must not throw away the others' figures; the run still fails.
        failed.push(n);
        log(`scenario ${n} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        results.push({
          scenario: n,
          key: n,
          setup: 'FAILED in this run',
          figures: [],
          notes: [`failed: ${err instanceof Error ? err.message : String(err)}`],
        });
      }
    }
    machine.loadAtEnd = loadAverages();
    const dir = join(env.cfg.repoDir, 'docs', 'benchmarks');
    await mkdir(dir, { recursive: true });
    const md = markdownReport(machine, results);
    await writeFile(join(dir, 'latest.json'), `${JSON.stringify({ machine, run, results }, null, 2)}\n`);
    await writeFile(join(dir, 'latest.md'), `${md}\n`);
    process.stdout.write(`${md}\n`);
    log(`wrote ${join(dir, 'latest.json')} and latest.md`);
    if (process.env['BENCH_HISTORY'] !== '0') {
      const added = await appendHistory(join(dir, 'history.md'), historyRows({ machine, results }, run));
      log(`history: ${added} row(s) added to ${join(dir, 'history.md')}`);
    }
  } finally {
    await env.stack.stop();
  }
  if (failed.length) {
    process.stderr.write(`bench: scenario(s) failed: ${failed.join(', ')}\n`);
    process.exitCode = 1;
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
