import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import {
  clientSecurity,
  clientSecurityEnv,
  startStack,
  stackConfig,
  type StackHandle,
} from '../libs/stack/index.js';
import { HubError, toHubError } from '../libs/errors/index.js';
import { catalogTopicDefinitions, registerAllSchemas } from '../libs/events/contracts.js';
import { createRegistryClient } from '../libs/events/registry.js';
import { registrySecurityFromEnv } from '../libs/events/registry-security.js';
import { ensureTopics, waitForGroupCoordinator } from '../libs/kafka/admin.js';
import { createKafkaClient } from '../libs/kafka/client.js';
import { loadSiteConfig, localSiteConfigText, machineTimeZone } from '../libs/site-config/index.js';
import { createLogger } from '../libs/telemetry/logger.js';
import { OPERATOR_PRINCIPAL, secureTopicDefinitions, serviceSecurityEnv } from '../libs/stack/secure.js';
import { SERVICES, localBaseUrl, servicesFor, type ServiceSpec } from '../libs/stack/services.js';
import { Supervisor } from '../libs/stack/services-supervisor.js';

/** Every service must be ready within this long of being started. */
const START_TIMEOUT_MS = 120_000;
/** Bound of each Kafka wait (topic leaders and offsets, the group coordinator). */
const KAFKA_WAIT_MS = 60_000;

type Say = (m: string) => void;
type Supervised = ServiceSpec & { baseUrl: string };

/** Ctrl-C (SIGINT) or SIGTERM while `hub up` runs. */
class Interrupted extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(signal);
  }
}

/** dev: the dev stack, plaintext Kafka; secure: the secure profile, each service as its own Kafka principal. */
export type UpProfile = 'dev' | 'secure';

function selectServices(repoDir: string, profile: UpProfile, only: string[] | undefined): Supervised[] {
  const unknown = (only ?? []).filter((n) => !SERVICES.some((s) => s.name === n));
  if (unknown.length) {
    throw new HubError(
      'HUB_INPUT_INVALID',
      `unknown service(s): ${unknown.join(', ')}; known: ${SERVICES.map((s) => s.name).join(', ')}`,
    );
  }
  return servicesFor(profile)
    .filter(
      (s) => existsSync(join(repoDir, 'services', s.name, 'main.ts')) && (!only || only.includes(s.name)),
    )
    .map((s) => ({ ...s, baseUrl: localBaseUrl(s) }));
}

/** Kafka TLS/SASL and registry credentials (libs/config kafkaEnv): `hub up` alone decides how each service connects. */
const CONNECTION_SECURITY_VAR =
  /^(KAFKA_(SECURITY_PROTOCOL|SSL_|SASL_)|SCHEMA_REGISTRY_(USERNAME|PASSWORD|TOKEN|CA_FILE))/;

/**
 * The caller's environment without Kafka and registry security variables: a shell that
 * sourced the operator's env file (`hub.env`) would otherwise leave its
 * identity, or a client certificate, behind in every service.
 */
export function inheritedEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !CONNECTION_SECURITY_VAR.test(k)));
}

