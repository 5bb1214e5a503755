import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import type { KafkaConfig, OauthbearerProviderResponse, SASLOptions } from 'kafkajs';
import { readSecret, secretOf, type Secret } from '../config/index.js';
import { HubError } from '../errors/index.js';

/**
 * How a Kafka client connects (docs/security.md): TLS with the hub's CA and
 * optionally a client certificate, SASL/SCRAM or SASL/OAUTHBEARER. Built
 * from the shared variables (kafkaSecurityFromEnv) or by hand (tests, the
 * secure stack), and turned into kafkajs options by kafkajsSecurity.
 */
export type KafkaSecurityProtocol = 'PLAINTEXT' | 'SSL' | 'SASL_PLAINTEXT' | 'SASL_SSL';

export interface KafkaTls {
  caFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
  /** Default true; false keeps the chain check and skips only the host name check. */
  verifyHostname?: boolean | undefined;
}

export type KafkaSasl =
  | { mechanism: 'scram-sha-512' | 'scram-sha-256'; username: string; password: Secret }
  | {
      mechanism: 'oauthbearer';
      tokenUrl: string;
      clientId: string;
      clientSecret: Secret;
      scope?: string | undefined;
    };

export interface KafkaSecurity {
  protocol: KafkaSecurityProtocol;
  tls?: KafkaTls | undefined;
  sasl?: KafkaSasl | undefined;
}

/** The shared variables this reads (libs/config kafkaEnv), already validated by loadConfig. */
export interface KafkaSecurityEnv {
  KAFKA_SECURITY_PROTOCOL: KafkaSecurityProtocol;
  KAFKA_SSL_CA_FILE?: string | undefined;
  KAFKA_SSL_CERT_FILE?: string | undefined;
  KAFKA_SSL_KEY_FILE?: string | undefined;
  KAFKA_SSL_VERIFY_HOSTNAME: boolean;
  KAFKA_SASL_MECHANISM?: 'scram-sha-512' | 'scram-sha-256' | 'oauthbearer' | undefined;
  KAFKA_SASL_USERNAME?: string | undefined;
  KAFKA_SASL_PASSWORD?: string | undefined;
  KAFKA_SASL_PASSWORD_FILE?: string | undefined;
  KAFKA_SASL_OAUTH_TOKEN_URL?: string | undefined;
  KAFKA_SASL_OAUTH_CLIENT_ID?: string | undefined;
  KAFKA_SASL_OAUTH_CLIENT_SECRET?: string | undefined;
  KAFKA_SASL_OAUTH_CLIENT_SECRET_FILE?: string | undefined;
  KAFKA_SASL_OAUTH_SCOPE?: string | undefined;
}

const invalid = (message: string) => new HubError('HUB_CONFIG_INVALID', message);

function saslFromEnv(env: KafkaSecurityEnv): KafkaSasl | undefined {
  const mechanism = env.KAFKA_SASL_MECHANISM;
  if (mechanism === undefined) return undefined;
  if (mechanism === 'oauthbearer') {
    const clientSecret = secretOf(
      env.KAFKA_SASL_OAUTH_CLIENT_SECRET,
      env.KAFKA_SASL_OAUTH_CLIENT_SECRET_FILE,
    );
    if (!env.KAFKA_SASL_OAUTH_TOKEN_URL || !env.KAFKA_SASL_OAUTH_CLIENT_ID || !clientSecret) {
      throw invalid('KAFKA_SASL_MECHANISM oauthbearer needs a token URL, a client id and a client secret');
    }
    return {
      mechanism,
      tokenUrl: env.KAFKA_SASL_OAUTH_TOKEN_URL,
      clientId: env.KAFKA_SASL_OAUTH_CLIENT_ID,
      clientSecret,
      scope: env.KAFKA_SASL_OAUTH_SCOPE,
    };
  }
  const password = secretOf(env.KAFKA_SASL_PASSWORD, env.KAFKA_SASL_PASSWORD_FILE);
  if (!env.KAFKA_SASL_USERNAME || !password) {
    throw invalid(`KAFKA_SASL_MECHANISM ${mechanism} needs KAFKA_SASL_USERNAME and a password`);
  }
  return { mechanism, username: env.KAFKA_SASL_USERNAME, password };
}

