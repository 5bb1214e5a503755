import { resolve } from 'node:path';
import type { Command } from 'commander';
import { DEV_AUDIENCE, DEV_ISSUER, ensureDevKeys, mintToken } from '../libs/auth/jwt.js';
import { HUB_SCOPES } from '../libs/auth/scopes.js';
import { HubError } from '../libs/errors/index.js';

/**
 * `hub auth …`: development credentials for the query API. Tokens are signed
 * with the local key in .hub/dev-keys (created on first use), which the API
 * trusts only when it runs without AUTH_JWKS_URL.
 */
export function registerAuthCommands(program: Command): void {
  const auth = program.command('auth').description('development tokens and keys for the query API');
  auth
    .command('keys')
    .description('create (if missing) the development signing key pair and print the public key set')
    .option('--dir <dir>', 'key directory', process.env['AUTH_DEV_KEYS_DIR'] ?? '.hub/dev-keys')
    .action(async (o: { dir: string }) => {
      const keys = await ensureDevKeys(resolve(o.dir));
      process.stdout.write(`${JSON.stringify(keys.jwks, null, 2)}\n`);
    });
  auth
    .command('token')
    .description(
      `mint a development bearer token, e.g. --scope patient/*.rs --patient P1 | --scope user/*.rs | --scope ${HUB_SCOPES.billing}; for the FHIR adapter: --scope system/*.cud --client lab-system --audience hub-ingest`,
    )
    .requiredOption(
      '--scope <scopes...>',
      `scopes (patient/*.rs, user/*.rs, ${Object.values(HUB_SCOPES).join(', ')})`,
    )
    .option('--patient <id>', 'patient claim (required with patient/ scopes)')
    .option('--sub <subject>', 'subject (user or client)', 'dev-user')
    .option('--client <id>', 'client_id claim')
    .option('--ttl <seconds>', 'lifetime in seconds', '3600')
    .option('--dir <dir>', 'key directory', process.env['AUTH_DEV_KEYS_DIR'] ?? '.hub/dev-keys')
    .option('--issuer <iss>', 'issuer', process.env['AUTH_ISSUER'] ?? DEV_ISSUER)
    .option('--audience <aud>', 'audience', process.env['AUTH_AUDIENCE'] ?? DEV_AUDIENCE)
    .action(
      async (o: {
        scope: string[];
        patient?: string;
        sub: string;
        client?: string;
        ttl: string;
        dir: string;
        issuer: string;
        audience: string;
      }) => {
        const scopes = o.scope.flatMap((s) => s.split(/[\s,]+/)).filter(Boolean);
        const ttl = Number(o.ttl);
        if (!Number.isInteger(ttl) || ttl <= 0 || ttl > 30 * 24 * 3600) {
          throw new HubError('HUB_INPUT_INVALID', '--ttl: seconds, 1 to 2592000');
        }
        if (scopes.some((s) => s.startsWith('patient/')) && !o.patient) {
          throw new HubError('HUB_INPUT_INVALID', 'patient/ scopes need --patient <id>');
        }
        const keys = await ensureDevKeys(resolve(o.dir));
        const token = await mintToken({
          keys,
          subject: o.sub,
          scope: scopes,
          ttlSec: ttl,
          issuer: o.issuer,
          audience: o.audience,
          ...(o.patient ? { patient: o.patient } : {}),
          ...(o.client ? { clientId: o.client } : {}),
        });
        process.stdout.write(`${token}\n`);
      },
    );
}
