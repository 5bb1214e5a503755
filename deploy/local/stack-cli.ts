// tsx deploy/local/stack-cli.ts up|down|status [--profile dev|test|secure] [--secure]
//
// `up` prints KEY=value lines on stdout and progress on stderr, so
//   set -a; eval "$(npx tsx deploy/local/stack-cli.ts up)"; set +a
// exports the endpoints into the calling shell.
import { HubError } from '../../libs/errors/index.js';
import {
  clientSecurityEnv,
  stackConfig,
  stackStatus,
  startStack,
  stopStack,
} from '../../libs/stack/index.js';
import type { StackProfile } from '../../libs/stack/index.js';

const USAGE = 'usage: stack-cli.ts up|down|status [--profile dev|test|secure] [--secure]';

function parseArgs(argv: string[]): { command: 'up' | 'down' | 'status'; profile: StackProfile } {
  let command: string | undefined;
  let profile = 'dev';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '--profile' || a === '-p') {
      const v = argv[++i];
      if (v === undefined) throw new HubError('HUB_INPUT_INVALID', `--profile needs a value; ${USAGE}`);
      profile = v;
    } else if (a === '--secure') {
      profile = 'secure';
    } else if (a.startsWith('--profile=')) {
      profile = a.slice('--profile='.length);
    } else if (a === '-h' || a === '--help') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else if (command === undefined && !a.startsWith('-')) {
      command = a;
    } else {
      throw new HubError('HUB_INPUT_INVALID', `unexpected argument "${a}"; ${USAGE}`);
    }
  }
  if (command !== 'up' && command !== 'down' && command !== 'status')
    throw new HubError('HUB_INPUT_INVALID', USAGE);
  if (profile !== 'dev' && profile !== 'test' && profile !== 'secure')
    throw new HubError('HUB_INPUT_INVALID', `unknown profile "${profile}"; ${USAGE}`);
  return { command, profile };
}

/** Single-quote only when needed, so the common case stays dotenv-readable too. */
function shellValue(v: string): string {
  return /^[\w@%+=:,./-]*$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`;
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

async function main(): Promise<void> {
  const { command, profile } = parseArgs(process.argv.slice(2));
  const cfg = stackConfig(profile);
  const log = (msg: string) => process.stderr.write(`${msg}\n`);

  switch (command) {
    case 'up': {
      const t0 = Date.now();
      const h = await startStack(cfg, { log, detached: true });
      const what = h.started.length ? `started ${h.started.join(', ')}` : 'nothing to start';
      log(
        `stack (${profile}): up in ${((Date.now() - t0) / 1000).toFixed(1)}s, ${what}; data in ${cfg.dataDir}`,
      );
      process.stdout.write(
        [
          `KAFKA_BROKERS=${shellValue(h.kafka.brokers.join(','))}`,
          `SCHEMA_REGISTRY_URL=${shellValue(h.registryUrl)}`,
          `DATABASE_URL=${shellValue(h.databaseUrl)}`,
          // The operator's credentials (a file, never the password); each service has its own env file.
          ...Object.entries(h.secure ? clientSecurityEnv(h.secure.material, 'hub') : {}).map(
            ([k, v]) => `${k}=${shellValue(v)}`,
          ),
          ...Object.entries(h.secure?.envFiles ?? {}).map(([p, file]) => `# ${p}: ${file}`),
          '',
        ].join('\n'),
      );
      return;
    }
    case 'down': {
      const stopped = await stopStack(cfg, log);
      log(`stack (${profile}): ${stopped.length ? `stopped ${stopped.join(', ')}` : 'nothing was running'}`);
      return;
    }
    case 'status': {
      const rows = (await stackStatus(cfg)).map((s) => [
        s.name,
        s.running ? 'running' : 'down',
        s.pid === null ? '-' : String(s.pid),
        String(s.port),
        s.url,
        s.detail,
      ]);
      process.stdout.write(`profile ${profile}, data ${cfg.dataDir}\n`);
      process.stdout.write(`${table([['COMPONENT', 'STATE', 'PID', 'PORT', 'URL', 'DETAIL'], ...rows])}\n`);
      return;
    }
  }
}

main().then(
  // Explicit exit: pg sockets or timers left by a probe must not hold the CLI open.
  () => process.exit(0),
  (err: unknown) => {
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`stack-cli: ${msg}\n`);
    process.exit(1);
  },
);
