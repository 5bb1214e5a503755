import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { z } from 'zod';
import { HubError } from '../errors/index.js';

/**
 * The variables that secure the hub's connections to Kafka, the schema
 * registry and Postgres (docs/security.md), their per-variable checks, and
 * the rules across variables that loadConfig applies. A secret comes either
 * inline or, preferably, from a file (a mounted secret), never both; a file
 * is checked for readability at start so that a wrong mount fails there,
 * named by its variable. No message here quotes a value or a path.
 */

/** A secret given inline or as a file to read (re-read on use, so that a rotated file is picked up). */
export type Secret = { value: string } | { file: string };

/** The secret's text; a file's single trailing newline (as `echo` writes it) is not part of it. */
export function readSecret(secret: Secret, what: string): string {
  if ('value' in secret) return secret.value;
  try {
    return readFileSync(secret.file, 'utf8').replace(/\r?\n$/, '');
  } catch (cause) {
    throw new HubError('HUB_CONFIG_INVALID', `${what}: the file cannot be read`, { cause });
  }
}

/** Inline value or file, whichever the configuration gave (the cross-variable rules allow only one). */
export function secretOf(value: string | undefined, file: string | undefined): Secret | undefined {
  if (value !== undefined) return { value };
  if (file !== undefined) return { file };
  return undefined;
}

