import { describe, expect, it } from 'vitest';
import type { HubError } from '../errors/index.js';
import { redactLogFields } from './client.js';
import {
  clientCredentialsTokenProvider,
  kafkajsSecurity,
  kafkaSecurityFromEnv,
  type KafkaSecurityEnv,
  type SecurityIo,
} from './security.js';

const files: Record<string, string> = {
  '/ca.pem': 'CA PEM',
  '/client.pem': 'CERT PEM',
  '/client.key': 'KEY PEM',
};
const io: SecurityIo = {
  readFile: (path) => {
    const text = files[path];
    if (text === undefined) throw new Error('ENOENT');
    return Buffer.from(text);
  },
  tokenProvider: () => () => Promise.resolve({ value: 'tok' }),
};
const base: KafkaSecurityEnv = { KAFKA_SECURITY_PROTOCOL: 'PLAINTEXT', KAFKA_SSL_VERIFY_HOSTNAME: true };

describe('kafkaSecurityFromEnv + kafkajsSecurity', () => {
  it('given the defaults, when mapped, then the client is plaintext and anonymous', () => {
    const security = kafkaSecurityFromEnv(base);
    expect(security).toBeUndefined();
    expect(kafkajsSecurity(security, io)).toEqual({});
  });

  it('given SASL_SSL with SCRAM-SHA-512 and a CA, when mapped, then TLS verifies chain and host and SASL carries the credentials', () => {
    const mapped = kafkajsSecurity(
      kafkaSecurityFromEnv({
        ...base,
        KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
        KAFKA_SSL_CA_FILE: '/ca.pem',
        KAFKA_SASL_MECHANISM: 'scram-sha-512',
        KAFKA_SASL_USERNAME: 'adapter-hl7',
        KAFKA_SASL_PASSWORD: 's3cret',
      }),
      io,
    );
    expect(mapped.ssl).toEqual({ rejectUnauthorized: true, ca: [Buffer.from('CA PEM')] });
    expect(mapped.sasl).toEqual({ mechanism: 'scram-sha-512', username: 'adapter-hl7', password: 's3cret' });
  });

  it('given mutual TLS without hostname verification, when mapped, then cert and key are read and only the host check is off', () => {
    const mapped = kafkajsSecurity(
      kafkaSecurityFromEnv({
        ...base,
        KAFKA_SECURITY_PROTOCOL: 'SSL',
        KAFKA_SSL_CA_FILE: '/ca.pem',
        KAFKA_SSL_CERT_FILE: '/client.pem',
        KAFKA_SSL_KEY_FILE: '/client.key',
        KAFKA_SSL_VERIFY_HOSTNAME: false,
      }),
      io,
    );
    const ssl = mapped.ssl as Record<string, unknown>;
    expect(ssl.rejectUnauthorized).toBe(true);
    expect(ssl.cert).toEqual(Buffer.from('CERT PEM'));
    expect(ssl.key).toEqual(Buffer.from('KEY PEM'));
    expect(typeof ssl.checkServerIdentity).toBe('function');
    expect(mapped.sasl).toBeUndefined();
  });

  it('given SASL_PLAINTEXT with SCRAM-SHA-256 and a password file, when mapped, then no TLS and the password comes from the file', () => {
    files['/pw'] = 'from-file\n';
    const security = kafkaSecurityFromEnv({
      ...base,
      KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT',
      KAFKA_SASL_MECHANISM: 'scram-sha-256',
      KAFKA_SASL_USERNAME: 'u',
      KAFKA_SASL_PASSWORD_FILE: '/pw',
    });
    expect(security).toEqual({
      protocol: 'SASL_PLAINTEXT',
      sasl: { mechanism: 'scram-sha-256', username: 'u', password: { file: '/pw' } },
    });
  });

  it('given OAUTHBEARER, when mapped, then kafkajs gets a token provider', async () => {
    const mapped = kafkajsSecurity(
      kafkaSecurityFromEnv({
        ...base,
        KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
        KAFKA_SASL_MECHANISM: 'oauthbearer',
        KAFKA_SASL_OAUTH_TOKEN_URL: 'https://idp.example/token',
        KAFKA_SASL_OAUTH_CLIENT_ID: 'projector-portal',
        KAFKA_SASL_OAUTH_CLIENT_SECRET: 'x',
      }),
      io,
    );
    expect(mapped.ssl).toEqual({ rejectUnauthorized: true });
    const sasl = mapped.sasl as { mechanism: string; oauthBearerProvider: () => Promise<{ value: string }> };
    expect(sasl.mechanism).toBe('oauthbearer');
    await expect(sasl.oauthBearerProvider()).resolves.toEqual({ value: 'tok' });
  });

  it('given hand-built settings that contradict the protocol, when mapped, then configuration is invalid', () => {
    expect(() => kafkajsSecurity({ protocol: 'SASL_SSL' }, io)).toThrow(/needs a SASL mechanism/);
    expect(() => kafkajsSecurity({ protocol: 'SASL_PLAINTEXT', tls: {}, sasl: scram }, io)).toThrow(
      /TLS settings/,
    );
    expect(() => kafkajsSecurity({ protocol: 'SSL', sasl: scram }, io)).toThrow(/SASL settings/);
    expect(() => kafkajsSecurity({ protocol: 'SSL', tls: { certFile: '/client.pem' } }, io)).toThrow(
      /go together/,
    );
  });

  it('given a file that cannot be read, when mapped, then the error names the variable and not the path', () => {
    try {
      kafkajsSecurity({ protocol: 'SSL', tls: { caFile: '/secret/path/missing.pem' } }, io);
      expect.unreachable();
    } catch (err) {
      expect((err as HubError).code).toBe('HUB_CONFIG_INVALID');
      expect((err as HubError).message).toContain('KAFKA_SSL_CA_FILE');
      expect((err as HubError).message).not.toContain('/secret/path');
    }
  });
});

