// The multi-broker stack's Kafka: N KRaft nodes in combined mode (kafka.ts says why),
// each a one-broker config of its own (components.ts nodeConfig), started side by side
// because no node finishes starting before a majority of the controller quorum is up.
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import kafkajs from 'kafkajs';
import { HubError } from '../errors/index.js';
import type { Log, StackConfig } from './config.js';
import { components, nodeConfig, type ComponentSpec } from './components.js';
import {
  CLUSTER_NODE_HEAP,
  formatKafka,
  kafkaClusterId,
  kafkaFormatted,
  kafkaLaunch,
  writeKafkaFiles,
} from './kafka.js';
import { tcpOpen } from './probes.js';
import { isAlive, noop, secs, signalGroup, sleep, terminate } from './process.js';
import { launch, livePid, presence, removePidFile, reuseOrStart, type Spawned } from './supervisor.js';

/** Three JVMs starting at once on two cores take far longer than one alone. */
const NODE_READY_MS = 240_000;
const REGISTERED_MS = 120_000;

export interface SpawnedNode extends Spawned {
  id: number;
}

const nodeIds = (cfg: StackConfig): number[] => (cfg.kafka.nodes ?? []).map((n) => n.id);

/** A node's probe, with the longer wait a crowded start needs. */
function nodeSpec(cfg: StackConfig, id: number): ComponentSpec {
  return { ...components(nodeConfig(cfg, id)).kafka, readyMs: NODE_READY_MS };
}

/** Every node's client address, the bootstrap list clients get. */
export function clusterBrokers(cfg: StackConfig): string[] {
  return (cfg.kafka.nodes ?? []).map((n) => `${cfg.kafka.host}:${n.port}`);
}

/** The cluster id the formatted nodes share, or a new one when none is formatted yet. */
async function clusterIdOf(cfg: StackConfig): Promise<string> {
  for (const id of nodeIds(cfg)) {
    const meta = join(nodeConfig(cfg, id).kafka.logDir, 'meta.properties');
    const text = await readFile(meta, 'utf8').catch(() => '');
    const m = /^cluster\.id=(.+)$/m.exec(text);
    if (m?.[1]) return m[1].trim();
  }
  return kafkaClusterId();
}

/**
 * Formats a node like its formatted sibling `from` would have been: the same bootstrap
 * checkpoint (metadata version and features), and meta.properties with the node's own
 * id and a new directory id. This is what StorageTool writes; doing it here saves a
 * JVM launch per node, which on two cores is seconds of every cluster start.
 */
async function formatLike(
  ncfg: StackConfig,
  id: number,
  from: StackConfig,
  clusterId: string,
): Promise<void> {
  await copyFile(
    join(from.kafka.logDir, 'bootstrap.checkpoint'),
    join(ncfg.kafka.logDir, 'bootstrap.checkpoint'),
  );
  const meta = [
    'version=1',
    `cluster.id=${clusterId}`,
    `node.id=${id}`,
    `directory.id=${kafkaClusterId()}`,
    '',
  ];
  await writeFile(join(ncfg.kafka.logDir, 'meta.properties'), meta.join('\n'));
}

/** Writes each node's files and formats those not formatted yet, all with one cluster id. */
async function prepareNodes(cfg: StackConfig, ids: number[], log: Log) {
  const clusterId = await clusterIdOf(cfg);
  const prepared = await Promise.all(
    ids.map(async (id) => {
      const ncfg = nodeConfig(cfg, id);
      return { id, ncfg, files: await writeKafkaFiles(ncfg, undefined, id) };
    }),
  );
  const all = nodeIds(cfg).map((id) => nodeConfig(cfg, id));
  let formatted = all.find(kafkaFormatted);
  for (const p of prepared) {
    if (kafkaFormatted(p.ncfg)) continue;
    if (formatted) await formatLike(p.ncfg, p.id, formatted, clusterId);
    else {
      await formatKafka(p.ncfg, p.files, clusterId, log);
      formatted = p.ncfg;
    }
  }
  return prepared;
}

/** Spawns one prepared node and waits until it has started (its broker unfenced). */
async function launchNode(
  cfg: StackConfig,
  p: Awaited<ReturnType<typeof prepareNodes>>[number],
  log: Log,
): Promise<SpawnedNode> {
  const { id, ncfg, files } = p;
  if (await tcpOpen(ncfg.kafka.host, ncfg.kafka.controllerPort)) {
    throw new HubError(
      'HUB_INFRA_FAILED',
      `kafka-${id}: controller port ${ncfg.kafka.controllerPort} is in use`,
    );
  }
  log(`kafka-${id}: starting on ${ncfg.kafka.host}:${ncfg.kafka.port}`);
  const s = await launch(ncfg, nodeSpec(cfg, id), kafkaLaunch(ncfg, files, CLUSTER_NODE_HEAP), log);
  return { ...s, id };
}

