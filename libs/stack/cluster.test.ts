import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HubError } from '../errors/index.js';
import { nodeConfig } from './components.js';
import { stackConfig } from './config.js';

const env = { HUB_CACHE_DIR: '/cache' };

describe('stackConfig with 3 brokers', () => {
  it('is a dev stack of its own: ports, data dir and databases apart from the single-node stacks', () => {
    // given no overrides / when the 3-broker stack is configured
    const cfg = stackConfig('dev', env, { brokers: 3 });
    // then each node has its own client and controller port, next to the dev ones
    expect(cfg.kafka.nodes).toEqual([
      { id: 1, port: 19092, controllerPort: 19192 },
      { id: 2, port: 19093, controllerPort: 19193 },
      { id: 3, port: 19094, controllerPort: 19194 },
    ]);
    expect([cfg.kafka.port, cfg.kafka.controllerPort, cfg.registry.port]).toEqual([19092, 19192, 18081]);
    expect(cfg.registry.url).toBe('http://127.0.0.1:18081/apis/ccompat/v7');
    expect(cfg.dataDir).toBe(join(cfg.repoDir, '.hub', 'cluster'));
    expect(cfg.registry.database).toBe('hub_registry_cluster');
    expect(cfg.postgres.database).toBe('hub_cluster');
  });

  it('takes the first ports and the data dir from HUB_CLUSTER_*', () => {
    const cfg = stackConfig(
      'dev',
      {
        ...env,
        HUB_CLUSTER_KAFKA_PORT: '5000',
        HUB_CLUSTER_CONTROLLER_PORT: '6000',
        HUB_CLUSTER_DATA_DIR: '/x',
      },
      { brokers: 3 },
    );
    expect(cfg.kafka.nodes?.map((n) => [n.port, n.controllerPort])).toEqual([
      [5000, 6000],
      [5001, 6001],
      [5002, 6002],
    ]);
    expect(nodeConfig(cfg, 3).dataDir).toBe('/x/node-3');
    expect(nodeConfig(cfg, 3).kafka.logDir).toBe('/x/node-3/kafka');
    expect(nodeConfig(cfg, 3).kafka.port).toBe(5002);
  });

  it('leaves the single-node stack as it was', () => {
    expect(stackConfig('dev', env).kafka.nodes).toBeNull();
    expect(stackConfig('dev', env, { brokers: 1 })).toEqual(stackConfig('dev', env));
  });

  it('refuses other profiles, other sizes and overlapping ports', () => {
    expect(() => stackConfig('test', env, { brokers: 3 })).toThrow(HubError);
    expect(() => stackConfig('dev', env, { brokers: 2 })).toThrow(HubError);
    expect(() =>
      stackConfig('dev', { ...env, HUB_CLUSTER_CONTROLLER_PORT: '19093' }, { brokers: 3 }),
    ).toThrow(/cluster ports must differ/);
    expect(() => nodeConfig(stackConfig('dev', env), 1)).toThrow(/no Kafka node 1/);
  });
});
