import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadConfig, z } from '../config/index.js';
import { HubError } from '../errors/index.js';
import { registrySecurityFromEnv } from '../events/registry.js';
import { kafkaSecurityFromEnv } from '../kafka/security.js';
import { createMetrics } from '../telemetry/metrics.js';
import { eventPublisher, runService, serviceEnvSchema, startFailure, type ServiceSpec } from './index.js';

const spec = {
  port: 8099,
  env: { WIDGETS: z.coerce.number().int().min(1).default(3), CERT: z.string().optional() },
  checks: [
    { ok: (c: { CERT?: string | undefined }) => c.CERT !== 'bad', path: 'CERT', message: 'not that one' },
  ],
};

describe('service kit: environment', () => {
  it('given nothing set, then the shared variables, the service port and its own take their defaults', () => {
    const cfg = loadConfig(serviceEnvSchema(spec), {});
    expect(cfg).toMatchObject({
      HTTP_HOST: '127.0.0.1',
      HTTP_PORT: 8099,
      KAFKA_BROKERS: ['127.0.0.1:9092'],
      KAFKA_ACK_TIMEOUT_MS: 5000,
      HUB_START_BUDGET_MS: 60_000,
      LOG_LEVEL: 'info',
      WIDGETS: 3,
    });
  });

  it('given bad shared and own variables, then one HUB_CONFIG_INVALID names each, without their values', () => {
    let err: unknown;
    try {
      loadConfig(serviceEnvSchema(spec), { HTTP_PORT: 'eighty', WIDGETS: '0', LOG_LEVEL: 'loud-secret' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(HubError);
    const h = err as HubError;
    expect(h.code).toBe('HUB_CONFIG_INVALID');
    expect(h.message).toMatch(/HTTP_PORT/);
    expect(h.message).toMatch(/WIDGETS/);
    expect(h.message).toMatch(/LOG_LEVEL/);
    expect(h.message).not.toContain('loud-secret');
  });

  it('given a rule across variables that fails, then it is reported on its variable', () => {
    expect(() => loadConfig(serviceEnvSchema(spec), { CERT: 'bad' })).toThrow(/CERT: not that one/);
  });

  it('given SASL_SSL without credentials, then every service refuses to start, naming the missing variables', () => {
    expect(() =>
      loadConfig(serviceEnvSchema(spec), {
        KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
        KAFKA_SASL_MECHANISM: 'scram-sha-512',
      }),
    ).toThrow(/KAFKA_SASL_USERNAME: required[\s\S]*KAFKA_SASL_PASSWORD/);
  });

  it('given the security variables, then the settings the kit passes to the Kafka and registry clients follow them', () => {
    const cfg = loadConfig(serviceEnvSchema(spec), {
      KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: 'projector-portal',
      KAFKA_SASL_PASSWORD: 'pw',
      SCHEMA_REGISTRY_URL: 'https://registry.example/apis/ccompat/v7',
      SCHEMA_REGISTRY_TOKEN: 'tok',
    });
    expect(kafkaSecurityFromEnv(cfg)).toEqual({
      protocol: 'SASL_SSL',
      tls: { caFile: undefined, certFile: undefined, keyFile: undefined, verifyHostname: true },
      sasl: { mechanism: 'scram-sha-512', username: 'projector-portal', password: { value: 'pw' } },
    });
    expect(registrySecurityFromEnv(cfg)).toEqual({ auth: { token: { value: 'tok' } }, caFile: undefined });
  });
});

describe('service kit: a failed start', () => {
  it('given a HubError, then the line says the hub message and the exit code is 1', () => {
    const f = startFailure('svc', new HubError('HUB_CONFIG_INVALID', 'invalid configuration:\n  X: bad'));
    expect(f).toEqual({
      code: 'HUB_CONFIG_INVALID',
      message: 'svc failed to start: invalid configuration:\n  X: bad',
      exitCode: 1,
    });
  });

  it('given a foreign error, then only its name and code are shown, never its message (it can quote data)', () => {
    const err = Object.assign(new Error('ENOENT: no such file, open /secrets/patient-123.pem'), {
      code: 'ENOENT',
    });
    const f = startFailure('svc', err);
    expect(f.message).toBe('svc failed to start: Error ENOENT');
    expect(f.exitCode).toBe(1);
  });
});

describe('service kit: runService before anything is connected', () => {
  class Exit extends Error {
    constructor(readonly code: number | undefined) {
      super(`exit ${code}`);
    }
  }
  let signalHandlers: { SIGTERM: number; SIGINT: number };

  beforeEach(() => {
    signalHandlers = {
      SIGTERM: process.listenerCount('SIGTERM'),
      SIGINT: process.listenerCount('SIGINT'),
    };
    vi.spyOn(process, 'exit').mockImplementation((code) => {
      throw new Exit(typeof code === 'number' ? code : undefined);
    });
    vi.stubEnv('LOG_LEVEL', 'silent');
  });
  afterEach(() => {
    // runService installs SIGTERM/SIGINT handlers once past the configuration: not in this process.
    for (const sig of ['SIGTERM', 'SIGINT'] as const) {
      for (const l of process.listeners(sig).slice(signalHandlers[sig])) process.removeListener(sig, l);
    }
    vi.restoreAllMocks();
    vi.unstubAllEnvs();
  });

  const neverBuilt: Pick<ServiceSpec<typeof spec.env, unknown>, 'connect' | 'build'> = {
    connect: () => undefined,
    build: () => {
      throw new Error('not reached');
    },
  };

  it('given an invalid variable, then it exits 1 before connecting anything', async () => {
    vi.stubEnv('WIDGETS', '0');
    const connect = vi.fn();
    await expect(runService({ name: 'svc', ...spec, ...neverBuilt, connect })).rejects.toEqual(new Exit(1));
    expect(connect).not.toHaveBeenCalled();
  });

  it('given a connect that refuses its configuration file, then it exits 1 without building', async () => {
    const build = vi.fn();
    const run = runService({
      name: 'svc',
      ...spec,
      connect: () => {
        throw new HubError('HUB_CONFIG_INVALID', 'invalid site configuration x.yaml');
      },
      build,
    });
    await expect(run).rejects.toEqual(new Exit(1));
    expect(build).not.toHaveBeenCalled();
  });
});

describe('service kit: event publisher options', () => {
  it('counts published events per topic and type on the service metrics', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const o = eventPublisher({ metrics, topicFor: (t) => `${t}.x` });
    o.onPublished?.('clinical.patient.v1', 'PatientRegistered', 2);
    expect(o.topicFor?.('PatientRegistered')).toBe('PatientRegistered.x');
    expect(await metrics.registry.getSingleMetricAsString('hub_events_published_total')).toMatch(
      /hub_events_published_total\{topic="clinical.patient.v1",type="PatientRegistered"\} 2/,
    );
  });
});
