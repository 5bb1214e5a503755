import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HubError } from '../errors/index.js';
import { ensureCa, issueCertificate, readCertificate } from '../stack/certs.js';
import { createRegistryClient } from './registry.js';

/**
 * What reaches the registry's door: a plain HTTP(S) server that records each
 * request's Authorization header and answers 401 unless it is the expected
 * one. It does not imitate the registry (registry.int.test.ts runs against
 * the real one); it shows that both paths of the client (the Confluent
 * library and the REST calls) send the credentials, and that an https
 * registry is trusted through SCHEMA_REGISTRY_CA_FILE and only then.
 */
interface Door {
  url: string;
  seen: { method: string; path: string; authorization: string | undefined }[];
  close(): Promise<void>;
}

function handler(expected: string, seen: Door['seen']) {
  return (req: IncomingMessage, res: ServerResponse) => {
    seen.push({ method: req.method ?? '', path: req.url ?? '', authorization: req.headers.authorization });
    req.resume();
    req.on('end', () => {
      const ok = req.headers.authorization === expected;
      res.writeHead(ok ? 200 : 401, { 'content-type': 'application/vnd.schemaregistry.v1+json' });
      res.end(ok ? '[]' : '{"error_code":401,"message":"Unauthorized"}');
    });
  };
}

async function listen(server: Server, scheme: string, seen: Door['seen']): Promise<Door> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${scheme}://127.0.0.1:${port}/apis/ccompat/v7`,
    seen,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('schema registry authentication and CA', () => {
  let dir: string;
  let http: Door;
  let https: Door;
  let caFile: string;
  let tokenFile: string;
  const basic = `Basic ${Buffer.from('hub-svc:pa:ss').toString('base64')}`;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hub-registry-auth-'));
    const ca = await ensureCa(join(dir, 'ca'));
    caFile = ca.certFile;
    const server = await issueCertificate(ca, join(dir, 'certs'), 'registry', {
      hosts: ['127.0.0.1'],
      usage: 'server',
    });
    const { cert, key } = await readCertificate(server);
    tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, 'tok-1\n');
    const httpSeen: Door['seen'] = [];
    http = await listen(createHttpServer(handler(basic, httpSeen)), 'http', httpSeen);
    const httpsSeen: Door['seen'] = [];
    https = await listen(
      createHttpsServer({ cert, key }, handler('Bearer tok-2', httpsSeen)),
      'https',
      httpsSeen,
    );
  });

  afterAll(async () => {
    await http.close();
    await https.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('given basic credentials, when the REST calls and the library call the registry, then every request carries them', async () => {
    const registry = createRegistryClient(http.url, {
      auth: { username: 'hub-svc', password: { value: 'pa:ss' } },
    });
    expect(await registry.subjects()).toEqual([]);
    // The library's id lookup: the door answers 200 with no id; only the header matters here.
    await registry.idOf('s-1', { type: 'string' }).catch(() => undefined);
    expect(http.seen.map((s) => [s.method, s.authorization])).toEqual([
      ['GET', basic],
      ['POST', basic],
    ]);
    expect(http.seen[1]?.path).toBe('/apis/ccompat/v7/subjects/s-1');
  });

  it('given no credentials, when the registry refuses, then the client reports it instead of an empty list', async () => {
    const err = (await createRegistryClient(http.url)
      .subjects()
      .catch((e: unknown) => e)) as HubError;
    expect(err.code).toBe('HUB_REGISTRY_UNAVAILABLE');
    expect(err.message).toContain('401');
  });

  it('given an https registry signed by the hub CA, when the CA file is configured, then it is trusted and the bearer token from the file is sent (re-read per request)', async () => {
    writeFileSync(tokenFile, 'tok-2\n');
    const registry = createRegistryClient(https.url, { auth: { token: { file: tokenFile } }, caFile });
    expect(await registry.subjects()).toEqual([]);
    await registry.idOf('s-2', { type: 'string' }).catch(() => undefined);
    expect(https.seen.map((s) => s.authorization)).toEqual(['Bearer tok-2', 'Bearer tok-2']);
  });

  it('given the same https registry, when no CA file is configured, then the connection is refused as untrusted', async () => {
    const before = https.seen.length;
    const err = (await createRegistryClient(https.url, { auth: { token: { value: 'tok-2' } } })
      .subjects()
      .catch((e: unknown) => e)) as HubError;
    expect(err.code).toBe('HUB_REGISTRY_UNAVAILABLE');
    expect(https.seen.length).toBe(before);
  });
});
