import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEV_AUDIENCE,
  createTokenVerifier,
  generateDevKeys,
  mintToken,
  type DevKeys,
  type TokenVerifier,
} from '../auth/jwt.js';
import { HUB_SCOPES } from '../auth/scopes.js';
import { HubError } from '../errors/index.js';
import { createLogger } from '../telemetry/logger.js';
import { createHttpApp } from './index.js';
import { operatorRoutes } from './operator.js';

/** An app as the services build it: open /health, and /version behind the operator check. */
function build(verifier: TokenVerifier | null): FastifyInstance {
  const app = createHttpApp({ logger: createLogger({ name: 'operator-test', level: 'silent' }) });
  void app.register(operatorRoutes, {
    verifier,
    routes: (scope) => scope.get('/version', () => ({ schema: 'x_v1' })),
  });
  return app;
}

describe('operator routes on a service port', () => {
  let keys: DevKeys;
  let app: FastifyInstance;
  const token = (scope: string[], audience = DEV_AUDIENCE) =>
    mintToken({ keys, subject: 'ops', scope, ttlSec: 300, audience });

  beforeAll(async () => {
    keys = await generateDevKeys();
    app = build(
      createTokenVerifier({
        issuer: 'https://hub.local/dev-issuer',
        audience: DEV_AUDIENCE,
        jwks: keys.jwks,
      }),
    );
  });
  afterAll(async () => {
    await app.close();
  });

  const get = (url: string, auth?: string) =>
    app.inject({ url, ...(auth ? { headers: { authorization: auth } } : {}) });

  it('given no token, when /version is asked, then 401 with a Bearer challenge and only an error code', async () => {
    const res = await get('/version');
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="hub-operator"');
    expect(res.json()).toMatchObject({ code: 'HUB_UNAUTHENTICATED' });
    expect(res.body).not.toContain('x_v1');
  });

  it('given a malformed header, a foreign signature or another audience, then 401 invalid_token', async () => {
    const other = await generateDevKeys();
    const forged = await mintToken({
      keys: other,
      subject: 'ops',
      scope: [HUB_SCOPES.operator],
      ttlSec: 300,
    });
    for (const auth of [
      'Basic b3BzOm9wcw==',
      'Bearer not a token',
      `Bearer ${forged}`,
      `Bearer ${await token([HUB_SCOPES.operator], 'hub-elsewhere')}`,
    ]) {
      const res = await get('/version', auth);
      expect(res.statusCode, auth).toBe(401);
      expect(res.headers['www-authenticate']).toContain('error="invalid_token"');
    }
  });

  it('given a valid token without the operator scope, then 403 insufficient_scope', async () => {
    const res = await get('/version', `Bearer ${await token([HUB_SCOPES.admin, 'system/*.rs'])}`);
    expect(res.statusCode).toBe(403);
    expect(res.headers['www-authenticate']).toContain('error="insufficient_scope"');
    expect(res.headers['www-authenticate']).toContain(`scope="${HUB_SCOPES.operator}"`);
    expect(res.json()).toMatchObject({ code: 'HUB_FORBIDDEN' });
  });

  it('given an operator token, then the route answers', async () => {
    const res = await get('/version', `Bearer ${await token([HUB_SCOPES.operator])}`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ schema: 'x_v1' });
  });

  it('leaves /health open: the check covers only the routes registered through the plugin', async () => {
    expect((await get('/health')).statusCode).toBe(200);
  });

  it('given no verifier, then every operator route is closed (fail closed), even to a well-formed token', async () => {
    const closed = build(null);
    const res = await closed.inject({
      url: '/version',
      headers: { authorization: `Bearer ${await token([HUB_SCOPES.operator])}` },
    });
    expect(res.statusCode).toBe(401);
    await closed.close();
  });

  it('given the identity provider down, then 503 (not the client token at fault)', async () => {
    const down = build(() => Promise.reject(new HubError('HUB_AUTH_UNAVAILABLE', 'jwks down')));
    const res = await down.inject({ url: '/version', headers: { authorization: 'Bearer abc.def.ghi' } });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ code: 'HUB_AUTH_UNAVAILABLE' });
    await down.close();
  });
});
