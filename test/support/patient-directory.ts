import { dropReadModel } from '../../libs/projections/versions.js';
import { buildPatientDirectory, type PatientDirectory } from '../../services/patient-directory/app.js';
import type { TestContext } from './harness.js';
import { projectorDeps } from './projectors.js';

/** patient-directory in-process beside a test's projectors: its own stable schema, dead-letter topic and group. */
export interface RunningDirectory {
  directory: PatientDirectory;
  /** The stable schema downstream teams read (`<it>.patients`). */
  schema: string;
  stop(): Promise<void>;
}

export async function startPatientDirectory(ctx: TestContext): Promise<RunningDirectory> {
  const schema = `${ctx.schema}_dir`;
  const dlq = `hub.dlq.patient-directory.${ctx.id}`;
  ctx.extraTopics.push(dlq);
  const directory = buildPatientDirectory(projectorDeps(ctx), {
    stableSchema: schema,
    topicFor: ctx.topic,
    dlqTopic: dlq,
    groupPrefix: `hub.projection.${ctx.id}.dir`,
  });
  await directory.start();
  return {
    directory,
    schema,
    async stop() {
      await directory.stop();
      await dropReadModel(ctx.db, schema).catch(() => undefined);
    },
  };
}
