import type { Command } from 'commander';
import { HubError, toHubError } from '../libs/errors/index.js';
import { stackConfig, stackStatus, startStack, stopStack, type StackProfile } from '../libs/stack/index.js';

function profileOf(p: string): StackProfile {
  if (p !== 'dev' && p !== 'test')
    throw new HubError('HUB_INPUT_INVALID', `--profile must be dev or test, not ${p}`);
  return p;
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
    .option('--profile <profile>', 'dev (persistent, standard ports) or test', 'dev')
    .action(async (o: { profile: string }) => {
      const cfg = stackConfig(profileOf(o.profile));
      // Stack failures are HubErrors already; a driver's own error (pg, fs) becomes HUB_INFRA_FAILED.
      const h = await startStack(cfg, { log, detached: true }).catch((cause: unknown) => {
        throw toHubError(cause, 'HUB_INFRA_FAILED');
      });
      process.stdout.write(
        `KAFKA_BROKERS=${h.kafka.brokers.join(',')}\nSCHEMA_REGISTRY_URL=${h.registryUrl}\nDATABASE_URL=${h.databaseUrl}\n`,
      );
    });
  infra
    .command('down')
    .description('stop what `infra up` started (data is kept)')
    .option('--profile <profile>', 'dev or test', 'dev')
    .action(async (o: { profile: string }) => {
      const stopped = await stopStack(stackConfig(profileOf(o.profile)), log);
      process.stdout.write(stopped.length ? `stopped: ${stopped.join(', ')}\n` : 'nothing was running\n');
    });
  infra
    .command('status')
    .description('which components run, with pid, port and URL')
    .option('--profile <profile>', 'dev or test', 'dev')
    .action(async (o: { profile: string }) => {
      const st = await stackStatus(stackConfig(profileOf(o.profile)));
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
