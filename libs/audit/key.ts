import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from '../config/index.js';
import { HubError } from '../errors/index.js';
import type { Logger } from '../telemetry/logger.js';

/**
 * The audit chain key (chain.ts, version 2): a secret file, as a KMS or a
 * secrets manager mounts one. Its trimmed text is the HMAC key, at least 32
 * characters (`openssl rand -base64 48 > audit-chain.key`). Without
 * AUDIT_CHAIN_KEY_FILE a local development key is created once under .hub/
 * (mode 0600), with a warning: like the dev token keys, fine on a laptop,
 * not a key anyone should rely on.
 */
export const DEV_CHAIN_KEY_FILE = '.hub/audit-chain.key';
const MIN_KEY_CHARS = 32;

/**
 * The audit trail's settings shared by the API and the CLI: the chain key
 * file, the audit DLQ (default `hub.dlq.audit` + the topic suffix), and when
 * the projector's lag makes the API not ready.
 */
export const auditTrailEnv = {
  AUDIT_CHAIN_KEY_FILE: z.string().min(1).optional(),
  AUDIT_DLQ_TOPIC: z.string().min(1).optional(),
  AUDIT_MAX_LAG: z.coerce.number().int().min(0).default(1000),
  AUDIT_STALL_MS: z.coerce.number().int().min(1000).default(60_000),
};

/** Reads a chain key file; a missing, unreadable or short one is a config error naming the file, never its content. */
export function readChainKey(file: string): Buffer {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (cause) {
    throw new HubError('HUB_CONFIG_INVALID', `audit chain key file ${file} cannot be read`, { cause });
  }
  if (text.length < MIN_KEY_CHARS) {
    throw new HubError(
      'HUB_CONFIG_INVALID',
      `audit chain key file ${file} holds fewer than ${MIN_KEY_CHARS} characters`,
    );
  }
  return Buffer.from(text, 'utf8');
}

/** The dev key at `file`, created (random, mode 0600) on first use. */
export function ensureDevChainKey(file: string = DEV_CHAIN_KEY_FILE): Buffer {
  const path = resolve(file);
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true });
    try {
      // 'wx': two processes starting together must not each write a different key.
      writeFileSync(path, `${randomBytes(48).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
      chmodSync(path, 0o600);
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'EEXIST') throw err;
    }
  }
  return readChainKey(path);
}

/** The configured key, else the local development one with a warning (a service at start). */
export function chainKeyFromEnv(env: { AUDIT_CHAIN_KEY_FILE?: string | undefined }, logger: Logger): Buffer {
  if (env.AUDIT_CHAIN_KEY_FILE) return readChainKey(env.AUDIT_CHAIN_KEY_FILE);
  logger.warn(
    { file: DEV_CHAIN_KEY_FILE },
    'no AUDIT_CHAIN_KEY_FILE: keying the audit chain with the local development key',
  );
  return ensureDevChainKey();
}
