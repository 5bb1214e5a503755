import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { connectionUrl } from './index.js';

describe('connectionUrl', () => {
  it('given no password file, when built, then the URL is used as it is', () => {
    const url = 'postgres://hub@db:5432/hub?sslmode=verify-full&sslrootcert=/etc/ca.crt';
    expect(connectionUrl(url)).toBe(url);
  });

  it('given a password file, when built, then its content is the URL password, encoded, and TLS parameters stay', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'hub-db-pw-')), 'pw');
    writeFileSync(file, 'p@ss:w%rd/?\n');
    const url = new URL(
      connectionUrl('postgres://hub@db:5432/hub?sslmode=verify-full&sslrootcert=/etc/ca.crt', file),
    );
    expect(decodeURIComponent(url.password)).toBe('p@ss:w%rd/?');
    expect(url.username).toBe('hub');
    expect(url.searchParams.get('sslmode')).toBe('verify-full');
    expect(url.searchParams.get('sslrootcert')).toBe('/etc/ca.crt');
  });
});
