import { SignJWT, UnsecuredJWT, importJWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { HubError } from '../errors/index.js';
import {
  DEV_AUDIENCE,
  DEV_ISSUER,
  cachedVerifier,
  createTokenVerifier,
  generateDevKeys,
  mintToken,
} from './jwt.js';
import type { Principal } from './scopes.js';

async function problemOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
    return 'accepted';
  } catch (err) {
    expect(err).toBeInstanceOf(HubError);
    expect((err as HubError).code).toBe('HUB_UNAUTHENTICATED');
    return (err as HubError).details['problem'];
  }
}

describe('token verification (local key set)', () => {
  it('given a minted token, when verified, then the principal carries scopes and patient', async () => {
    const keys = await generateDevKeys('k1');
    const verify = createTokenVerifier({ issuer: DEV_ISSUER, audience: DEV_AUDIENCE, jwks: keys.jwks });
    const token = await mintToken({
      keys,
      subject: 'u1',
      scope: ['patient/*.rs'],
      patient: 'P1',
      ttlSec: 60,
    });
    expect(await verify(token)).toMatchObject({
      subject: 'u1',
      clientId: 'u1',
      scopes: ['patient/*.rs'],
      patient: 'P1',
    });
  });

  it('given an expired token, when verified, then it is refused as expired', async () => {
    const keys = await generateDevKeys('k1');
    const verify = createTokenVerifier({ issuer: DEV_ISSUER, audience: DEV_AUDIENCE, jwks: keys.jwks });
    const now = Math.floor(Date.now() / 1000) - 3600;
    const token = await mintToken({ keys, subject: 'u1', scope: ['user/*.rs'], ttlSec: 60, now });
    expect(await problemOf(verify(token))).toBe('expired');
  });

  it('given alg none, when verified, then it is refused', async () => {
    const keys = await generateDevKeys('k1');
    const verify = createTokenVerifier({ issuer: DEV_ISSUER, audience: DEV_AUDIENCE, jwks: keys.jwks });
    const token = new UnsecuredJWT({ scope: 'user/*.rs' })
      .setSubject('evil')
      .setIssuer(DEV_ISSUER)
      .setAudience(DEV_AUDIENCE)
      .setExpirationTime('1h')
      .encode();
    expect(await problemOf(verify(token))).not.toBe('accepted');
  });

  it('given an HS256 token keyed with public material, when verified, then the algorithm is refused', async () => {
    const keys = await generateDevKeys('k1');
    const verify = createTokenVerifier({ issuer: DEV_ISSUER, audience: DEV_AUDIENCE, jwks: keys.jwks });
    const secret = new TextEncoder().encode(JSON.stringify(keys.jwks));
    const token = await new SignJWT({ scope: 'user/*.rs' })
      .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
      .setSubject('evil')
      .setIssuer(DEV_ISSUER)
      .setAudience(DEV_AUDIENCE)
      .setExpirationTime('1h')
      .sign(secret);
    expect(await problemOf(verify(token))).toBe('unsupported-alg');
  });

  it('given the wrong issuer or audience, when verified, then the claims are refused', async () => {
    const keys = await generateDevKeys('k1');
    const verify = createTokenVerifier({ issuer: DEV_ISSUER, audience: DEV_AUDIENCE, jwks: keys.jwks });
    const base = { keys, subject: 'u', scope: ['user/*.rs'], ttlSec: 60 };
    expect(await problemOf(verify(await mintToken({ ...base, issuer: 'https://evil' })))).toBe('bad-claims');
    expect(await problemOf(verify(await mintToken({ ...base, audience: 'other-api' })))).toBe('bad-claims');
  });

  it('given a token signed by another key, when verified, then the signature is refused', async () => {
    const keys = await generateDevKeys('k1');
    const other = await generateDevKeys('k1');
    const verify = createTokenVerifier({ issuer: DEV_ISSUER, audience: DEV_AUDIENCE, jwks: keys.jwks });
    const token = await mintToken({ keys: other, subject: 'u', scope: ['user/*.rs'], ttlSec: 60 });
    expect(await problemOf(verify(token))).toBe('bad-signature');
    // The private half never verifies anything by itself either.
    await importJWK(keys.privateJwk, 'ES256');
  });

  it('given garbage, when verified, then it is malformed', async () => {
    const keys = await generateDevKeys('k1');
    const verify = createTokenVerifier({ issuer: DEV_ISSUER, audience: DEV_AUDIENCE, jwks: keys.jwks });
    expect(await problemOf(verify('not.a.jwt'))).toBe('malformed');
  });
});

describe('verification cache', () => {
  const principal = (expiresAt: number): Principal => ({
    subject: 's',
    clientId: 'c',
    scopes: [],
    patient: null,
    expiresAt,
  });

  it('given the same token twice, when verified, then the signature is checked once', async () => {
    let calls = 0;
    let t = 1_000;
    const verify = cachedVerifier(
      () => {
        calls++;
        return Promise.resolve(principal(100_000));
      },
      { now: () => t },
    );
    await verify('tok');
    await verify('tok');
    expect(calls).toBe(1);
    // Past the token's expiry the cached answer is not used.
    t = 100_001;
    await verify('tok');
    expect(calls).toBe(2);
  });

  it('given a refused token, when retried, then it is verified again (failures are not cached)', async () => {
    let calls = 0;
    const verify = cachedVerifier(() => {
      calls++;
      return Promise.reject(new HubError('HUB_UNAUTHENTICATED', 'invalid bearer token (expired)'));
    });
    await expect(verify('bad')).rejects.toThrow();
    await expect(verify('bad')).rejects.toThrow();
    expect(calls).toBe(2);
  });

  it('given more tokens than the bound, when cached, then the oldest is evicted', async () => {
    let calls = 0;
    const verify = cachedVerifier(
      () => {
        calls++;
        return Promise.resolve(principal(Number.MAX_SAFE_INTEGER));
      },
      { max: 2 },
    );
    await verify('a');
    await verify('b');
    await verify('c');
    await verify('a');
    expect(calls).toBe(4);
    await verify('c');
    expect(calls).toBe(4);
  });
});
