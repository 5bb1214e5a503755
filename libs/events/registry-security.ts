import { readFileSync } from 'node:fs';
import { request as httpRequest, type Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { readSecret, secretOf, type Secret } from '../config/index.js';
import { HubError } from '../errors/index.js';

/**
 * Authentication to the schema registry (basic or bearer) and the CA its
 * https certificate is checked against (docs/security.md). Applied to both
 * paths to the registry: the Confluent library (register, id lookups) and
 * the plain REST calls of registry.ts.
 */
export interface RegistrySecurity {
  auth?: { username: string; password: Secret } | { token: Secret } | undefined;
  /** PEM trust anchors for an https registry (the system's when unset). */
  caFile?: string | undefined;
}

/** The shared variables this reads (libs/config kafkaEnv), already validated by loadConfig. */
export interface RegistrySecurityEnv {
  SCHEMA_REGISTRY_USERNAME?: string | undefined;
  SCHEMA_REGISTRY_PASSWORD?: string | undefined;
  SCHEMA_REGISTRY_PASSWORD_FILE?: string | undefined;
  SCHEMA_REGISTRY_TOKEN?: string | undefined;
  SCHEMA_REGISTRY_TOKEN_FILE?: string | undefined;
  SCHEMA_REGISTRY_CA_FILE?: string | undefined;
}

export function registrySecurityFromEnv(env: RegistrySecurityEnv): RegistrySecurity {
  const password = secretOf(env.SCHEMA_REGISTRY_PASSWORD, env.SCHEMA_REGISTRY_PASSWORD_FILE);
  const token = secretOf(env.SCHEMA_REGISTRY_TOKEN, env.SCHEMA_REGISTRY_TOKEN_FILE);
  const auth =
    env.SCHEMA_REGISTRY_USERNAME !== undefined && password
      ? { username: env.SCHEMA_REGISTRY_USERNAME, password }
      : token
        ? { token }
        : undefined;
  return { auth, caFile: env.SCHEMA_REGISTRY_CA_FILE };
}

/** The Authorization header value, read per request so that a rotated token file is picked up. */
export function registryAuthorization(security: RegistrySecurity | undefined): string | undefined {
  const auth = security?.auth;
  if (!auth) return undefined;
  if ('token' in auth) return `Bearer ${readSecret(auth.token, 'SCHEMA_REGISTRY_TOKEN_FILE')}`;
  const password = readSecret(auth.password, 'SCHEMA_REGISTRY_PASSWORD_FILE');
  return `Basic ${Buffer.from(`${auth.username}:${password}`).toString('base64')}`;
}

type LibraryArgs = ConstructorParameters<typeof SchemaRegistry>[0];
export type RegistryLibraryOptions = Pick<LibraryArgs, 'agent' | 'middlewares'>;
type LibraryMiddleware = NonNullable<LibraryArgs['middlewares']>[number];

export interface RegistryResponse {
  status: number;
  json: unknown;
}

export interface RegistryHttpClient {
  /** One call of the registry's REST API; an unreachable registry is HUB_REGISTRY_UNAVAILABLE. */
  call(method: string, path: string, body?: unknown): Promise<RegistryResponse>;
  /** Options for the Confluent library's client: the same agent and Authorization header. */
  libraryOptions: RegistryLibraryOptions;
}

const CT = 'application/vnd.schemaregistry.v1+json';

function agentFor(base: string, security: RegistrySecurity | undefined): HttpAgent | undefined {
  if (!base.startsWith('https:') || !security?.caFile) return undefined;
  let ca: Buffer;
  try {
    ca = readFileSync(security.caFile);
  } catch (cause) {
    throw new HubError('HUB_CONFIG_INVALID', 'SCHEMA_REGISTRY_CA_FILE: the file cannot be read', { cause });
  }
  return new HttpsAgent({ ca, keepAlive: true });
}

function send(
  url: URL,
  init: { method: string; headers: Record<string, string>; body?: string; agent?: HttpAgent | undefined },
): Promise<{ status: number; text: string }> {
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: init.method, headers: init.headers, ...(init.agent ? { agent: init.agent } : {}) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(init.body);
  });
}

/**
 * The registry over node:http(s) rather than fetch: fetch cannot be given a
 * private CA per client, and an https registry signed by the hub's own CA
 * is the secure profile's case.
 */
export function registryHttpClient(base: string, security?: RegistrySecurity): RegistryHttpClient {
  const agent = agentFor(base, security);
  const authMiddleware: LibraryMiddleware = () => ({
    async prepareRequest(next) {
      const request = await next();
      const authorization = registryAuthorization(security);
      return authorization ? request.enhance({ headers: { authorization } }) : request;
    },
  });
  return {
    libraryOptions: {
      ...(agent ? { agent } : {}),
      ...(security?.auth ? { middlewares: [authMiddleware] } : {}),
    },
    async call(method, path, body) {
      const authorization = registryAuthorization(security);
      const headers: Record<string, string> = {
        'content-type': CT,
        accept: CT,
        ...(authorization ? { authorization } : {}),
      };
      let res: { status: number; text: string };
      try {
        res = await send(new URL(`${base}${path}`), {
          method,
          headers,
          agent,
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
      } catch (cause) {
        throw new HubError('HUB_REGISTRY_UNAVAILABLE', `schema registry at ${base} is unreachable`, {
          cause,
        });
      }
      let json: unknown = undefined;
      try {
        json = res.text ? JSON.parse(res.text) : undefined;
      } catch {
        json = res.text;
      }
      return { status: res.status, json };
    },
  };
}