/** The validated variables as settings; undefined for the default (PLAINTEXT, nothing else set). */
export function kafkaSecurityFromEnv(env: KafkaSecurityEnv): KafkaSecurity | undefined {
  const protocol = env.KAFKA_SECURITY_PROTOCOL;
  if (protocol === 'PLAINTEXT') return undefined;
  const tls = protocol === 'SSL' || protocol === 'SASL_SSL';
  return {
    protocol,
    ...(tls
      ? {
          tls: {
            caFile: env.KAFKA_SSL_CA_FILE,
            certFile: env.KAFKA_SSL_CERT_FILE,
            keyFile: env.KAFKA_SSL_KEY_FILE,
            verifyHostname: env.KAFKA_SSL_VERIFY_HOSTNAME,
          },
        }
      : {}),
    ...(protocol.startsWith('SASL_') ? { sasl: saslFromEnv(env) } : {}),
  };
}

/** What kafkajsSecurity needs from outside: reading files, and the OAUTHBEARER token source. */
export interface SecurityIo {
  readFile(path: string): Buffer;
  tokenProvider(
    sasl: Extract<KafkaSasl, { mechanism: 'oauthbearer' }>,
  ): () => Promise<OauthbearerProviderResponse>;
}

function readPem(io: SecurityIo, path: string, what: string): Buffer {
  try {
    return io.readFile(path);
  } catch (cause) {
    throw new HubError('HUB_CONFIG_INVALID', `${what}: the file cannot be read`, { cause });
  }
}

function tlsOptions(tls: KafkaTls, io: SecurityIo): ConnectionOptions {
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) {
    throw invalid('KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go together');
  }
  return {
    // Never switched off: a broker whose chain does not verify is refused.
    rejectUnauthorized: true,
    ...(tls.caFile ? { ca: [readPem(io, tls.caFile, 'KAFKA_SSL_CA_FILE')] } : {}),
    ...(tls.certFile ? { cert: readPem(io, tls.certFile, 'KAFKA_SSL_CERT_FILE') } : {}),
    ...(tls.keyFile ? { key: readPem(io, tls.keyFile, 'KAFKA_SSL_KEY_FILE') } : {}),
    ...(tls.verifyHostname === false ? { checkServerIdentity: () => undefined } : {}),
  };
}

function saslOptions(sasl: KafkaSasl, io: SecurityIo): SASLOptions {
  if (sasl.mechanism === 'oauthbearer') {
    return { mechanism: 'oauthbearer', oauthBearerProvider: io.tokenProvider(sasl) };
  }
  return {
    mechanism: sasl.mechanism,
    username: sasl.username,
    password: readSecret(sasl.password, 'KAFKA_SASL_PASSWORD_FILE'),
  };
}

const defaultIo: SecurityIo = {
  readFile: (path) => readFileSync(path),
  tokenProvider: (sasl) =>
    clientCredentialsTokenProvider({
      tokenUrl: sasl.tokenUrl,
      clientId: sasl.clientId,
      clientSecret: () => readSecret(sasl.clientSecret, 'KAFKA_SASL_OAUTH_CLIENT_SECRET_FILE'),
      scope: sasl.scope,
    }),
};

/**
 * The kafkajs `ssl` and `sasl` options for the settings. The chain is always
 * verified (rejectUnauthorized true); the host name check is skipped only
 * when verifyHostname is false. Files are read here, once per client.
 */
