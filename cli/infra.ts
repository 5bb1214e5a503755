import type { Command } from 'commander';
import { HubError, toHubError } from '../libs/errors/index.js';
import {
  clientSecurityEnv,
  stackConfig,
  stackStatus,
  startStack,
  stopStack,
  type StackHandle,
  type StackProfile,
} from '../libs/stack/index.js';

/** `--secure` is the secure profile (SASL_SSL, SCRAM users, ACLs), with its own ports and data dir. */
function profileOf(o: { profile: string; secure?: boolean }): StackProfile {
  const p = o.secure ? 'secure' : o.profile;
  if (o.secure && o.profile !== 'dev' && o.profile !== 'secure')
    throw new HubError('HUB_INPUT_INVALID', `--secure is a profile of its own; drop --profile ${o.profile}`);
  if (p !== 'dev' && p !== 'test' && p !== 'secure')
    throw new HubError('HUB_INPUT_INVALID', `--profile must be dev, test or secure, not ${p}`);
  return p;
}

/**
 * `--brokers 3`: the multi-broker stack, a dev stack with a suffix of its own (ports
 * 19092-19094, controllers 19192-19194, registry 18081, data .hub/cluster, databases
 * hub_cluster and hub_registry_cluster), so it runs beside the single-node stacks.
 */
export function brokersOf(o: { brokers?: string; profile: string; secure?: boolean }): number {
  const n = Number(o.brokers ?? '1');
  if (n !== 1 && n !== 3)
    throw new HubError('HUB_INPUT_INVALID', `--brokers must be 1 or 3, not ${o.brokers}`);
  if (n === 3 && (o.secure || o.profile !== 'dev'))
    throw new HubError('HUB_INPUT_INVALID', '--brokers 3 is a dev stack of its own; drop --profile/--secure');
  return n;
}

type InfraOptions = { profile: string; secure?: boolean; brokers?: string };
const configOf = (o: InfraOptions) => stackConfig(profileOf(o), process.env, { brokers: brokersOf(o) });
const BROKERS_HELP = '1, or 3 for a 3-node KRaft cluster (own ports and data dir, see README)';

/**
 * The endpoints as KEY=value lines; on the secure profile also the operator's
 * (`hub`) Kafka credentials (the password as a file, never its value), and
 * where each service's env file is.
 */
export function upOutput(h: Pick<StackHandle, 'kafka' | 'registryUrl' | 'databaseUrl' | 'secure'>): string {
  const env: Record<string, string> = {
    KAFKA_BROKERS: h.kafka.brokers.join(','),
    SCHEMA_REGISTRY_URL: h.registryUrl,
    DATABASE_URL: h.databaseUrl,
    // Topics the services create on the 3-broker stack get RF 3 / min.isr 2 (schemas/catalog.json).
    ...(h.kafka.brokers.length > 1 ? { KAFKA_TOPIC_ENV: 'cluster' } : {}),
    ...(h.secure ? clientSecurityEnv(h.secure.material, 'hub') : {}),
  };
  const lines = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  if (h.secure) {
    lines.push('# each service runs with its own principal: set -a; . <file>; set +a');
    for (const [principal, file] of Object.entries(h.secure.envFiles)) lines.push(`# ${principal}: ${file}`);
  }
  return `${lines.join('\n')}\n`;
}

/** `hub infra up|down|status`: the local Kafka + registry (+ Postgres check), detached. */
export function runInfra(program: Command, _repoDir: string): void {
  const infra = program
    .command('infra')
    .description('local Kafka (KRaft) and schema registry, from Maven Central jars');
  const log = (m: string) => process.stderr.write(`${m}\n`);
  infra
    .command('up')
    .description('start them in the background (idempotent) and print their endpoints')
    .option('--profile <profile>', 'dev (persistent, standard ports), test or secure', 'dev')
    .option(
      '--secure',
      'the secure profile: Kafka on SASL_SSL, a SCRAM user per service, ACLs (own ports, data)',
    )
    .option('--brokers <n>', BROKERS_HELP, '1')
    .action(async (o: InfraOptions) => {
      const cfg = configOf(o);
      // Stack failures are HubErrors already; a driver's own error (pg, fs) becomes HUB_INFRA_FAILED.
      const h = await startStack(cfg, { log, detached: true }).catch((cause: unknown) => {
        throw toHubError(cause, 'HUB_INFRA_FAILED');
      });
      process.stdout.write(upOutput(h));
    });
  infra
    .command('down')
    .description('stop what `infra up` started (data is kept)')
    .option('--profile <profile>', 'dev, test or secure', 'dev')
    .option('--secure', 'the secure profile')
    .option('--brokers <n>', BROKERS_HELP, '1')
    .action(async (o: InfraOptions) => {
      const stopped = await stopStack(configOf(o), log);
      process.stdout.write(stopped.length ? `stopped: ${stopped.join(', ')}\n` : 'nothing was running\n');
    });
  infra
    .command('status')
    .description('which components run, with pid, port and URL')
    .option('--profile <profile>', 'dev, test or secure', 'dev')
    .option('--secure', 'the secure profile')
    .option('--brokers <n>', BROKERS_HELP, '1')
    .action(async (o: InfraOptions) => {
      const st = await stackStatus(configOf(o));
      const json = Boolean(program.opts()['json']);
      if (json) process.stdout.write(`${JSON.stringify(st, null, 2)}\n`);
      else
        for (const s of st) {
          process.stdout.write(
            `${s.name.padEnd(9)} ${s.running ? 'running' : 'stopped'}  pid=${s.pid ?? '-'}  ${s.url}  ${s.detail}\n`,
          );
        }
    });
}
