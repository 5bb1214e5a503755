import { describe, expect, it } from 'vitest';
import { inheritedEnv, withoutPassword } from './up.js';

describe('inheritedEnv', () => {
  it('drops the Kafka TLS/SASL and registry credentials of the calling shell and keeps the rest', () => {
    // given a shell that sourced the operator's env file
    const shell = {
      PATH: '/usr/bin',
      KAFKA_BROKERS: '127.0.0.1:39092',
      KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
      KAFKA_SSL_CA_FILE: '/ca.crt',
      KAFKA_SSL_CERT_FILE: '/client.crt',
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: 'hub',
      KAFKA_SASL_PASSWORD_FILE: '/hub.password',
      SCHEMA_REGISTRY_USERNAME: 'hub',
      SCHEMA_REGISTRY_PASSWORD_FILE: '/hub.password',
      SCHEMA_REGISTRY_URL: 'http://127.0.0.1:38081/apis/ccompat/v7',
    };
    // when the services' environment is built from it
    // then no service inherits the operator's identity (hub up sets each service's own)
    expect(inheritedEnv(shell)).toEqual({
      PATH: '/usr/bin',
      KAFKA_BROKERS: '127.0.0.1:39092',
      SCHEMA_REGISTRY_URL: 'http://127.0.0.1:38081/apis/ccompat/v7',
    });
  });
});

describe('withoutPassword', () => {
  it('given a URL with a password, when shown on the terminal, then the password is masked and the rest kept', () => {
    expect(withoutPassword('postgres://hub:s3cr%40t@127.0.0.1:5432/hub')).toBe(
      'postgres://hub:***@127.0.0.1:5432/hub',
    );
    expect(withoutPassword('postgres://postgres@127.0.0.1:5432/hub')).toBe(
      'postgres://postgres@127.0.0.1:5432/hub',
    );
  });
});