/** Waits until the cluster metadata lists every one of `ids` as a live broker. */
export async function waitForBrokers(cfg: StackConfig, ids: number[], ms = REGISTERED_MS): Promise<void> {
  const kafka = new kafkajs.Kafka({
    clientId: 'hub-stack',
    brokers: clusterBrokers(cfg),
    logLevel: kafkajs.logLevel.NOTHING,
    retry: { retries: 0 },
  });
  const admin = kafka.admin();
  const deadline = Date.now() + ms;
  let seen: number[] = [];
  try {
    await admin.connect();
    for (;;) {
      seen = await admin
        .describeCluster()
        .then((d) => d.brokers.map((b) => b.nodeId))
        .catch(() => []);
      if (ids.every((id) => seen.includes(id))) return;
      if (Date.now() >= deadline) break;
      await sleep(250);
    }
  } catch (err) {
    throw new HubError('HUB_INFRA_FAILED', `kafka: cluster metadata unreachable: ${(err as Error).message}`, {
      cause: err,
    });
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
  throw new HubError(
    'HUB_INFRA_FAILED',
    `kafka: brokers ${ids.join(', ')} not all registered after ${secs(ms)} (metadata lists ${seen.join(', ') || 'none'})`,
  );
}

/**
 * Starts the nodes not running yet (adopting the others) and resolves once the metadata
 * lists every broker. Returns what it started; on failure stops those again.
 */
export async function startCluster(cfg: StackConfig, log: Log): Promise<SpawnedNode[]> {
  const t0 = Date.now();
  const ids = nodeIds(cfg);
  const absent: number[] = [];
  for (const id of ids) {
    const spec = nodeSpec(cfg, id);
    const p = await presence(nodeConfig(cfg, id), spec);
    if (p.kind === 'absent') absent.push(id);
    else
      await reuseOrStart(nodeConfig(cfg, id), spec, p, () => Promise.reject(new Error('unreachable')), log);
  }
  const prepared = await prepareNodes(cfg, absent, log);
  const results = await Promise.allSettled(prepared.map((p) => launchNode(cfg, p, log)));
  const started = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  try {
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    await waitForBrokers(cfg, ids);
  } catch (err) {
    await stopNodes(cfg, started, noop).catch(() => undefined);
    throw err;
  }
  log(`kafka: ${ids.length} brokers registered in ${secs(Date.now() - t0)}`);
  return started;
}

/** Starts one stopped node again and resolves once the metadata lists it. */
export async function startNode(cfg: StackConfig, id: number, log: Log = noop): Promise<SpawnedNode | null> {
  const spec = nodeSpec(cfg, id);
  const ncfg = nodeConfig(cfg, id);
  const p = await presence(ncfg, spec);
  let s: SpawnedNode | null = null;
  if (p.kind === 'absent') {
    const [prepared] = await prepareNodes(cfg, [id], log);
    if (prepared) s = await launchNode(cfg, prepared, log);
  } else await reuseOrStart(ncfg, spec, p, () => Promise.reject(new Error('unreachable')), log);
  await waitForBrokers(cfg, [id]);
  return s;
}

/** The node's JVM pid from its pid file, if it runs. */
export function nodePid(cfg: StackConfig, id: number): Promise<number | null> {
  return livePid(nodeConfig(cfg, id), nodeSpec(cfg, id));
}

/**
 * Stops one node and resolves once its process is gone: SIGTERM is a controlled
 * shutdown (SIGKILL after a grace period), SIGKILL a crash.
 */
export async function stopNode(
  cfg: StackConfig,
  id: number,
  signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM',
  log: Log = noop,
): Promise<void> {
  const ncfg = nodeConfig(cfg, id);
  const pid = await nodePid(cfg, id);
  if (pid === null) return;
  if (signal === 'SIGTERM') await terminate(`kafka-${id}`, pid, log);
  else {
    signalGroup(pid, 'SIGKILL');
    const deadline = Date.now() + 10_000;
    while (isAlive(pid)) {
      if (Date.now() > deadline)
        throw new HubError('HUB_INFRA_FAILED', `kafka-${id}: pid ${pid} survived SIGKILL`);
      await sleep(20);
    }
    log(`kafka-${id}: killed (pid ${pid})`);
  }
  await removePidFile(ncfg, 'kafka', pid);
}

/**
 * Stops the nodes one call started, all at once: one by one, the last would have lost
 * its quorum and wait in its controlled shutdown until SIGKILL.
 */
export async function stopNodes(cfg: StackConfig, nodes: SpawnedNode[], log: Log): Promise<void> {
  await Promise.all(
    nodes.splice(0).map(async (n) => {
      await terminate(`kafka-${n.id}`, n.pid, log);
      await removePidFile(nodeConfig(cfg, n.id), 'kafka', n.pid);
    }),
  );
}
