import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { startStack, stackConfig } from '../deploy/local/stack.js';
import { HubError } from '../libs/errors/index.js';
import { catalogTopicDefinitions, registerAllSchemas } from '../libs/events/contracts.js';
import { createRegistryClient } from '../libs/events/registry.js';
import { ensureTopics } from '../libs/kafka/admin.js';
import { createKafkaClient } from '../libs/kafka/client.js';
import { createLogger } from '../libs/telemetry/logger.js';

/**
 * The services `hub up` runs, each as its own process from its own main.ts,
 * exactly as in production: a crash or a memory leak in one cannot take the
 * others down, and there is one wiring per service, not a second copy here.
 */
export interface ServiceSpec {
  name: string;
  httpPort: number;
  /** Extra environment (ports of other listeners). */
  env?: Record<string, string>;
  /** What to tell the user, given the HTTP base URL. */
  endpoints(base: string): string;
}

export const SERVICES: readonly ServiceSpec[] = [
  {
    name: 'adapter-hl7',
    httpPort: 8092,
    env: { MLLP_HOST: '127.0.0.1', MLLP_PORT: '2575' },
    endpoints: (b) => `mllp://127.0.0.1:2575  (${b}/health /ready /metrics)`,
  },
  {
    name: 'adapter-fhir',
    httpPort: 8093,
    endpoints: (b) => `${b}  (POST /Patient, /Encounter, ..., Bundle at /, NDJSON at /$import)`,
  },
  { name: 'patient-directory', httpPort: 8091, endpoints: (b) => `${b}/patients/{id}` },
  { name: 'projector-billing', httpPort: 8095, endpoints: (b) => `${b}/ready  (schema billing)` },
  { name: 'projector-analytics', httpPort: 8096, endpoints: (b) => `${b}/ready  (schema analytics)` },
  { name: 'projector-portal', httpPort: 8097, endpoints: (b) => `${b}/ready  (schema portal)` },
  { name: 'api', httpPort: 8098, endpoints: (b) => `${b}/docs  (FHIR at ${b}/fhir, billing, analytics)` },
];

function ready(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = httpGet(url, { agent: false, timeout: 2000 }, (r) => {
      r.resume();
      resolve(r.statusCode === 200);
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(false));
  });
}

interface Running {
  spec: ServiceSpec;
  child: ChildProcess;
  exited: Promise<number | null>;
}

function startService(repoDir: string, spec: ServiceSpec, env: Record<string, string>): Running {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(repoDir, 'services', spec.name, 'main.ts')],
    {
      cwd: repoDir,
      env: { ...process.env, ...env, ...spec.env, HTTP_HOST: '127.0.0.1', HTTP_PORT: String(spec.httpPort) },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  // Service logs are JSON lines; a prefix tells which service wrote them.
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    createInterface({ input: stream }).on('line', (l) =>
      process.stderr.write(`${spec.name.padEnd(19)}| ${l}\n`),
    );
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { spec, child, exited };
}

async function waitReady(r: Running, timeoutMs: number): Promise<void> {
  const url = `http://127.0.0.1:${r.spec.httpPort}/ready`;
  const deadline = Date.now() + timeoutMs;
  let exitCode: number | null | undefined;
  void r.exited.then((c) => (exitCode = c));
  for (;;) {
    if (exitCode !== undefined) {
      throw new HubError('HUB_INFRA_FAILED', `${r.spec.name} exited with code ${exitCode} during start`);
    }
    if (await ready(url)) return;
    if (Date.now() > deadline) {
      throw new HubError('HUB_INFRA_FAILED', `${r.spec.name} not ready on ${url} after ${timeoutMs / 1000}s`);
    }
    await new Promise((res) => setTimeout(res, 300));
  }
}

async function stopService(r: Running): Promise<void> {
  if (r.child.exitCode !== null || r.child.signalCode !== null) return;
  r.child.kill('SIGTERM');
  const t = setTimeout(() => r.child.kill('SIGKILL'), 20_000);
  await r.exited;
  clearTimeout(t);
}

/**
 * `hub up`: infrastructure (child JVMs), schemas, topics, then the services.
 * Ctrl-C stops the services first (adapters finish in-flight messages,
 * projectors their batch), then whatever infrastructure this command
 * started; infrastructure that was already running is left alone.
 */
export async function runUp(opts: { repoDir: string; services: boolean; only?: string[] }): Promise<void> {
  const say = (m: string) => process.stderr.write(`${m}\n`);
  const t0 = Date.now();
  const specs = SERVICES.filter(
    (s) =>
      existsSync(join(opts.repoDir, 'services', s.name, 'main.ts')) &&
      (!opts.only || opts.only.includes(s.name)),
  );
  const unknown = (opts.only ?? []).filter((n) => !SERVICES.some((s) => s.name === n));
  if (unknown.length) {
    throw new HubError(
      'HUB_INPUT_INVALID',
      `unknown service(s): ${unknown.join(', ')}; known: ${SERVICES.map((s) => s.name).join(', ')}`,
    );
  }
  const stack = await startStack(stackConfig('dev'), { log: say }).catch((cause: unknown) => {
    throw new HubError('HUB_INFRA_FAILED', cause instanceof Error ? cause.message : String(cause), { cause });
  });
  const running: Running[] = [];
  const stopAll = async () => {
    await Promise.all(running.map(stopService));
    await stack.stop().catch((err: unknown) => say(`stop: ${String(err)}`));
  };
  try {
    const logger = createLogger({ name: 'hub', level: 'warn' });
    const registered = await registerAllSchemas(createRegistryClient(stack.registryUrl));
    say(`schemas: ${registered.length} subjects registered (FULL_TRANSITIVE)`);
    const kafka = createKafkaClient({ brokers: stack.kafka.brokers, clientId: 'hub', logger });
    const topics = await ensureTopics(kafka, catalogTopicDefinitions());
    say(`topics: ${topics.map((t) => `${t.name} (${t.action})`).join(', ')}`);
    const endpoints: [string, string][] = [
      ['kafka', stack.kafka.brokers.join(',')],
      ['schema registry', stack.registryUrl],
      ['postgres', stack.databaseUrl],
    ];
    if (opts.services) {
      const env = {
        KAFKA_BROKERS: stack.kafka.brokers.join(','),
        SCHEMA_REGISTRY_URL: stack.registryUrl,
        DATABASE_URL: stack.databaseUrl,
        LOG_LEVEL: process.env['LOG_LEVEL'] ?? 'info',
      };
      for (const spec of specs) running.push(startService(opts.repoDir, spec, env));
      await Promise.all(running.map((r) => waitReady(r, 120_000)));
      for (const r of running) {
        endpoints.push([r.spec.name, r.spec.endpoints(`http://127.0.0.1:${r.spec.httpPort}`)]);
      }
    }
    say(`\nhub is up in ${((Date.now() - t0) / 1000).toFixed(1)}s:`);
    for (const [k, v] of endpoints) say(`  ${k.padEnd(20)} ${v}`);
    say('\nCtrl-C stops everything this command started.');
  } catch (err) {
    await stopAll();
    throw err;
  }
  const crashed = new Promise<string>((resolve) => {
    for (const r of running) {
      void r.exited.then((code) => resolve(`${r.spec.name} exited with code ${code}`));
    }
  });
  const signalled = new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  const why = await Promise.race([crashed, signalled]);
  say(`\n${why}: stopping...`);
  await stopAll();
  say('stopped.');
  if (why !== 'SIGINT' && why !== 'SIGTERM') {
    throw new HubError('HUB_INTERNAL', `${why}; see its log lines above`);
  }
}