function isReadableFile(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** A path that must name a readable file. */
export const readableFile = z
  .string()
  .min(1)
  .refine(isReadableFile, 'the file does not exist or is not readable');

const optionalText = z.string().min(1).optional();

export const KAFKA_SECURITY_PROTOCOLS = ['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'] as const;
export const KAFKA_SASL_MECHANISMS = ['scram-sha-512', 'scram-sha-256', 'oauthbearer'] as const;

/** Part of kafkaEnv: how every Kafka client of the hub connects and authenticates. */
export const kafkaSecurityEnv = {
  KAFKA_SECURITY_PROTOCOL: z.enum(KAFKA_SECURITY_PROTOCOLS).default('PLAINTEXT'),
  /** PEM trust anchors for the brokers' certificates (the system's when unset). */
  KAFKA_SSL_CA_FILE: readableFile.optional(),
  /** PEM client certificate and key: mutual TLS (the principal is the certificate's subject). */
  KAFKA_SSL_CERT_FILE: readableFile.optional(),
  KAFKA_SSL_KEY_FILE: readableFile.optional(),
  /** 'false' keeps the chain check but skips the host name check: only for brokers reached by an alias. */
  KAFKA_SSL_VERIFY_HOSTNAME: z
    .enum(['true', 'false'])
    .default('true')
    .transform((v) => v === 'true'),
  KAFKA_SASL_MECHANISM: z.preprocess(
    (v) => (typeof v === 'string' ? v.toLowerCase() : v),
    z.enum(KAFKA_SASL_MECHANISMS).optional(),
  ),
  KAFKA_SASL_USERNAME: optionalText,
  KAFKA_SASL_PASSWORD: optionalText,
  KAFKA_SASL_PASSWORD_FILE: readableFile.optional(),
  /** OAUTHBEARER: a token from this endpoint by client credentials, renewed before it expires. */
  KAFKA_SASL_OAUTH_TOKEN_URL: z.url().optional(),
  KAFKA_SASL_OAUTH_CLIENT_ID: optionalText,
  KAFKA_SASL_OAUTH_CLIENT_SECRET: optionalText,
  KAFKA_SASL_OAUTH_CLIENT_SECRET_FILE: readableFile.optional(),
  KAFKA_SASL_OAUTH_SCOPE: optionalText,
};

/** Part of kafkaEnv: basic or bearer authentication to the schema registry, and its CA. */
export const registrySecurityEnv = {
  SCHEMA_REGISTRY_USERNAME: optionalText,
  SCHEMA_REGISTRY_PASSWORD: optionalText,
  SCHEMA_REGISTRY_PASSWORD_FILE: readableFile.optional(),
  SCHEMA_REGISTRY_TOKEN: optionalText,
  SCHEMA_REGISTRY_TOKEN_FILE: readableFile.optional(),
  SCHEMA_REGISTRY_CA_FILE: readableFile.optional(),
};

/** Part of databaseEnv: the password kept out of DATABASE_URL and the environment. */
export const databaseSecurityEnv = {
  DATABASE_PASSWORD_FILE: readableFile.optional(),
};

type Env = Record<string, unknown>;

/** http:// to anything but this host: a secret sent there crosses the network in clear. */
function cleartextRemote(url: unknown): boolean {
  try {
    const u = new URL(String(url));
    return u.protocol === 'http:' && !['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname);
  } catch {
    return false;
  }
}
type Rule = (env: Env) => string | undefined;

const has = (env: Env, name: string) => env[name] !== undefined;
const oneOf = (env: Env, a: string, b: string): string | undefined => {
  if (has(env, a) && has(env, b)) return `${a}: set either ${a} or ${b}, not both`;
  return undefined;
};
const needs = (env: Env, name: string, when: string): string | undefined =>
  has(env, name) ? undefined : `${name}: required when ${when}`;
const eitherNeeded = (env: Env, a: string, b: string, when: string): string | undefined =>
  oneOf(env, a, b) ??
  (has(env, a) || has(env, b) ? undefined : `${a}: ${a} or ${b} is required when ${when}`);

function kafkaRules(env: Env): (string | undefined)[] {
  const protocol = String(env.KAFKA_SECURITY_PROTOCOL);
  const mechanism = env.KAFKA_SASL_MECHANISM;
  const sasl = protocol.startsWith('SASL_');
  const tls = protocol === 'SSL' || protocol === 'SASL_SSL';
  const problems: (string | undefined)[] = [];
  if (sasl) problems.push(needs(env, 'KAFKA_SASL_MECHANISM', `KAFKA_SECURITY_PROTOCOL is ${protocol}`));
  else if (mechanism !== undefined)
    problems.push('KAFKA_SASL_MECHANISM: only used with KAFKA_SECURITY_PROTOCOL SASL_SSL or SASL_PLAINTEXT');
  if (!tls) {
    for (const name of ['KAFKA_SSL_CA_FILE', 'KAFKA_SSL_CERT_FILE', 'KAFKA_SSL_KEY_FILE']) {
      if (has(env, name)) problems.push(`${name}: only used with KAFKA_SECURITY_PROTOCOL SSL or SASL_SSL`);
    }
  }
  if (has(env, 'KAFKA_SSL_CERT_FILE') !== has(env, 'KAFKA_SSL_KEY_FILE')) {
    problems.push('KAFKA_SSL_CERT_FILE: KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go together');
  }
  if (sasl && (mechanism === 'scram-sha-512' || mechanism === 'scram-sha-256')) {
    const when = `KAFKA_SASL_MECHANISM is ${mechanism}`;
    problems.push(needs(env, 'KAFKA_SASL_USERNAME', when));
    problems.push(eitherNeeded(env, 'KAFKA_SASL_PASSWORD', 'KAFKA_SASL_PASSWORD_FILE', when));
  }
  if (sasl && mechanism === 'oauthbearer') {
    const when = 'KAFKA_SASL_MECHANISM is oauthbearer';
    problems.push(needs(env, 'KAFKA_SASL_OAUTH_TOKEN_URL', when));
    if (cleartextRemote(env.KAFKA_SASL_OAUTH_TOKEN_URL)) {
      problems.push('KAFKA_SASL_OAUTH_TOKEN_URL: must be https (the client secret is sent to it)');
    }
    problems.push(needs(env, 'KAFKA_SASL_OAUTH_CLIENT_ID', when));
    problems.push(
      eitherNeeded(env, 'KAFKA_SASL_OAUTH_CLIENT_SECRET', 'KAFKA_SASL_OAUTH_CLIENT_SECRET_FILE', when),
    );
  }
  return problems;
}

const registryRules: Rule[] = [
  (env) => oneOf(env, 'SCHEMA_REGISTRY_PASSWORD', 'SCHEMA_REGISTRY_PASSWORD_FILE'),
  (env) => oneOf(env, 'SCHEMA_REGISTRY_TOKEN', 'SCHEMA_REGISTRY_TOKEN_FILE'),
  (env) =>
    has(env, 'SCHEMA_REGISTRY_USERNAME') &&
    (has(env, 'SCHEMA_REGISTRY_TOKEN') || has(env, 'SCHEMA_REGISTRY_TOKEN_FILE'))
      ? 'SCHEMA_REGISTRY_USERNAME: basic (username/password) and bearer (token) authentication are exclusive'
      : undefined,
  (env) =>
    has(env, 'SCHEMA_REGISTRY_USERNAME')
      ? eitherNeeded(
          env,
          'SCHEMA_REGISTRY_PASSWORD',
          'SCHEMA_REGISTRY_PASSWORD_FILE',
          'SCHEMA_REGISTRY_USERNAME is set',
        )
      : undefined,
  (env) =>
    !has(env, 'SCHEMA_REGISTRY_USERNAME') &&
    (has(env, 'SCHEMA_REGISTRY_PASSWORD') || has(env, 'SCHEMA_REGISTRY_PASSWORD_FILE'))
      ? 'SCHEMA_REGISTRY_USERNAME: required when a registry password is set'
      : undefined,
  (env) =>
    ['SCHEMA_REGISTRY_USERNAME', 'SCHEMA_REGISTRY_TOKEN', 'SCHEMA_REGISTRY_TOKEN_FILE'].some((n) =>
      has(env, n),
    ) && cleartextRemote(env.SCHEMA_REGISTRY_URL)
      ? 'SCHEMA_REGISTRY_URL: must be https when registry credentials are set (they would cross the network in clear)'
      : undefined,
  (env) =>
    has(env, 'SCHEMA_REGISTRY_CA_FILE') && !String(env.SCHEMA_REGISTRY_URL).startsWith('https:')
      ? 'SCHEMA_REGISTRY_CA_FILE: only used with an https:// SCHEMA_REGISTRY_URL'
      : undefined,
];

function urlHasPassword(url: unknown): boolean {
  try {
    return new URL(String(url)).password !== '';
  } catch {
    return false;
  }
}

const databaseRules: Rule[] = [
  (env) =>
    has(env, 'DATABASE_PASSWORD_FILE') && urlHasPassword(env.DATABASE_URL)
      ? 'DATABASE_PASSWORD_FILE: DATABASE_URL must not carry a password as well'
      : undefined,
];

/**
 * The rules across variables, for whichever of the groups the validated
 * configuration contains (a command that reads no Kafka variables is not
 * held to the Kafka rules). Each problem starts with the variable it is about.
 */
export function crossVariableProblems(env: Env): string[] {
  const problems: (string | undefined)[] = [];
  if ('KAFKA_SECURITY_PROTOCOL' in env) problems.push(...kafkaRules(env));
  if ('SCHEMA_REGISTRY_URL' in env) problems.push(...registryRules.map((r) => r(env)));
  if ('DATABASE_URL' in env) problems.push(...databaseRules.map((r) => r(env)));
  return problems.filter((p): p is string => p !== undefined);
}
