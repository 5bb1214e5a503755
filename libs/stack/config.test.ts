import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HubError } from '../errors/index.js';
import { portVariable, stackConfig, type StackProfile } from './config.js';

const base = { HUB_CACHE_DIR: '/cache' };
const cfg = (profile: StackProfile, env: NodeJS.ProcessEnv = {}) => stackConfig(profile, { ...base, ...env });

function rejection(f: () => unknown): HubError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(HubError);
    return err as HubError;
  }
  throw new Error('expected a throw');
}

describe('stackConfig', () => {
  it('gives dev and test their own default ports, databases and data dirs', () => {
    const dev = cfg('dev');
    const test = cfg('test');
    expect([dev.kafka.port, dev.kafka.controllerPort, dev.registry.port]).toEqual([9092, 9093, 8081]);
    expect([test.kafka.port, test.kafka.controllerPort, test.registry.port]).toEqual([29092, 29093, 28081]);
    expect(dev.postgres.url).toBe('postgres://postgres@127.0.0.1:5432/hub');
    expect(test.postgres.url).toBe('postgres://postgres@127.0.0.1:5432/hub_test');
    expect([dev.registry.database, test.registry.database]).toEqual(['hub_registry', 'hub_registry_test']);
    expect(dev.dataDir).toBe(join(dev.repoDir, '.hub', 'dev'));
    expect(test.dataDir).toBe(join(test.repoDir, '.hub', 'test'));
    expect(test.kafka.logDir).toBe(join(test.dataDir, 'kafka'));
    expect(dev.registry.url).toBe('http://127.0.0.1:8081/apis/ccompat/v7');
    expect(dev.postgres.external).toBe(false);
  });

  it('gives the secure profile its own ports, databases, data dir and secure dir', () => {
    const secure = cfg('secure', { HUB_KAFKA_PORT: '19092', HUB_DATA_DIR: '/elsewhere' });
    expect([secure.kafka.port, secure.kafka.controllerPort, secure.registry.port]).toEqual([
      39092, 39093, 38081,
    ]);
    expect(secure.dataDir).toBe(join(secure.repoDir, '.hub', 'secure'));
    expect(secure.kafka.secureDir).toBe(join(secure.dataDir, 'secure'));
    expect(secure.postgres.url).toBe('postgres://postgres@127.0.0.1:5432/hub_secure');
    expect(secure.registry.database).toBe('hub_registry_secure');
    expect(cfg('secure', { HUB_SECURE_KAFKA_PORT: '49092' }).kafka.port).toBe(49092);
    expect(cfg('secure', { HUB_SECURE_DATA_DIR: '/tmp/s' }).dataDir).toBe('/tmp/s');
    expect(cfg('dev').kafka.secureDir).toBeNull();
    expect(portVariable('secure', 'KAFKA_PORT')).toBe('HUB_SECURE_KAFKA_PORT');
  });

  it('reads dev ports from HUB_* and test ports only from HUB_TEST_*', () => {
    const env = { HUB_KAFKA_PORT: '19092', HUB_KAFKA_CONTROLLER_PORT: '19093', HUB_REGISTRY_PORT: '18081' };
    expect(cfg('dev', env).kafka.port).toBe(19092);
    expect(cfg('dev', env).registry.url).toBe('http://127.0.0.1:18081/apis/ccompat/v7');
    expect(cfg('test', env).kafka.port).toBe(29092);
    expect(cfg('test', { HUB_TEST_KAFKA_PORT: '39092' }).kafka.port).toBe(39092);
  });

  it('takes HUB_DATA_DIR and HUB_REGISTRY_DATABASE for dev only (the test data dir is wiped)', () => {
    const env = { HUB_DATA_DIR: '/tmp/elsewhere', HUB_REGISTRY_DATABASE: 'hub_registry_b' };
    expect(cfg('dev', env).dataDir).toBe('/tmp/elsewhere');
    expect(cfg('dev', env).registry.database).toBe('hub_registry_b');
    expect(cfg('test', env).dataDir).toBe(join(cfg('test').repoDir, '.hub', 'test'));
    expect(cfg('test', env).registry.database).toBe('hub_registry_test');
  });

  it('uses DATABASE_URL as given for dev and with hub_test for test, and marks it external', () => {
    const env = { DATABASE_URL: 'postgres://app:s%40cret@db.example:6543/mine' };
    const dev = cfg('dev', env).postgres;
    expect(dev).toEqual({
      host: 'db.example',
      port: 6543,
      user: 'app',
      password: 's@cret',
      database: 'mine',
      url: 'postgres://app:s%40cret@db.example:6543/mine',
      external: true,
      embeddedDir: join(cfg('dev').repoDir, '.hub', 'postgres'),
    });
    const test = cfg('test', env).postgres;
    expect(test.database).toBe('hub_test');
    expect(test.url).toBe('postgres://app:s%40cret@db.example:6543/hub_test');
  });

  it('builds the URL from PG_* with the credentials encoded', () => {
    const pg = cfg('dev', { PG_HOST: 'h', PG_PORT: '5433', PG_USER: 'a b', PG_PASSWORD: 'p:w' }).postgres;
    expect(pg.url).toBe('postgres://a%20b:p%3Aw@h:5433/hub');
    expect(pg.external).toBe(false);
  });

  it('places artifacts in the cache by version', () => {
    const c = cfg('dev', { KAFKA_VERSION: '4.0.0', APICURIO_VERSION: '3.0.1' });
    expect(c.kafka.libsDir).toBe('/cache/kafka-4.0.0/libs');
    expect(c.registry.distDir).toBe('/cache/apicurio-registry-3.0.1/dist');
    expect(c.registry.jar).toBe('/cache/apicurio-registry-3.0.1/dist/apicurio-registry-app-3.0.1-runner.jar');
    expect(cfg('dev').kafka.version).toBe('4.1.1');
  });

  it('treats empty variables as unset', () => {
    expect(cfg('dev', { HUB_KAFKA_PORT: '', DATABASE_URL: '', KAFKA_VERSION: '' }).kafka.port).toBe(9092);
  });

  it('refuses a bad environment, equal ports and an unknown profile as HUB_CONFIG_INVALID', () => {
    const bad = rejection(() => cfg('dev', { HUB_KAFKA_PORT: 'abc', KAFKA_VERSION: '4.1' }));
    expect(bad.code).toBe('HUB_CONFIG_INVALID');
    expect(bad.message).toMatch(/^invalid stack environment: /);
    expect(bad.message).toMatch(/KAFKA_VERSION/);
    expect(rejection(() => cfg('dev', { DATABASE_URL: 'mysql://x' })).code).toBe('HUB_CONFIG_INVALID');

    const same = rejection(() => cfg('test', { HUB_TEST_REGISTRY_PORT: '29092' }));
    expect(same.code).toBe('HUB_CONFIG_INVALID');
    expect(same.message).toBe('stack ports must differ (kafka 29092, controller 29093, registry 29092)');

    const profile = rejection(() => stackConfig('prod' as StackProfile, base));
    expect(profile.code).toBe('HUB_CONFIG_INVALID');
    expect(profile.message).toBe('unknown profile "prod"');
  });
});

describe('portVariable', () => {
  it('names the variable of the profile', () => {
    expect(portVariable('dev', 'KAFKA_PORT')).toBe('HUB_KAFKA_PORT');
    expect(portVariable('test', 'KAFKA_CONTROLLER_PORT')).toBe('HUB_TEST_KAFKA_CONTROLLER_PORT');
  });
});
