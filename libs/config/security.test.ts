import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { HubError } from '../errors/index.js';
import { databaseEnv, kafkaEnv, loadConfig, z } from './index.js';
import { readSecret } from './security.js';

const dir = mkdtempSync(join(tmpdir(), 'hub-config-security-'));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const ca = file('ca.pem', 'CA');
const pw = file('pw', 'kafka-password\n');
const schema = z.object({ ...kafkaEnv, ...databaseEnv });

function problemsOf(env: Record<string, string>): string {
  try {
    loadConfig(schema, env);
  } catch (err) {
    expect((err as HubError).code).toBe('HUB_CONFIG_INVALID');
    return (err as HubError).message;
  }
  return '';
}

describe('Kafka, registry and Postgres security variables', () => {
  it('given nothing set, when loaded, then PLAINTEXT with host name verification on is the default', () => {
    const cfg = loadConfig(schema, {});
    expect(cfg.KAFKA_SECURITY_PROTOCOL).toBe('PLAINTEXT');
    expect(cfg.KAFKA_SSL_VERIFY_HOSTNAME).toBe(true);
  });

  it('given SASL_SSL with SCRAM credentials from a file, when loaded, then it is accepted (mechanism case-insensitive)', () => {
    const cfg = loadConfig(schema, {
      KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
      KAFKA_SSL_CA_FILE: ca,
      KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
      KAFKA_SASL_USERNAME: 'adapter-hl7',
      KAFKA_SASL_PASSWORD_FILE: pw,
    });
    expect(cfg.KAFKA_SASL_MECHANISM).toBe('scram-sha-512');
  });

  it('given SASL without a mechanism, or SCRAM without credentials, when loaded, then each missing variable is named', () => {
    expect(problemsOf({ KAFKA_SECURITY_PROTOCOL: 'SASL_SSL' })).toMatch(/KAFKA_SASL_MECHANISM: required/);
    const scram = problemsOf({ KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_SASL_MECHANISM: 'scram-sha-256' });
    expect(scram).toMatch(/KAFKA_SASL_USERNAME: required/);
    expect(scram).toMatch(/KAFKA_SASL_PASSWORD: KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE is required/);
    const oauth = problemsOf({
      KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT',
      KAFKA_SASL_MECHANISM: 'oauthbearer',
    });
    expect(oauth).toMatch(/KAFKA_SASL_OAUTH_TOKEN_URL: required/);
    expect(oauth).toMatch(/KAFKA_SASL_OAUTH_CLIENT_ID: required/);
    expect(oauth).toMatch(/KAFKA_SASL_OAUTH_CLIENT_SECRET/);
    expect(
      problemsOf({
        KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
        KAFKA_SASL_MECHANISM: 'oauthbearer',
        KAFKA_SASL_OAUTH_TOKEN_URL: 'http://idp.example/token',
        KAFKA_SASL_OAUTH_CLIENT_ID: 'c',
        KAFKA_SASL_OAUTH_CLIENT_SECRET: 's',
      }),
    ).toMatch(/KAFKA_SASL_OAUTH_TOKEN_URL: must be https/);
  });

  it('given settings the protocol would ignore, when loaded, then they are refused rather than silently unused', () => {
    const msg = problemsOf({ KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SSL_CA_FILE: ca });
    expect(msg).toMatch(/KAFKA_SASL_MECHANISM: only used with/);
    expect(msg).toMatch(/KAFKA_SSL_CA_FILE: only used with/);
  });

  it('given a certificate without its key, an unreadable file and both password forms, when loaded, then every problem is listed without values', () => {
    const msg = problemsOf({
      KAFKA_SECURITY_PROTOCOL: 'SSL',
      KAFKA_SSL_CERT_FILE: ca,
      KAFKA_SSL_CA_FILE: '/nonexistent/secret-dir/ca.pem',
    });
    expect(msg).toMatch(/KAFKA_SSL_CA_FILE: the file does not exist or is not readable/);
    expect(msg).not.toContain('secret-dir');
    const both = problemsOf({
      KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: 'u',
      KAFKA_SASL_PASSWORD: 'inline-secret-value',
      KAFKA_SASL_PASSWORD_FILE: pw,
      KAFKA_SSL_CERT_FILE: ca,
    });
    expect(both).toMatch(
      /KAFKA_SASL_PASSWORD: set either KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE, not both/,
    );
    expect(both).toMatch(/KAFKA_SSL_CERT_FILE: KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go together/);
    expect(both).not.toContain('inline-secret-value');
  });

  it('given registry credentials, when loaded, then basic needs both parts, bearer excludes basic, and a CA needs https', () => {
    expect(problemsOf({ SCHEMA_REGISTRY_USERNAME: 'u' })).toMatch(/SCHEMA_REGISTRY_PASSWORD/);
    expect(problemsOf({ SCHEMA_REGISTRY_PASSWORD: 'p' })).toMatch(/SCHEMA_REGISTRY_USERNAME: required/);
    expect(
      problemsOf({
        SCHEMA_REGISTRY_USERNAME: 'u',
        SCHEMA_REGISTRY_PASSWORD: 'p',
        SCHEMA_REGISTRY_TOKEN: 't',
      }),
    ).toMatch(/exclusive/);
    expect(problemsOf({ SCHEMA_REGISTRY_CA_FILE: ca })).toMatch(
      /SCHEMA_REGISTRY_CA_FILE: only used with an https/,
    );
    expect(problemsOf({ SCHEMA_REGISTRY_URL: 'http://registry:8081', SCHEMA_REGISTRY_TOKEN: 't' })).toMatch(
      /SCHEMA_REGISTRY_URL: must be https when registry credentials are set/,
    );
    expect(problemsOf({ SCHEMA_REGISTRY_URL: 'http://127.0.0.1:8081', SCHEMA_REGISTRY_TOKEN: 't' })).toBe('');
    expect(
      problemsOf({
        SCHEMA_REGISTRY_URL: 'https://registry:8081',
        SCHEMA_REGISTRY_CA_FILE: ca,
        SCHEMA_REGISTRY_TOKEN: 't',
      }),
    ).toBe('');
  });

  it('given a password file and a URL with a password, when loaded, then the double source is refused', () => {
    expect(problemsOf({ DATABASE_URL: 'postgres://hub:inline@db/hub', DATABASE_PASSWORD_FILE: pw })).toMatch(
      /DATABASE_PASSWORD_FILE: DATABASE_URL must not carry a password/,
    );
    expect(
      problemsOf({ DATABASE_URL: 'postgres://hub@db/hub?sslmode=verify-full', DATABASE_PASSWORD_FILE: pw }),
    ).toBe('');
  });
});

describe('readSecret', () => {
  it('given a file written by echo, when read, then the trailing newline is not part of the secret', () => {
    expect(readSecret({ file: pw }, 'X')).toBe('kafka-password');
    expect(readSecret({ value: 'v' }, 'X')).toBe('v');
    expect(() => readSecret({ file: join(dir, 'missing') }, 'DATABASE_PASSWORD_FILE')).toThrow(
      /DATABASE_PASSWORD_FILE: the file cannot be read/,
    );
  });
});
