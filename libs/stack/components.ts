// The two JVM components the stack runs, as the supervisor sees them: where they
// listen, how to tell they are ready, and where their pid and log files live.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HubError } from '../errors/index.js';
import type { ComponentName, StackConfig } from './config.js';
import { httpOk, kafkaAnswers } from './probes.js';
import { OPERATOR_PRINCIPAL, secureCaFile } from './secure.js';

const KAFKA_READY_MS = 60_000;
const REGISTRY_READY_MS = 120_000;

export interface ComponentSpec {
  name: ComponentName;
  port: number;
  host: string;
  /** Substring of the JVM command line, to tell our process from a recycled pid. */
  cmdlineMarker: string;
  readyMs: number;
  answers(): Promise<boolean>;
}

/** Ready and also the Confluent-compatible API we hand out (a Confluent registry on 8081 is not). */
async function registryAnswers(cfg: StackConfig): Promise<boolean> {
  const base = `http://${cfg.registry.host}:${cfg.registry.port}`;
  return (
    (await httpOk(`${base}/health/ready`)) &&
    (await httpOk(`${cfg.registry.url}/subjects`, 2000, await registryAuthHeader(cfg)))
  );
}

/** The secure profile's registry wants a user (secure.ts): the operator's, read from its password file. */
async function registryAuthHeader(cfg: StackConfig): Promise<Record<string, string>> {
  const dir = cfg.kafka.secureDir;
  if (!dir) return {};
  const file = join(dir, 'credentials', `${OPERATOR_PRINCIPAL}.password`);
  const pw = await readFile(file, 'utf8').catch(() => '');
  return { authorization: `Basic ${Buffer.from(`${OPERATOR_PRINCIPAL}:${pw.trim()}`).toString('base64')}` };
}

export function components(cfg: StackConfig): Record<ComponentName, ComponentSpec> {
  return {
    kafka: {
      name: 'kafka',
      port: cfg.kafka.port,
      host: cfg.kafka.host,
      cmdlineMarker: 'kafka.Kafka',
      readyMs: KAFKA_READY_MS,
      answers: () => {
        const dir = cfg.kafka.secureDir;
        return dir
          ? kafkaAnswers(cfg.kafka.host, cfg.kafka.port, 2000, { caFile: secureCaFile(dir) })
          : kafkaAnswers(cfg.kafka.host, cfg.kafka.port);
      },
    },
    registry: {
      name: 'registry',
      port: cfg.registry.port,
      host: cfg.registry.host,
      cmdlineMarker: 'apicurio-registry-app',
      readyMs: REGISTRY_READY_MS,
      answers: () => registryAnswers(cfg),
    },
  };
}

/**
 * A node of a multi-broker stack seen as a one-broker config: its own ports and data
 * dir `<dataDir>/node-<id>` (pid file, logs, event store), so the single-broker
 * start, probe and stop code serves each node unchanged.
 */
export function nodeConfig(cfg: StackConfig, id: number): StackConfig {
  const node = cfg.kafka.nodes?.find((n) => n.id === id);
  if (!node) throw new HubError('HUB_CONFIG_INVALID', `no Kafka node ${id} in this stack`);
  const dataDir = join(cfg.dataDir, `node-${id}`);
  return {
    ...cfg,
    dataDir,
    kafka: {
      ...cfg.kafka,
      port: node.port,
      controllerPort: node.controllerPort,
      logDir: join(dataDir, 'kafka'),
    },
  };
}

export const pidFile = (cfg: StackConfig, name: ComponentName) => join(cfg.dataDir, `${name}.pid`);
export const logFile = (cfg: StackConfig, name: ComponentName) => join(cfg.dataDir, 'logs', `${name}.log`);