export function kafkajsSecurity(
  security: KafkaSecurity | undefined,
  io: SecurityIo = defaultIo,
): Pick<KafkaConfig, 'ssl' | 'sasl'> {
  if (!security || security.protocol === 'PLAINTEXT') {
    if (security?.tls || security?.sasl) throw invalid('TLS or SASL settings given with protocol PLAINTEXT');
    return {};
  }
  const { protocol } = security;
  const tls = protocol === 'SSL' || protocol === 'SASL_SSL';
  const sasl = protocol === 'SASL_SSL' || protocol === 'SASL_PLAINTEXT';
  if (sasl && !security.sasl) throw invalid(`KAFKA_SECURITY_PROTOCOL ${protocol} needs a SASL mechanism`);
  if (!sasl && security.sasl) throw invalid(`SASL settings given with protocol ${protocol}`);
  if (!tls && security.tls) throw invalid(`TLS settings given with protocol ${protocol}`);
  return {
    ...(tls ? { ssl: tlsOptions(security.tls ?? {}, io) } : {}),
    ...(security.sasl ? { sasl: saslOptions(security.sasl, io) } : {}),
  };
}

export interface ClientCredentialsOptions {
  tokenUrl: string;
  clientId: string;
  /** Called per token request, so that a rotated secret file is picked up. */
  clientSecret: () => string;
  scope?: string | undefined;
  fetch?: typeof fetch;
  now?: () => number;
  /** Renew this long before expiry (default 60 s, at most half the token's lifetime). */
  refreshMarginMs?: number;
}

interface CachedToken {
  value: string;
  renewAt: number;
}

/** Lifetime when the token endpoint does not say (expires_in is RECOMMENDED, not required). */
const DEFAULT_LIFETIME_S = 300;

async function requestToken(o: ClientCredentialsOptions, now: number): Promise<CachedToken> {
  // client_secret_basic (RFC 6749 §2.3.1): id and secret form-encoded, then base64.
  const basic = Buffer.from(
    `${encodeURIComponent(o.clientId)}:${encodeURIComponent(o.clientSecret())}`,
  ).toString('base64');
  const body = new URLSearchParams({
    grant_type: 'client_credentials',
    ...(o.scope ? { scope: o.scope } : {}),
  });
  let res: Response;
  try {
    res = await (o.fetch ?? fetch)(o.tokenUrl, {
      method: 'POST',
      headers: {
        authorization: `Basic ${basic}`,
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
      },
      body,
      signal: AbortSignal.timeout(10_000),
    });
  } catch (cause) {
    throw new HubError('HUB_AUTH_UNAVAILABLE', 'the Kafka OAuth token endpoint is unreachable', { cause });
  }
  // The body is not quoted in errors: it can echo the request's credentials.
  const json = (await res.json().catch(() => undefined)) as
    { access_token?: unknown; expires_in?: unknown } | undefined;
  if (!res.ok || typeof json?.access_token !== 'string' || json.access_token === '') {
    throw new HubError(
      'HUB_AUTH_UNAVAILABLE',
      `the Kafka OAuth token endpoint answered ${res.status} without a token`,
    );
  }
  const lifetimeMs =
    (typeof json.expires_in === 'number' && json.expires_in > 0 ? json.expires_in : DEFAULT_LIFETIME_S) *
    1000;
  const margin = Math.min(o.refreshMarginMs ?? 60_000, lifetimeMs / 2);
  return { value: json.access_token, renewAt: now + lifetimeMs - margin };
}

/**
 * A kafkajs oauthBearerProvider: OAuth 2.0 client credentials against the
 * token URL, the token cached until shortly before it expires; concurrent
 * connections share one request.
 */
export function clientCredentialsTokenProvider(
  o: ClientCredentialsOptions,
): () => Promise<OauthbearerProviderResponse> {
  const now = o.now ?? Date.now;
  let cached: CachedToken | undefined;
  let pending: Promise<CachedToken> | undefined;
  return async () => {
    if (cached && now() < cached.renewAt) return { value: cached.value };
    pending ??= requestToken(o, now()).finally(() => {
      pending = undefined;
    });
    cached = await pending;
    return { value: cached.value };
  };
}
