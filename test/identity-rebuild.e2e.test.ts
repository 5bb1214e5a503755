import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClinicalEvent } from '../libs/events/index.js';
import { lagOf, tableHashes } from '../libs/projections/inspect.js';
import { rebuildReadModel } from '../libs/projections/rebuild.js';
import type { Projection } from '../libs/projections/runner.js';
import type { VersionHooks } from '../libs/projections/versions.js';
import { READ_MODELS } from '../libs/read-models/index.js';
import { DIRECTORY_TOPICS, patientDirectoryProjection } from '../services/patient-directory/projection.js';
import { eventually } from './support/harness.js';
import { at, hospitalDay } from './support/hospital-day.js';
import { linked, proposed, rejected, unlinked } from './support/identity-events.js';
import { startPatientDirectory, type RunningDirectory } from './support/patient-directory.js';
import { PROJECTORS, projectorDeps, startProjectorRun, type ProjectorRun } from './support/projectors.js';

/**
 * Links are decisions on the log like any other event: a read model rebuilt
 * from offset 0 has the same person_links rows and the same persons as the
 * one that followed them live. The scripted hospital day (P4 merged into
 * P3), then: P1-P2 linked, P2-P4 linked (P4 is merged away: the link holds
 * for P3), P3-P5 linked then unlinked, P1-P5 proposed then rejected.
 * Expected: one person P1 = {P1, P2, P3}; P5 alone.
 */
const IDENTITY: readonly ClinicalEvent[] = [
  linked('P1', 'P2', 'id-1', at(17)),
  linked('P2', 'P4', 'id-2', at(17, 5)),
  linked('P3', 'P5', 'id-3', at(17, 10)),
  proposed('P1', 'P5', 'id-4', at(17, 15)),
  unlinked('P3', 'P5', 'id-5', at(17, 20)),
  rejected('P1', 'P5', 'id-6', at(17, 25)),
];

const PERSONS = ['P1->P1', 'P2->P1', 'P3->P1'];

type Model = (typeof PROJECTORS)[number] | 'patient-directory';

describe('identity: every read model rebuilt from offset 0 gives the same linked view', () => {
  let run: ProjectorRun;
  let dir: RunningDirectory;

  const persons = async (schema: string) =>
    (
      await run.ctx.db
        .withSchema(schema)
        .from('persons')
        .orderBy('patient_id')
        .select<{ patient_id: string; person_id: string }[]>('patient_id', 'person_id')
    ).map((r) => `${r.patient_id}->${r.person_id}`);

  const served = (
    m: Model,
  ): { stable: string; schema: () => string | null; projection: Projection; hooks: VersionHooks } =>
    m === 'patient-directory'
      ? {
          stable: dir.schema,
          schema: () => dir.directory.activeSchema(),
          projection: patientDirectoryProjection(DIRECTORY_TOPICS.map(run.ctx.topic)),
          hooks: {},
        }
      : {
          stable: run.stable[m],
          schema: () => run.services[m].activeSchema(),
          projection: READ_MODELS[m].projection(run.topics, {}),
          hooks: READ_MODELS[m].hooks,
        };

  beforeAll(async () => {
    run = await startProjectorRun('idrebuild');
    dir = await startPatientDirectory(run.ctx);
    await run.publishInOrder([...hospitalDay(), ...IDENTITY], 10);
    await run.caughtUp();
    const topics = DIRECTORY_TOPICS.map(run.ctx.topic);
    await eventually(
      async () => {
        const s = dir.directory.activeSchema();
        return s && (await lagOf(run.ctx.db, run.ctx.kafka, s, topics)).lag === 0n ? true : undefined;
      },
      { timeoutMs: 60_000, what: 'patient-directory caught up' },
    );
  });
  afterAll(async () => {
    await dir?.stop();
    await run?.cleanup();
  });

  it.each<Model>([...PROJECTORS, 'patient-directory'])(
    'given links and an unlink on the log, when %s is rebuilt, then its tables hash equal and the persons are the same',
    async (m) => {
      const s = served(m);
      const live = s.schema();
      if (!live) throw new Error(`${m} is not serving`);
      const liveHashes = await tableHashes(run.ctx.db, live);
      // Every pair decided once: P1|P2, P2|P4 linked; P3|P5 unlinked. Proposals and rejections leave no row.
      expect(liveHashes['person_links']).toMatch(/^3:/);
      expect(await persons(live)).toEqual(PERSONS);

      const res = await rebuildReadModel({
        ...projectorDeps(run.ctx),
        projection: s.projection,
        stable: s.stable,
        dlqTopic: `hub.dlq.${run.ctx.id}`,
        hooks: s.hooks,
        keepOld: true,
        pollMs: 200,
      });
      expect(res.from).toBe(live);
      expect(await tableHashes(run.ctx.db, res.to)).toEqual(liveHashes);
      expect(await persons(res.to)).toEqual(PERSONS);
      // Readers see the linked view through the stable schema of the new version.
      expect(await persons(s.stable)).toEqual(PERSONS);
      await run.ctx.db.raw('drop schema if exists ?? cascade', [live]);
    },
  );
});
