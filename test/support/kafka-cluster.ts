import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import kafkajs from 'kafkajs';
import {
  nodePid,
  stackConfig,
  startNode,
  startStack,
  stopNode,
  withKafkaNodes,
  type KafkaNode,
  type StackConfig,
} from '../../libs/stack/index.js';
import type { TestContext } from './harness.js';
import { freePort, repoDir } from './processes.js';

/**
 * A 3-node KRaft cluster of one test's own (combined broker+controller nodes, own
 * ports, freshly formatted data dirs under .hub/, RF 3 / min.isr 2 defaults: see
 * libs/stack/kafka.ts), for tests that kill and restart brokers. The shared
 * registry and Postgres are reused, never started or stopped here.
 */
export interface PrivateCluster {
  /** Bootstrap list, all nodes "127.0.0.1:<port>". */
  brokers: string[];
  /** [1, 2, 3] */
  nodeIds: number[];
  /** All nodes; resolves when every node is up and the metadata shows all brokers. */
  start(): Promise<void>;
  /** One stopped node again; resolves when the metadata lists it. */
  startNode(id: number): Promise<void>;
  /** Resolves when the node's process is dead. SIGTERM is a controlled shutdown, SIGKILL a crash. */
  stopNode(id: number, signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  pid(id: number): Promise<number>;
  /** The node id leading a partition, from the metadata. */
  leaderOf(topic: string, partition: number): Promise<number>;
  /** Stops all nodes and deletes their data dirs. */
  remove(): Promise<void>;
}

/** The cluster's config: the dev profile on free ports, with a data dir of the test's own. */
async function clusterConfig(ctx: TestContext, dataDir: string, brokers: number): Promise<StackConfig> {
  const nodes: KafkaNode[] = [];
  for (let id = 1; id <= brokers; id++)
    nodes.push({ id, port: await freePort(), controllerPort: await freePort() });
  const base = stackConfig(
    'dev',
    {
      ...process.env,
      HUB_CLUSTER_REGISTRY_PORT: new URL(ctx.ep.registryUrl).port || '8081',
      HUB_CLUSTER_DATA_DIR: dataDir,
      DATABASE_URL: ctx.ep.databaseUrl,
    },
    { brokers: 3 },
  );
  return withKafkaNodes(base, nodes);
}

export async function privateCluster(
  ctx: TestContext,
  name: string,
  opts: { brokers?: number } = {},
): Promise<PrivateCluster> {
  const dataDir = join(repoDir, '.hub', `${name}-${ctx.id}`);
  const cfg = await clusterConfig(ctx, dataDir, opts.brokers ?? 3);
  const nodeIds = (cfg.kafka.nodes ?? []).map((n) => n.id);
  const brokers = (cfg.kafka.nodes ?? []).map((n) => `${cfg.kafka.host}:${n.port}`);
  const admin = new kafkajs.Kafka({
    clientId: `${ctx.id}-cluster`,
    brokers,
    logLevel: kafkajs.logLevel.NOTHING,
  }).admin();
  let connected = false;
  const stopAll = async () => {
    // Kills rather than shutdowns: the data is deleted next, and a controlled
    // shutdown of the last nodes waits for a quorum that is already gone.
    await Promise.all(nodeIds.map((id) => stopNode(cfg, id, 'SIGKILL')));
  };
  return {
    brokers,
    nodeIds,
    async start() {
      const stack = await startStack(cfg);
      if (stack.started.join() !== 'kafka')
        throw new Error(`expected to start kafka only, started ${stack.started.join()}`);
    },
    async startNode(id) {
      await startNode(cfg, id);
    },
    stopNode: (id, signal = 'SIGTERM') => stopNode(cfg, id, signal),
    async pid(id) {
      const pid = await nodePid(cfg, id);
      if (pid === null) throw new Error(`kafka node ${id} is not running`);
      return pid;
    },
    async leaderOf(topic, partition) {
      if (!connected) {
        await admin.connect();
        connected = true;
      }
      const md = await admin.fetchTopicMetadata({ topics: [topic] });
      const p = md.topics[0]?.partitions.find((x) => x.partitionId === partition);
      if (!p) throw new Error(`no partition ${partition} of ${topic} in the metadata`);
      return p.leader;
    },
    async remove() {
      if (connected) await admin.disconnect().catch(() => undefined);
      connected = false;
      await stopAll();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
