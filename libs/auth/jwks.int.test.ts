import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HubError } from '../errors/index.js';
import { createTokenVerifier, generateDevKeys, mintToken, type DevKeys } from './jwt.js';

/**
 * The production path: keys fetched from an identity provider's JWKS URL
 * (a real HTTP server here), cached, and refetched when a token names a key
 * the cache does not know (rotation).
 */
describe('token verification against a JWKS URL', () => {
  let server: Server;
  let url: string;
  let served: JSONWebKeySet = { keys: [] };
  let fetches = 0;
  let k1: DevKeys;
  let k2: DevKeys;

  beforeAll(async () => {
    k1 = await generateDevKeys('kid-1');
    k2 = await generateDevKeys('kid-2');
    served = k1.jwks;
    server = createServer((_req, res) => {
      fetches++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(served));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('verifies with fetched keys, caches them, and follows a key rotation', async () => {
    const verify = createTokenVerifier({
      issuer: 'https://idp',
      audience: 'hub-api',
      jwksUrl: url,
      jwksCooldownMs: 0,
    });
    const t1 = await mintToken({
      keys: k1,
      subject: 'u',
      scope: ['user/*.rs'],
      ttlSec: 60,
      issuer: 'https://idp',
    });
    expect((await verify(t1)).subject).toBe('u');
    expect((await verify(t1)).subject).toBe('u');
    expect(fetches).toBe(1);
    // The IdP rotates to a new key; a token naming it triggers one refetch.
    served = { keys: [...k1.jwks.keys, ...k2.jwks.keys] };
    const t2 = await mintToken({
      keys: k2,
      subject: 'v',
      scope: ['user/*.rs'],
      ttlSec: 60,
      issuer: 'https://idp',
    });
    expect((await verify(t2)).subject).toBe('v');
    expect(fetches).toBe(2);
  });

  it('refuses a token whose key the IdP does not publish', async () => {
    const verify = createTokenVerifier({ issuer: 'https://idp', audience: 'hub-api', jwksUrl: url });
    const rogue = await generateDevKeys('kid-rogue');
    const t = await mintToken({
      keys: rogue,
      subject: 'x',
      scope: ['user/*.rs'],
      ttlSec: 60,
      issuer: 'https://idp',
    });
    await expect(verify(t)).rejects.toBeInstanceOf(HubError);
  });

  it('reports an unreachable identity provider as unavailable, not as a bad token', async () => {
    const dead = createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    const port = (dead.address() as AddressInfo).port;
    await new Promise<void>((r) => dead.close(() => r()));
    const verify = createTokenVerifier({
      issuer: 'https://idp',
      audience: 'hub-api',
      jwksUrl: `http://127.0.0.1:${port}/jwks.json`,
    });
    const t = await mintToken({
      keys: k1,
      subject: 'u',
      scope: ['user/*.rs'],
      ttlSec: 60,
      issuer: 'https://idp',
    });
    await expect(verify(t)).rejects.toMatchObject({ code: 'HUB_AUTH_UNAVAILABLE', retriable: true });
  });
});