const scram = { mechanism: 'scram-sha-512' as const, username: 'u', password: { value: 'p' } };

describe('clientCredentialsTokenProvider', () => {
  /** A token endpoint that counts its calls, and a provider on it with a settable clock. */
  function endpoint(expiresIn: number, client = { clientId: 'c', clientSecret: () => 's' }, scope?: string) {
    const calls: { init: RequestInit }[] = [];
    const clock = { t: 0 };
    const fetchFn: typeof fetch = (_url, init) => {
      calls.push({ init: init ?? {} });
      const body = { access_token: `t${calls.length}`, token_type: 'Bearer', expires_in: expiresIn };
      return Promise.resolve(new Response(JSON.stringify(body), { status: 200 }));
    };
    const provider = clientCredentialsTokenProvider({
      tokenUrl: 'https://idp/token',
      ...client,
      scope,
      fetch: fetchFn,
      now: () => clock.t,
    });
    return { calls, clock, provider };
  }

  it('given a fresh provider, when asked twice within the lifetime, then one client-credentials request is made', async () => {
    const { calls, clock, provider } = endpoint(
      3600,
      { clientId: 'svc a', clientSecret: () => 'p&q' },
      'kafka',
    );
    const [a, b] = await Promise.all([provider(), provider()]);
    clock.t = 1000;
    const c = await provider();
    expect([a, b, c]).toEqual([{ value: 't1' }, { value: 't1' }, { value: 't1' }]);
    expect(calls).toHaveLength(1);
    const headers = calls[0]?.init.headers as Record<string, string>;
    expect(Buffer.from(String(headers.authorization).replace('Basic ', ''), 'base64').toString()).toBe(
      'svc%20a:p%26q',
    );
    expect((calls[0]?.init.body as URLSearchParams).toString()).toBe(
      'grant_type=client_credentials&scope=kafka',
    );
  });

  it('given a cached token, when it nears expiry, then a new one is requested before it expires', async () => {
    const { calls, clock, provider } = endpoint(600);
    await provider();
    clock.t = 539_000; // 61 s before expiry: still cached
    expect(await provider()).toEqual({ value: 't1' });
    clock.t = 541_000; // 59 s before expiry: renewed
    expect(await provider()).toEqual({ value: 't2' });
    expect(calls).toHaveLength(2);
  });

  it('given an endpoint that refuses, when asked, then the error gives the status and never the secret or the body', async () => {
    const fetchFn: typeof fetch = () =>
      Promise.resolve(new Response('{"error":"invalid_client","echo":"hunter2"}', { status: 401 }));
    const provider = clientCredentialsTokenProvider({
      tokenUrl: 'https://idp/token',
      clientId: 'c',
      clientSecret: () => 'hunter2',
      fetch: fetchFn,
    });
    const err = (await provider().catch((e: unknown) => e)) as HubError;
    expect(err.code).toBe('HUB_AUTH_UNAVAILABLE');
    expect(err.message).toContain('401');
    expect(err.message).not.toContain('hunter2');
  });
});

describe('redactLogFields', () => {
  it('given a kafkajs log entry, when forwarded, then credential-like strings and objects are redacted and numbers kept', () => {
    expect(
      redactLogFields({
        broker: 'b:9093',
        sasl: { mechanism: 'scram-sha-512', password: 'p' },
        ssl: true,
        apiKey: 36,
        password: 'p',
      }),
    ).toEqual({ broker: 'b:9093', sasl: '[redacted]', ssl: true, apiKey: 36, password: '[redacted]' });
  });
});
