import type { ClinicalEvent } from '../../libs/events/index.js';
import { migrateProjection, type Projection } from '../../libs/projections/runner.js';
import { createTestContext, type TestContext } from './harness.js';
import { asRecords } from './read-model-testing.js';

/**
 * A read model's schema of a test's own, filled by its projection's `apply`
 * straight from events (no Kafka, no runner): for integration tests of the
 * SQL a read model serves (views, readers).
 */
export interface AppliedSchema {
  ctx: TestContext;
  schema: string;
  /** Applies the events as one batch, in one transaction, as the runner would. */
  apply(events: readonly ClinicalEvent[]): Promise<void>;
  /** Drops the schema and the test context. */
  cleanup(): Promise<void>;
}

export async function appliedSchema(name: string, projection: Projection): Promise<AppliedSchema> {
  const ctx = await createTestContext(name);
  const schema = `${ctx.schema}_rm`;
  await migrateProjection(ctx.db, schema, projection);
  return {
    ctx,
    schema,
    apply: (events) => ctx.db.transaction((trx) => projection.apply(trx, schema, asRecords(events))),
    async cleanup() {
      await ctx.db.raw('drop schema if exists ?? cascade', [schema]);
      await ctx.cleanup();
    },
  };
}
