import { describe, expect, it } from 'vitest';
import { stackConfig } from './config.js';
import { registryEnv } from './registry.js';

describe('registryEnv', () => {
  it('points Apicurio at its own database and the profile port, with Confluent-style deletes on', () => {
    const cfg = stackConfig('test', { HUB_CACHE_DIR: '/cache', DATABASE_URL: 'postgres://u:pw@db:5433/x' });
    const env = registryEnv(cfg, { PATH: '/bin' });
    expect(env).toEqual({
      PATH: '/bin',
      APICURIO_STORAGE_KIND: 'sql',
      APICURIO_STORAGE_SQL_KIND: 'postgresql',
      APICURIO_DATASOURCE_URL: 'jdbc:postgresql://db:5433/hub_registry_test',
      APICURIO_DATASOURCE_USERNAME: 'u',
      APICURIO_DATASOURCE_PASSWORD: 'pw',
      APICURIO_REST_DELETION_ARTIFACT_ENABLED: 'true',
      APICURIO_REST_DELETION_ARTIFACT_VERSION_ENABLED: 'true',
      APICURIO_REST_DELETION_GROUP_ENABLED: 'true',
      QUARKUS_HTTP_PORT: '28081',
      QUARKUS_HTTP_HOST: '127.0.0.1',
    });
  });
});
