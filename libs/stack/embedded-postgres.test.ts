import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stackConfig } from './config.js';
import { embeddedPaths, embeddedSettings } from './embedded-postgres.js';

describe('embedded PostgreSQL settings', () => {
  it('given no HUB_POSTGRES_DIR, when configured, then every profile shares <repo>/.hub/postgres', () => {
    const dev = stackConfig('dev', {});
    const dir = join(dev.repoDir, '.hub', 'postgres');
    expect(dev.postgres.embeddedDir).toBe(dir);
    expect(stackConfig('test', {}).postgres.embeddedDir).toBe(dir);
    expect(stackConfig('secure', {}).postgres.embeddedDir).toBe(dir);
    expect(embeddedPaths(dev)).toEqual({
      dir,
      data: join(dir, 'data'),
      passwordFile: join(dir, 'password'),
      log: join(dir, 'postgres.log'),
    });
  });

  it('given HUB_POSTGRES_DIR, when configured, then the cluster lives there', () => {
    expect(stackConfig('dev', { HUB_POSTGRES_DIR: '/tmp/pg-x' }).postgres.embeddedDir).toBe('/tmp/pg-x');
  });

  it("given the server's password, when the stack connects, then the URL carries user hub and the password on PG_PORT", () => {
    const cfg = stackConfig('test', { PG_PORT: '47432' });
    const s = embeddedSettings(cfg, 'a/b+c%d');
    expect(s.user).toBe('hub');
    expect(s.password).toBe('a/b+c%d');
    expect(s.url).toBe('postgres://hub:a%2Fb%2Bc%25d@127.0.0.1:47432/hub_test');
    expect(decodeURIComponent(new URL(s.url).password)).toBe('a/b+c%d');
    expect(s.external).toBe(false);
  });
});
