import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rebuildReadModel } from '../../libs/projections/rebuild.js';
import { createMetrics } from '../../libs/telemetry/metrics.js';
import { eventually } from '../../test/support/harness.js';
import { admitted, discharged } from '../../test/support/hospital-day.js';
import { startProjectorRun, type ProjectorRun } from '../../test/support/projectors.js';
import { ANALYTICS_VERSION_HOOKS, analyticsProjection } from '../../libs/read-models/analytics/model.js';
import { ANALYST_ROLE } from '../../libs/read-models/analytics/views.js';
import { buildAnalyticsProjector } from './app.js';

type Row = Record<string, unknown>;

/**
 * Days in the site's reporting zone through the real projection: events on
 * real topics, the analytics projector configured with a zone, the views in
 * Postgres read as the analyst role. The zone is read by the views when
 * queried: a restart with another zone changes the days without a rebuild,
 * and a rebuild keeps the zone.
 */
describe('analytics: days in the reporting time zone (real projection)', () => {
  let run: ProjectorRun;
  // 2026-01-15T03:30Z is 2026-01-14 22:30 in New York (UTC−05:00 in January).
  const admittedAt = Date.UTC(2026, 0, 15, 3, 30);
  // 2026-01-16T04:00Z is 2026-01-15 23:00 in New York.
  const dischargedAt = Date.UTC(2026, 0, 16, 4, 0);

  beforeAll(async () => {
    run = await startProjectorRun('tzdays', ['analytics'], {
      analytics: { reportingTimeZone: 'America/New_York' },
    });
    await run.publishInOrder([
      admitted('P1', 'E1', 'inpatient', '4WEST', 'tz-a1', admittedAt),
      discharged('P1', 'E1', 'tz-d1', dischargedAt),
    ]);
    await run.caughtUp();
  });
  afterAll(async () => {
    await run?.cleanup();
  });

  const asAnalyst = (sql: string) =>
    run.ctx.db.transaction(async (trx) => {
      await trx.raw(`set local role ${ANALYST_ROLE}`);
      return (await trx.raw<{ rows: Row[] }>(sql)).rows;
    });
  const days = async () => {
    const s = run.stable.analytics;
    return {
      admissions: await asAnalyst(
        `select day::text, unit, admissions, time_zone from ${s}.v_daily_admissions order by 1`,
      ),
      discharges: await asAnalyst(`select day::text, discharges from ${s}.v_daily_discharges order by 1`),
      census: await asAnalyst(`select day::text, census from ${s}.v_daily_census order by 1`),
    };
  };

  /** Restarts the analytics projector on the same read model with another zone (no rebuild). */
  async function restartWith(zone: string): Promise<void> {
    await run.services.analytics.stop();
    const svc = buildAnalyticsProjector(
      {
        db: run.ctx.db,
        kafka: run.ctx.kafka,
        codec: run.ctx.codec,
        producer: run.ctx.producer,
        logger: run.ctx.logger,
        metrics: createMetrics({ defaultMetrics: false }),
      },
      {
        stableSchema: run.stable.analytics,
        dlqTopic: `hub.dlq.${run.ctx.id}`,
        topicFor: run.ctx.topic,
        groupPrefix: `hub.projection.${run.ctx.id}`,
        followEveryMs: 500,
        reportingTimeZone: zone,
      },
    );
    run.services.analytics = svc;
    await svc.start();
  }

  it('given America/New_York, when an admission at 03:30Z is counted, then it is on the local day before (2026-01-14)', async () => {
    expect(await days()).toEqual({
      admissions: [{ day: '2026-01-14', unit: '4WEST', admissions: 1, time_zone: 'America/New_York' }],
      discharges: [{ day: '2026-01-15', discharges: 1 }],
      // In house at local midnight ending the 14th (05:00Z on the 15th), gone before the next.
      census: [{ day: '2026-01-14', census: 1 }],
    });
    // The zone is shown by the documented views; the settings table itself is not the analyst's.
    await expect(asAnalyst(`select * from ${run.stable.analytics}.settings`)).rejects.toMatchObject({
      code: '42501',
    });
  });

  it('given a rebuild, then the new version keeps the zone the live projector wrote', async () => {
    const before = run.schemaOf('analytics');
    const result = await rebuildReadModel({
      db: run.ctx.db,
      kafka: run.ctx.kafka,
      codec: run.ctx.codec,
      producer: run.ctx.producer,
      logger: run.ctx.logger,
      projection: analyticsProjection(run.topics),
      stable: run.stable.analytics,
      dlqTopic: `hub.dlq.${run.ctx.id}`,
      hooks: ANALYTICS_VERSION_HOOKS,
      pollMs: 200,
    });
    expect(result.to).not.toBe(before);
    await eventually(() => Promise.resolve(run.schemaOf('analytics') === result.to ? true : undefined), {
      timeoutMs: 30_000,
      what: 'live projector followed the rebuild',
    });
    expect((await days()).admissions).toEqual([
      { day: '2026-01-14', unit: '4WEST', admissions: 1, time_zone: 'America/New_York' },
    ]);
  });

  it('given a restart with UTC, then the same facts are counted on UTC days, without a rebuild', async () => {
    const before = run.schemaOf('analytics');
    await restartWith('UTC');
    expect(run.schemaOf('analytics')).toBe(before);
    expect(await days()).toEqual({
      admissions: [{ day: '2026-01-15', unit: '4WEST', admissions: 1, time_zone: 'UTC' }],
      discharges: [{ day: '2026-01-16', discharges: 1 }],
      census: [{ day: '2026-01-15', census: 1 }],
    });
  });

  it('given a zone Postgres does not know, when started, then it is refused naming the setting', async () => {
    await expect(restartWith('Mars/Olympus_Mons')).rejects.toMatchObject({
      code: 'HUB_CONFIG_INVALID',
      message: expect.stringContaining('defaultTimeZone') as unknown,
    });
    // Put a serving projector back for cleanup.
    await restartWith('UTC');
  });
});
