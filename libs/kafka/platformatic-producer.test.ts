import { NetworkError, ProtocolError, TimeoutError } from '@platformatic/kafka';
import { describe, expect, it } from 'vitest';
import { isRetriable } from '../errors/index.js';
import { headersOf, mapPlatformaticError, platformaticSecurity } from './platformatic-producer.js';
import { kafkaSecurityFromEnv, type KafkaSecurityEnv, type SecurityIo } from './security.js';

const io: SecurityIo = {
  readFile: (path) => Buffer.from(`PEM ${path}`),
  tokenProvider: () => () => Promise.resolve({ value: 'tok' }),
};
const base: KafkaSecurityEnv = { KAFKA_SECURITY_PROTOCOL: 'PLAINTEXT', KAFKA_SSL_VERIFY_HOSTNAME: true };

describe('headersOf (kafkajs-style headers as the library takes them)', () => {
  it('given strings, buffers, a repeated header and an undefined one, then every value is kept as bytes', () => {
    const h = headersOf({ a: 'x', b: Buffer.from('y'), c: ['1', '2'], d: undefined });
    const pairs = [...h].map(([k, v]) => [k.toString(), v.toString()]);
    expect(pairs).toEqual([
      ['a', 'x'],
      ['b', 'y'],
      ['c', '1'],
      ['c', '2'],
    ]);
  });
});

describe('headersOf allocates a header name once, not per record', () => {
  it('given two records with the same header names, then both use the same name bytes, and a repeated header still has a name object per value', () => {
    const a = headersOf({ 'hub-event-type': 'PatientRegistered', tag: ['1', '2'] });
    const b = headersOf({ 'hub-event-type': 'ResultReported' });
    const [aName] = a.keys();
    const [bName] = b.keys();
    expect(aName).toBe(bName);
    expect([...a.keys()].filter((k) => k.toString() === 'tag')).toHaveLength(2);
  });

  it('given headers with an inherited property, then only the object’s own headers are written', () => {
    const h = Object.assign(Object.create({ inherited: 'x' }) as Record<string, string>, { own: 'y' });
    expect([...headersOf(h).keys()].map((k) => k.toString())).toEqual(['own']);
  });
});

describe('platformaticSecurity (the kafkajs client settings, mapped)', () => {
  it('given the defaults, then plaintext and anonymous', () => {
    expect(platformaticSecurity(kafkaSecurityFromEnv(base), io)).toEqual({});
  });

  it('given SASL_SSL with SCRAM-SHA-512 and a CA, then TLS verifies the chain and SASL carries the credentials', () => {
    const mapped = platformaticSecurity(
      kafkaSecurityFromEnv({
        ...base,
        KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
        KAFKA_SSL_CA_FILE: '/ca.pem',
        KAFKA_SASL_MECHANISM: 'scram-sha-512',
        KAFKA_SASL_USERNAME: 'hub',
        KAFKA_SASL_PASSWORD: 'pw',
      }),
      io,
    );
    expect(mapped.tls).toMatchObject({ rejectUnauthorized: true, ca: [Buffer.from('PEM /ca.pem')] });
    expect(mapped.sasl).toEqual({ mechanism: 'SCRAM-SHA-512', username: 'hub', password: 'pw' });
  });

  it('given OAUTHBEARER, then the token comes from the same provider', async () => {
    const mapped = platformaticSecurity(
      kafkaSecurityFromEnv({
        ...base,
        KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT',
        KAFKA_SASL_MECHANISM: 'oauthbearer',
        KAFKA_SASL_OAUTH_TOKEN_URL: 'https://idp.example/token',
        KAFKA_SASL_OAUTH_CLIENT_ID: 'hub',
        KAFKA_SASL_OAUTH_CLIENT_SECRET: 's',
      }),
      io,
    );
    expect(mapped.tls).toBeUndefined();
    expect(mapped.sasl?.mechanism).toBe('OAUTHBEARER');
    const token = mapped.sasl?.token;
    expect(typeof token === 'function' ? await token() : token).toBe('tok');
  });
});

describe('mapPlatformaticError (the library failures in the hub error model)', () => {
  it('given network and timeout failures, then retriable HUB_KAFKA_UNAVAILABLE', () => {
    for (const e of [new NetworkError('Connection closed'), new TimeoutError('Request timed out')]) {
      const h = mapPlatformaticError(e);
      expect(h.code).toBe('HUB_KAFKA_UNAVAILABLE');
      expect(isRetriable(h)).toBe(true);
    }
  });

  it('given a refusal the library will not retry, then HUB_KAFKA_ERROR, not retriable', () => {
    const h = mapPlatformaticError(new ProtocolError('RECORD_LIST_TOO_LARGE'));
    expect(h.code).toBe('HUB_KAFKA_ERROR');
    expect(isRetriable(h)).toBe(false);
  });
});
