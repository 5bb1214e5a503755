// The test stack on a host that has a Docker engine: the same three servers
// as libs/stack and deploy/compose.yaml, started by testcontainers.
// Used by the test global setup only when a Docker engine answers; the build
// machines have none, so there the JVM stack runs instead. Importing this
// module has no side effects.
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { HubError } from '../../libs/errors/index.js';
import { DEFAULT_APICURIO_VERSION, DEFAULT_KAFKA_VERSION } from '../../libs/stack/config.js';

export interface ContainerStack {
  brokers: string[];
  registryUrl: string;
  databaseUrl: string;
  stop(): Promise<void>;
}

/**
 * Whether to use containers: `HUB_TEST_INFRA=docker` forces it, `jvm`
 * forbids it; otherwise only when a Docker socket or DOCKER_HOST is present
 * and the engine answers (a `docker` client without an engine is not enough).
 */
export async function dockerEngineAvailable(env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  const mode = env['HUB_TEST_INFRA'];
  if (mode === 'jvm') return false;
  if (mode !== 'docker' && !env['DOCKER_HOST'] && !existsSync('/var/run/docker.sock')) return false;
  try {
    // Loaded only here: testcontainers and its HTTP client are not needed on hosts without Docker.
    const { getContainerRuntimeClient } = await import('testcontainers');
    const client = await getContainerRuntimeClient();
    return Boolean(client.info.containerRuntime.host);
  } catch {
    if (mode === 'docker')
      throw new HubError('HUB_INFRA_FAILED', 'HUB_TEST_INFRA=docker but no Docker engine answers');
    return false;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function startContainerStack(
  versions: { kafka: string; apicurio: string } = {
    kafka: DEFAULT_KAFKA_VERSION,
    apicurio: DEFAULT_APICURIO_VERSION,
  },
): Promise<ContainerStack> {
  const { GenericContainer, Network, Wait } = await import('testcontainers');
  const network = await new Network().start();
  const postgres = await new GenericContainer('postgres:15')
    .withNetwork(network)
    .withNetworkAliases('postgres')
    .withEnvironment({ POSTGRES_HOST_AUTH_METHOD: 'trust', POSTGRES_DB: 'hub_test' })
    .withExposedPorts(5432)
    .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
    .start();
  await postgres.exec(['psql', '-U', 'postgres', '-c', 'CREATE DATABASE hub_registry_test']);

  // The broker advertises the address clients dial, so the host port is fixed before start.
  const kafkaHostPort = await freePort();
  const kafka = await new GenericContainer(`apache/kafka:${versions.kafka}`)
    .withNetwork(network)
    .withNetworkAliases('kafka')
    .withEnvironment({
      KAFKA_NODE_ID: '1',
      KAFKA_PROCESS_ROLES: 'broker,controller',
      KAFKA_CONTROLLER_QUORUM_VOTERS: '1@kafka:9093',
      KAFKA_LISTENERS: 'PLAINTEXT://:19092,HOST://:9092,CONTROLLER://:9093',
      KAFKA_ADVERTISED_LISTENERS: `PLAINTEXT://kafka:19092,HOST://127.0.0.1:${kafkaHostPort}`,
      KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
      KAFKA_INTER_BROKER_LISTENER_NAME: 'PLAINTEXT',
      KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,HOST:PLAINTEXT',
      KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
      KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR: '1',
      KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR: '1',
      KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
      KAFKA_AUTO_CREATE_TOPICS_ENABLE: 'false',
      KAFKA_NUM_PARTITIONS: '6',
    })
    .withExposedPorts({ container: 9092, host: kafkaHostPort })
    .withWaitStrategy(Wait.forLogMessage(/Kafka Server started/))
    .start();

  const registry = await new GenericContainer(`quay.io/apicurio/apicurio-registry:${versions.apicurio}`)
    .withNetwork(network)
    .withEnvironment({
      APICURIO_STORAGE_KIND: 'sql',
      APICURIO_STORAGE_SQL_KIND: 'postgresql',
      APICURIO_DATASOURCE_URL: 'jdbc:postgresql://postgres:5432/hub_registry_test',
      APICURIO_DATASOURCE_USERNAME: 'postgres',
      APICURIO_DATASOURCE_PASSWORD: '',
      APICURIO_REST_DELETION_ARTIFACT_ENABLED: 'true',
      APICURIO_REST_DELETION_ARTIFACT_VERSION_ENABLED: 'true',
      APICURIO_REST_DELETION_GROUP_ENABLED: 'true',
    })
    .withExposedPorts(8080)
    .withWaitStrategy(Wait.forHttp('/health/ready', 8080))
    .start();

  return {
    brokers: [`127.0.0.1:${kafkaHostPort}`],
    registryUrl: `http://${registry.getHost()}:${registry.getMappedPort(8080)}/apis/ccompat/v7`,
    databaseUrl: `postgres://postgres@${postgres.getHost()}:${postgres.getMappedPort(5432)}/hub_test`,
    async stop() {
      await registry.stop();
      await kafka.stop();
      await postgres.stop();
      await network.stop();
    },
  };
}
