import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endOffsets } from '../libs/kafka/admin.js';
import { rebuildReadModel } from '../libs/projections/rebuild.js';
import { portalProjection } from '../libs/read-models/portal/model.js';
import { patientRegistered } from './support/fixtures.js';
import { eventually } from './support/harness.js';
import { startProjectorRun, type ProjectorRun } from './support/projectors.js';

/**
 * What consumer-group tools see of a projector across a rebuild: the serving
 * version's group holds the applied offsets (lag 0), the old version's group
 * is deleted once the projector moved over, and the rebuild's throw-away
 * group leaves no offsets behind (it would be listed with a growing lag for
 * the broker's offset retention).
 */
describe('consumer groups of a projector across a rebuild', () => {
  let run: ProjectorRun;
  const dlq = () => `hub.dlq.${run.ctx.id}`;
  const groupOf = (schema: string) => `hub.projection.${run.ctx.id}.portal.${schema}`;

  beforeAll(async () => {
    run = await startProjectorRun('vgroups', ['portal']);
  });
  afterAll(async () => {
    await run?.cleanup();
  });

  /** Committed offsets of `group` on the partitions that hold records, against their end offsets. */
  async function atEnd(group: string): Promise<boolean> {
    const admin = run.ctx.kafka.admin();
    await admin.connect();
    try {
      for (const t of await admin.fetchOffsets({ groupId: group, topics: run.topics })) {
        const ends = await endOffsets(run.ctx.kafka, t.topic);
        for (const p of t.partitions) {
          const end = ends.get(p.partition) ?? 0n;
          if (end > 0n && p.offset !== end.toString()) return false;
        }
      }
      return true;
    } finally {
      await admin.disconnect();
    }
  }

  async function groupsLike(prefix: string) {
    const admin = run.ctx.kafka.admin();
    await admin.connect();
    try {
      const { groups } = await admin.listGroups();
      const out: { groupId: string; committed: number }[] = [];
      for (const g of groups.filter((x) => x.groupId.startsWith(prefix))) {
        const offsets = await admin.fetchOffsets({ groupId: g.groupId, topics: run.topics });
        out.push({
          groupId: g.groupId,
          committed: offsets.flatMap((t) => t.partitions).filter((p) => Number(p.offset) >= 0).length,
        });
      }
      return out;
    } finally {
      await admin.disconnect();
    }
  }

  it('the serving version shows lag 0, the old version group is deleted, the rebuild group commits nothing', async () => {
    // Given a serving portal projector that applied events
    await run.ctx.producer.publish(
      Array.from({ length: 20 }, (_, i) => patientRegistered(`PV${i}`, 'Version', `vg-${i}`)),
    );
    await run.caughtUp();
    const before = run.schemaOf('portal');
    await eventually(async () => ((await atEnd(groupOf(before))) ? true : undefined), {
      timeoutMs: 5_000,
      what: 'the serving group at the end offsets',
    });

    // When the read model is rebuilt and the projector moves to the new version
    const res = await rebuildReadModel({
      db: run.ctx.db,
      kafka: run.ctx.kafka,
      codec: run.ctx.codec,
      producer: run.ctx.producer,
      logger: run.ctx.logger,
      projection: portalProjection(run.topics),
      stable: run.stable.portal,
      dlqTopic: dlq(),
      pollMs: 100,
    });
    await eventually(
      () => Promise.resolve(run.services.portal.activeSchema() === res.to ? true : undefined),
      { what: 'the projector follows the switch' },
    );

    // Then the new version's group shows the applied offsets without a new event
    await eventually(async () => ((await atEnd(groupOf(res.to))) ? true : undefined), {
      timeoutMs: 5_000,
      what: 'the new serving group at the end offsets',
    });
    // ... the old version's group is gone
    await eventually(async () => ((await groupsLike(groupOf(before))).length === 0 ? true : undefined), {
      timeoutMs: 5_000,
      what: 'the old version group deleted',
    });
    // ... and the rebuild's own group left no committed offsets
    const rebuildGroups = await groupsLike(`hub.rebuild.portal.${res.to}.`);
    expect(rebuildGroups.every((g) => g.committed === 0)).toBe(true);
  });
});
