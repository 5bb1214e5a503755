import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropSchema } from '../db/index.js';
import { analyticsProjection } from '../read-models/analytics/model.js';
import { billingProjection } from '../read-models/billing/model.js';
import { portalProjection } from '../read-models/portal/model.js';
import { createTestContext, type TestContext } from '../../test/support/harness.js';
import { syntheticEvents } from '../../test/support/hospital-day.js';
import { buildToHead, publishWithResends, type TestLog } from '../../test/support/projection-build.js';
import type { ApplyPath } from './runner.js';

const EVENTS = 12_000;
const PROJECTIONS = { portal: portalProjection, billing: billingProjection, analytics: analyticsProjection };
type Name = keyof typeof PROJECTIONS;

/**
 * The bulk path (binary COPY while catching up) against the per-event path
 * (statements), over the same log with resends in it: every read model's
 * tables hash equal, so which path a transaction took never shows in what
 * it wrote. The resends are among the batches of a catch-up, as in a real
 * log: the bulk path drops them itself (regression: each made its whole
 * batch fall back to the statement path).
 */
describe(`bulk catch-up equals per-event apply over ${EVENTS} events with resends`, () => {
  let ctx: TestContext;
  let log: TestLog;

  beforeAll(async () => {
    ctx = await createTestContext('bulk');
    // Resends: the same event ids again, later in the log.
    log = await publishWithResends(ctx, 'bulk', syntheticEvents(EVENTS, 11), 97);
  });
  afterAll(async () => {
    for (const n of Object.keys(PROJECTIONS))
      for (const p of ['bulk', 'stmt']) await dropSchema(ctx.db, `${ctx.schema}_${n}_${p}`);
    await ctx.cleanup();
  });

  async function build(name: Name, bulkMinEvents: number, suffix: string) {
    const paths: Record<ApplyPath, number> = { bulk: 0, 'per-event': 0 };
    const hashes = await buildToHead(
      ctx,
      log,
      PROJECTIONS[name](log.topics),
      `${ctx.schema}_${name}_${suffix}`,
      {
        bulkMinEvents,
        onTransaction: (path) => paths[path]++,
      },
    );
    return { hashes, paths };
  }

  it.each(Object.keys(PROJECTIONS) as Name[])('%s: hash-equal tables either way', async (name) => {
    const bulk = await build(name, 1, 'bulk');
    const stmt = await build(name, Number.POSITIVE_INFINITY, 'stmt');
    expect(bulk.paths.bulk).toBeGreaterThan(0);
    // Resends are dropped on the bulk path itself: none sends its batch back to the statements.
    expect(bulk.paths['per-event']).toBe(0);
    expect(stmt.paths.bulk).toBe(0);
    expect(bulk.hashes).toEqual(stmt.hashes);
  });
});
