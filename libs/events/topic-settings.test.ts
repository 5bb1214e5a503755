import { describe, expect, it } from 'vitest';
import { TOPIC_ENVIRONMENTS } from '../config/index.js';
import { HubError } from '../errors/index.js';
import { catalogEnvironments, type Catalog } from './schema-source.js';
import { productionProblems, topicSettings, type SettingsSource } from './topic-settings.js';

const patient = { catalogName: 'clinical.patient.v1', partitions: 6 };

describe('topicSettings (schemas/catalog.json per environment)', () => {
  it('given the catalog, when resolved per environment, then local 1/1, cluster and production 3/2, never unclean', () => {
    expect(topicSettings('local', patient)).toEqual({
      partitions: 6,
      replicationFactor: 1,
      minInsyncReplicas: 1,
      uncleanLeaderElection: false,
    });
    for (const env of ['cluster', 'production'] as const) {
      expect(topicSettings(env, patient)).toEqual({
        partitions: 6,
        replicationFactor: 3,
        minInsyncReplicas: 2,
        uncleanLeaderElection: false,
      });
    }
  });

  it("given the hub's own topics (dead letters, audit), then the same environment replication, their own partitions", () => {
    expect(topicSettings('production', { partitions: 1 })).toMatchObject({
      partitions: 1,
      replicationFactor: 3,
      minInsyncReplicas: 2,
    });
    expect(topicSettings('local', { partitions: 1 })).toMatchObject({
      replicationFactor: 1,
      minInsyncReplicas: 1,
    });
  });

  it('given a topic override for one environment, then it applies there only', () => {
    const source: SettingsSource = {
      environments: {
        local: { replicationFactor: 1, minInsyncReplicas: 1, uncleanLeaderElection: false },
        cluster: { replicationFactor: 3, minInsyncReplicas: 2, uncleanLeaderElection: false },
        production: { replicationFactor: 3, minInsyncReplicas: 2, uncleanLeaderElection: false },
      },
      topics: [
        {
          name: 'a.v1',
          environments: { production: { replicationFactor: 5, minInsyncReplicas: 3, partitions: 12 } },
        },
      ],
    };
    expect(topicSettings('production', { catalogName: 'a.v1', partitions: 6 }, source)).toEqual({
      partitions: 12,
      replicationFactor: 5,
      minInsyncReplicas: 3,
      uncleanLeaderElection: false,
    });
    expect(topicSettings('local', { catalogName: 'a.v1', partitions: 6 }, source)).toMatchObject({
      partitions: 6,
      replicationFactor: 1,
    });
  });

  it('given explicit settings (tests, drills), then they win; an explicit factor alone gets min(2, RF) as before', () => {
    expect(topicSettings('local', { partitions: 1, replicationFactor: 3 })).toMatchObject({
      replicationFactor: 3,
      minInsyncReplicas: 2,
    });
    expect(topicSettings('production', { partitions: 1, replicationFactor: 1 })).toMatchObject({
      replicationFactor: 1,
      minInsyncReplicas: 1,
    });
    expect(
      topicSettings('production', { partitions: 1, minInsyncReplicas: 3, uncleanLeaderElection: true }),
    ).toMatchObject({ replicationFactor: 3, minInsyncReplicas: 3, uncleanLeaderElection: true });
  });
});

describe('productionProblems', () => {
  it('given production settings below 3 copies or with unclean election, then each is named; other environments pass', () => {
    const topics = [
      {
        name: 'ok.v1',
        partitions: 6,
        replicationFactor: 3,
        minInsyncReplicas: 2,
        uncleanLeaderElection: false,
      },
      {
        name: 'thin.v1',
        partitions: 6,
        replicationFactor: 1,
        minInsyncReplicas: 1,
        uncleanLeaderElection: false,
      },
      {
        name: 'loose.v1',
        partitions: 6,
        replicationFactor: 3,
        minInsyncReplicas: 2,
        uncleanLeaderElection: true,
      },
    ];
    expect(productionProblems('production', topics)).toEqual([
      'topic thin.v1: replication factor 1 < 3',
      'topic loose.v1: unclean leader election enabled',
    ]);
    expect(productionProblems('local', topics)).toEqual([]);
  });
});

describe('catalogEnvironments (gen:types check of catalog.json)', () => {
  const base = (
    environments: NonNullable<Catalog['environments']>,
    topicEnvs?: Record<string, object>,
  ): Catalog => ({
    defaults: { partitions: 6, compatibility: 'FULL_TRANSITIVE' },
    environments,
    topics: [
      {
        name: 't.v1',
        aggregate: 'a',
        key: 'k',
        retentionMs: -1,
        events: [],
        owner: 'o',
        description: 'd',
        ...(topicEnvs ? { environments: topicEnvs } : {}),
      },
    ],
  });
  const good = {
    $comment: 'why',
    local: { replicationFactor: 1, minInsyncReplicas: 1, uncleanLeaderElection: false },
    cluster: { replicationFactor: 3, minInsyncReplicas: 2, uncleanLeaderElection: false },
    production: { replicationFactor: 3, minInsyncReplicas: 2, uncleanLeaderElection: false },
  };

  it('given a complete table, then every environment is returned', () => {
    expect(Object.keys(catalogEnvironments(base(good), TOPIC_ENVIRONMENTS))).toEqual([...TOPIC_ENVIRONMENTS]);
  });

  it('given a missing environment, min.isr above RF or an unknown override, then HUB_SCHEMA_INVALID naming each', () => {
    const bad = base(
      {
        local: good.local,
        production: { replicationFactor: 1, minInsyncReplicas: 2, uncleanLeaderElection: false },
      },
      { staging: { replicationFactor: 2 } },
    );
    const err = (() => {
      try {
        catalogEnvironments(bad, TOPIC_ENVIRONMENTS);
        return undefined;
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(HubError);
    expect((err as HubError).code).toBe('HUB_SCHEMA_INVALID');
    expect((err as HubError).message).toContain('environments.cluster is missing');
    expect((err as HubError).message).toContain(
      'environments.production: minInsyncReplicas above replicationFactor',
    );
    expect((err as HubError).message).toContain('t.v1.environments.staging is not a known environment');
  });
});
