/**
 * `hub`: the one command operators and developers use. Entry point like a
 * service's main.ts: it builds the command tree from the command modules,
 * runs it and turns errors into exit codes. Nothing imports this file but
 * bin/hub.js; what commands share lives in output.ts and env.ts.
 *
 * Exit codes scripts can rely on (ERROR_CODES in libs/errors):
 *   0 ok · 1 failed · 2 usage or invalid input · 3 schema incompatible · 4 infrastructure unavailable
 */
import { Command, CommanderError } from 'commander';
import { EXIT, exitCodeOf, toHubError, type ErrorCode } from '../libs/errors/index.js';
import { registerAuditCommands } from './audit.js';
import { registerAuthCommands } from './auth.js';
import { repoDir } from './env.js';
import { registerFhirCommands } from './fhir.js';
import { registerHl7Commands } from './hl7.js';
import { registerIdentityCommands } from './identity.js';
import { runInfra } from './infra.js';
import { registerOpsCommands } from './ops.js';
import { registerProjectionsCommands } from './projections.js';
import { registerPublishCommand } from './publish.js';
import { registerSchemasCommands } from './schemas.js';
import { registerTopicsCommands } from './topics.js';
import { registerSubscriptionsCommands } from './subscriptions.js';
import { runUp } from './up.js';

const NEXT_STEP: Partial<Record<ErrorCode, string>> = {
  HUB_KAFKA_UNAVAILABLE: 'is the stack up? run `npm run infra:up` (or `hub up`) or set KAFKA_BROKERS',
  HUB_REGISTRY_UNAVAILABLE: 'is the registry up? run `npm run infra:up` or set SCHEMA_REGISTRY_URL',
  HUB_SCHEMA_NOT_REGISTERED: 'run `hub schemas register`',
  HUB_SCHEMA_INCOMPATIBLE:
    'make the change compatible (add fields with defaults; never remove or retype a field) or publish a new topic version',
  HUB_DB_UNAVAILABLE: 'is PostgreSQL running? check DATABASE_URL',
};

function registerUpCommand(program: Command): void {
  program
    .command('up')
    .description(
      'start Kafka, the registry and the hub services; register schemas; create topics (Ctrl-C stops it all)',
    )
    .option('--no-services', 'only infrastructure, schemas and topics')
    .option('--only <names>', 'a comma-separated subset of services (default: all)')
    .option(
      '--secure',
      'the secure profile: Kafka on SASL_SSL with ACLs, each service as its own principal (own ports, data)',
    )
    .action(async (o: { services: boolean; only?: string; secure?: boolean }) => {
      const only = o.only
        ?.split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      const profile = o.secure ? 'secure' : 'dev';
      await runUp({ repoDir, services: o.services, profile, ...(only ? { only } : {}) });
    });
}

export function buildProgram(): Command {
  const program = new Command('hub')
    .description('Clinical data hub: run the stack, manage contracts and topics, publish events')
    .option('--json', 'machine-readable output')
    .showHelpAfterError()
    .exitOverride();
  // In the order `hub --help` lists them.
  registerUpCommand(program);
  runInfra(program, repoDir);
  registerHl7Commands(program);
  registerAuthCommands(program);
  registerAuditCommands(program);
  registerFhirCommands(program);
  registerProjectionsCommands(program);
  registerOpsCommands(program);
  registerSubscriptionsCommands(program);
  registerIdentityCommands(program);
  registerSchemasCommands(program);
  registerTopicsCommands(program);
  registerPublishCommand(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return EXIT.OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    const h = toHubError(err);
    const json = process.argv.includes('--json');
    const hint = NEXT_STEP[h.code];
    if (json) process.stderr.write(`${JSON.stringify({ error: h.toJSON(), hint })}\n`);
    else process.stderr.write(`hub: ${h.code}: ${h.message}${hint ? `\n  next: ${hint}` : ''}\n`);
    return exitCodeOf(h);
  }
}

const isEntry = process.argv[1] && /(?:^|[/\\])(hub\.(ts|js)|hub)$/.test(process.argv[1]);
if (isEntry) {
  // Explicit exit: client libraries can keep sockets (and the process) alive.
  const code = await main(process.argv);
  // But only once stdout and stderr are written: a pipe the parent opened non-blocking
  // takes 64 KiB at a time, and exiting earlier cut a large `--json` answer short
  // (regression: adapter.int.test.ts, `hub hl7 remap --json`, truncated at 146 KB).
  await Promise.all(
    [process.stdout, process.stderr].map((s) => new Promise<void>((r) => s.write('', () => r()))),
  );
  process.exit(code);
}