/** One process per service from its own main.ts, as in production. */
function serviceSpawner(
  repoDir: string,
  envFor: (spec: Supervised) => Record<string, string>,
): (spec: Supervised) => ChildProcess {
  return (spec) =>
    spawn(process.execPath, ['--import', 'tsx', join(repoDir, 'services', spec.name, 'main.ts')], {
      cwd: repoDir,
      env: {
        ...inheritedEnv(process.env),
        ...envFor(spec),
        ...spec.env,
        HTTP_HOST: '127.0.0.1',
        HTTP_PORT: String(spec.httpPort),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
}

/** What every service gets, and on the secure profile its own principal's Kafka and registry credentials (passwords as files). */
function serviceEnv(stack: StackHandle, siteConfig: string): (spec: Supervised) => Record<string, string> {
  const common = {
    KAFKA_BROKERS: stack.kafka.brokers.join(','),
    SCHEMA_REGISTRY_URL: stack.registryUrl,
    DATABASE_URL: stack.databaseUrl,
    LOG_LEVEL: process.env['LOG_LEVEL'] ?? 'info',
    HUB_SITE_CONFIG: siteConfig,
  };
  const secure = stack.secure;
  return (spec) => (secure ? { ...common, ...serviceSecurityEnv(secure.material, spec.name) } : common);
}

/**
 * The site configuration the services get (HUB_SITE_CONFIG): the operator's,
 * validated here so that a mistake is reported once before anything starts;
 * otherwise the shipped sample (made-up authorities) with this machine's time
 * zone, written into the data dir, so that a fresh clone starts (the HL7
 * adapter refuses to without a zone) and reads local times as local.
 */
export function siteConfigForUp(repoDir: string, dataDir: string, say: Say): string {
  const configured = process.env['HUB_SITE_CONFIG'];
  if (configured) {
    loadSiteConfig(configured);
    say(`site configuration: ${configured} (HUB_SITE_CONFIG)`);
    return configured;
  }
  const zone = machineTimeZone();
  const text = localSiteConfigText(
    readFileSync(join(repoDir, 'deploy', 'local', 'site.sample.yaml'), 'utf8'),
    zone,
  );
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, 'site.yaml');
  writeFileSync(path, text);
  say(
    `site configuration: ${path} (the sample deploy/local/site.sample.yaml, made-up authorities, time zone ${zone}); set HUB_SITE_CONFIG to use your own`,
  );
  return path;
}

/**
 * Schemas, topics with leaders that answer, and a group coordinator: what
 * every service needs first. On the secure profile as the operator (`hub`),
 * the one principal that may create topics, and with the profile's whole
 * topic set (audit and dead-letter topics too: no service holds CREATE).
 */
async function prepareKafka(stack: StackHandle, say: Say): Promise<void> {
  // Silent: on a fresh broker kafkajs logs every refusal the waits below retry ("not the leader",
  // "coordinator is loading") as an error; a wait that runs out throws naming what it waited for.
  const logger = createLogger({ name: 'hub', level: 'silent' });
  // The secure profile's registry may want a user too: the operator's, from the same env as its Kafka settings.
  const registrySecurity = stack.secure
    ? registrySecurityFromEnv(clientSecurityEnv(stack.secure.material, OPERATOR_PRINCIPAL))
    : undefined;
  const registered = await registerAllSchemas(createRegistryClient(stack.registryUrl, registrySecurity));
  say(`schemas: ${registered.length} subjects registered (FULL_TRANSITIVE)`);
  const kafka = createKafkaClient({
    brokers: stack.kafka.brokers,
    clientId: 'hub',
    logger,
    security: stack.secure ? clientSecurity(stack.secure.material, OPERATOR_PRINCIPAL) : undefined,
  });
  const wanted = stack.secure ? secureTopicDefinitions() : catalogTopicDefinitions();
  const topics = await ensureTopics(kafka, wanted, { timeoutMs: KAFKA_WAIT_MS });
  say(`topics: ${topics.map((t) => `${t.name} (${t.action})`).join(', ')}`);
  await waitForGroupCoordinator(kafka, { timeoutMs: KAFKA_WAIT_MS });
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * Every port the services will listen on must be free before they start: a
 * port held by something else (often a `hub up` already running) would make
 * each service fail and be restarted, while /ready probes answered by the
 * other process reported them ready.
 */
async function checkServicePorts(specs: readonly Supervised[]): Promise<void> {
  const wanted = specs.flatMap((s) => [
    { port: s.httpPort, what: `${s.name} HTTP` },
    ...(s.env?.['MLLP_PORT'] ? [{ port: Number(s.env['MLLP_PORT']), what: `${s.name} MLLP` }] : []),
  ]);
  const taken: string[] = [];
  for (const w of wanted) if (!(await portFree(w.port))) taken.push(`${w.port} (${w.what})`);
  if (taken.length > 0) {
    throw new HubError(
      'HUB_INFRA_FAILED',
      `port(s) already in use: ${taken.join(', ')}; is another \`hub up\` running? (\`hub status\` shows its services)`,
    );
  }
}

/** Resolves with the first SIGINT/SIGTERM; `dispose` removes the handlers. */
function onSignal(): { received: Promise<NodeJS.Signals>; dispose(): void } {
  let handler: (s: NodeJS.Signals) => void = () => undefined;
  const received = new Promise<NodeJS.Signals>((resolve) => (handler = resolve));
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
  return {
    received,
    dispose() {
      process.removeListener('SIGINT', handler);
      process.removeListener('SIGTERM', handler);
    },
  };
}

/** The URL as shown on the terminal: the embedded server's password stays in its file (.hub/postgres/password). */
export function withoutPassword(databaseUrl: string): string {
  const u = new URL(databaseUrl);
  if (u.password) u.password = '***';
  return u.toString();
}

function printUp(say: Say, t0: number, stack: StackHandle, started: Supervised[]): void {
  const brokers = stack.kafka.brokers.join(',');
  const endpoints: [string, string][] = [
    [
      'kafka',
      stack.secure
        ? `${brokers}  (SASL_SSL, SCRAM-SHA-512, ACLs; each service as its own principal)`
        : brokers,
    ],
    ['schema registry', stack.registryUrl],
    ['postgres', withoutPassword(stack.databaseUrl)],
    ...started.map((s): [string, string] => [s.name, s.endpoints(s.baseUrl, s.env ?? {})]),
  ];
  say(`\nhub is up in ${((Date.now() - t0) / 1000).toFixed(1)}s:`);
  for (const [k, v] of endpoints) say(`  ${k.padEnd(20)} ${v}`);
  if (stack.secure) {
    // The CLI needs the operator's credentials and, for `hub status`, the services' own ports.
    const urls = started.map((s) => `${s.name}=${s.baseUrl}`).join(',');
    say(`\noperator (hub CLI):   set -a; . ${stack.secure.envFiles[OPERATOR_PRINCIPAL]}; set +a`);
    if (urls) say(`hub status:           HUB_SERVICE_URLS=${urls}`);
  }
  say('\nCtrl-C stops everything this command started.');
}

/**
 * `hub up`: infrastructure (child JVMs), schemas, topics, then the services
 * under a supervisor (libs/stack/services-supervisor.ts): a service that exits is reported
 * and restarted with backoff while the others keep running; one that uses up
 * its restart budget stops everything. Ctrl-C stops the services first
 * (adapters finish in-flight messages, projectors their batch), then whatever
 * infrastructure this command started; infrastructure that was already
 * running is left alone. `profile: 'secure'` does the same on the secure
 * profile (docs/secure-local-stack.md): Kafka on SASL_SSL with ACLs, topics
 * created as the operator, each service as its own SCRAM principal, on ports
 * of its own (SECURE_PORT_OFFSET).
 */
export async function runUp(opts: {
  repoDir: string;
  services: boolean;
  only?: string[];
  profile?: UpProfile;
}): Promise<void> {
  const say: Say = (m) => process.stderr.write(`${m}\n`);
  const t0 = Date.now();
  const profile = opts.profile ?? 'dev';
  const specs = opts.services ? selectServices(opts.repoDir, profile, opts.only) : [];
  await checkServicePorts(specs);
  const stackCfg = stackConfig(profile);
  const siteConfig = siteConfigForUp(opts.repoDir, stackCfg.dataDir, say);
  const stack = await startStack(stackCfg, { log: say }).catch((cause: unknown) => {
    throw toHubError(cause, 'HUB_INFRA_FAILED');
  });
  const signal = onSignal();
  const interruptible = <T>(p: Promise<T>) =>
    Promise.race([
      p,
      signal.received.then((s): never => {
        throw new Interrupted(s);
      }),
    ]);
  let supervisor: Supervisor<Supervised> | null = null;
  const stopAll = async (why?: string) => {
    if (why) say(`\n${why}: stopping...`);
    await supervisor?.stopAll();
    await stack.stop().catch((err: unknown) => say(`stop: ${String(err)}`));
    if (why) say('stopped.');
  };
  try {
    await interruptible(prepareKafka(stack, say));
    if (specs.length > 0) {
      supervisor = new Supervisor({
        services: specs,
        spawn: serviceSpawner(opts.repoDir, serviceEnv(stack, siteConfig)),
        say,
        echo: (name, line) => process.stderr.write(`${name.padEnd(19)}| ${line}\n`),
      });
      supervisor.start();
      await interruptible(supervisor.waitAllReady(START_TIMEOUT_MS));
    }
    printUp(say, t0, stack, specs);
    // Runs until Ctrl-C, or until a service used up its restart budget (the supervisor has then
    // stopped the services and said why; the infrastructure is stopped below).
    throw await interruptible(supervisor ? supervisor.failed : new Promise<never>(() => undefined));
  } catch (err) {
    if (err instanceof Interrupted) {
      await stopAll(err.signal);
      return;
    }
    await stopAll();
    throw err;
  } finally {
    signal.dispose();
  }
}
