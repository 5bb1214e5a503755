import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropSchema } from '../db/index.js';
import { billingProjection } from '../read-models/billing/model.js';
import { eventMix } from '../../scripts/bench/events.js';
import { createTestContext, type TestContext } from '../../test/support/harness.js';
import { syntheticEvents } from '../../test/support/hospital-day.js';
import { buildToHead, publishWithResends, type TestLog } from '../../test/support/projection-build.js';
import type { Projection } from './runner.js';

// Billing is the one model that skips (libs/read-models/README.md).
const PROJECTIONS = { billing: billingProjection };
type Name = keyof typeof PROJECTIONS;

/**
 * A read model that declares fields it never reads (ReadModel.skip) is
 * decoded without them: its tables must hash equal to a build of the same
 * log decoding every field, which is what the code before skipping did.
 * Over the hospital-day synthetic log (merges, transfers, corrections) and
 * the bench's stays (five observations per result), with resends.
 */
describe('a read model decoded without the fields it skips builds the same tables', () => {
  let ctx: TestContext;
  let log: TestLog;

  beforeAll(async () => {
    ctx = await createTestContext('skip');
    log = await publishWithResends(ctx, 'skip', [...syntheticEvents(6_000, 7), ...eventMix(2_000)], 89);
  });
  afterAll(async () => {
    for (const n of Object.keys(PROJECTIONS))
      for (const p of ['lean', 'whole']) await dropSchema(ctx.db, `${ctx.schema}_${n}_${p}`);
    await ctx.cleanup();
  });

  const build = (name: Name, projection: Projection, suffix: string) =>
    buildToHead(ctx, log, projection, `${ctx.schema}_${name}_${suffix}`);

  it.each(Object.keys(PROJECTIONS) as Name[])('%s: hash-equal to decoding every field', async (name) => {
    // Given the model's projection, which skips fields, and the same projection decoding everything
    const lean = PROJECTIONS[name](log.topics);
    expect(lean.skip).toBeDefined();
    const whole: Projection = { ...lean };
    delete whole.skip;
    // When each builds from the same log, then their tables are the same
    const leanHashes = await build(name, lean, 'lean');
    expect(leanHashes).toEqual(await build(name, whole, 'whole'));
    expect(Object.keys(leanHashes).length).toBeGreaterThan(0);
  });
});
