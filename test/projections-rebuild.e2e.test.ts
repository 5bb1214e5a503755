import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tableHashes } from '../libs/projections/inspect.js';
import { readRegistry } from '../libs/projections/versions.js';
import { ANALYST_ROLE } from '../libs/read-models/analytics/views.js';
import { eventually } from './support/harness.js';
import { hospitalDay, ordered, at } from './support/hospital-day.js';
import { startProcess } from './support/processes.js';
import { PROJECTORS, startProjectorRun, type ProjectorRun } from './support/projectors.js';

/**
 * `hub projections rebuild` as an operator runs it (its own process) while
 * the projectors keep serving: readers never see an error or an empty read
 * model, the rebuilt tables hash equal to the live ones, the live projector
 * follows the switch and keeps applying new events, the old version is gone.
 */
describe('hub projections rebuild: a new version from offset 0, switched without downtime', () => {
  let run: ProjectorRun;
  let env: Record<string, string>;

  beforeAll(async () => {
    run = await startProjectorRun('rebuild');
    await run.publishInOrder(hospitalDay(), 10);
    await run.caughtUp();
    env = {
      KAFKA_BROKERS: run.ctx.ep.kafkaBrokers.join(','),
      SCHEMA_REGISTRY_URL: run.ctx.ep.registryUrl,
      DATABASE_URL: run.ctx.ep.databaseUrl,
      HUB_TOPIC_SUFFIX: run.ctx.id,
    };
    run.ctx.extraTopics.push(...PROJECTORS.map((p) => `hub.dlq.projector-${p}.${run.ctx.id}`));
  });
  afterAll(async () => {
    await run?.cleanup();
  });

  async function hub(args: string[]): Promise<{ code: number | null; out: string }> {
    const p = startProcess(['cli/hub.ts', ...args], env);
    const code = await new Promise<number | null>((resolve) => p.child.once('exit', resolve));
    return { code, out: p.output() };
  }

  it.each(PROJECTORS)('rebuilds %s while it serves, with identical tables', async (p) => {
    const stable = run.stable[p];
    const before = run.schemaOf(p);
    if (p === 'billing')
      await run.ctx.db.raw(`update ${stable}.chargemaster set price_cents = 1234 where code = '3016-3'`);
    const liveHashes = await tableHashes(run.ctx.db, before);
    const probe = p === 'portal' ? 'patient_record' : p === 'billing' ? 'charges' : 'v_events_per_source_day';

    // Readers keep reading through the stable schema during the whole rebuild.
    let reading = true;
    let reads = 0;
    const failures: string[] = [];
    const reader = (async () => {
      while (reading) {
        try {
          const r = await run.ctx.db.raw<{ rows: { n: number }[] }>(
            `select count(*)::int as n from ${stable}.${probe}`,
          );
          if ((r.rows[0]?.n ?? 0) === 0) failures.push('empty');
          reads++;
        } catch (err) {
          failures.push((err as Error).message);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const res = await hub(['--json', 'projections', 'rebuild', p, '--schema', stable]);
    reading = false;
    await reader;
    expect(res.code, res.out).toBe(0);
    expect(failures).toEqual([]);
    expect(reads).toBeGreaterThan(5);

    const row = await readRegistry(run.ctx.db, stable);
    expect(row?.active_schema).not.toBe(before);
    await eventually(
      () => Promise.resolve(run.services[p].activeSchema() === row?.active_schema ? true : undefined),
      {
        what: `${p} projector follows the switch`,
      },
    );
    expect(await tableHashes(run.ctx.db, row!.active_schema)).toEqual(liveHashes);
    const old = await run.ctx.db.raw<{ rows: unknown[] }>(`select 1 from pg_namespace where nspname = ?`, [
      before,
    ]);
    expect(old.rows).toHaveLength(0);
    const result = JSON.parse(res.out.slice(res.out.indexOf('{\n'))) as { to: string; droppedOld: boolean };
    expect(result).toMatchObject({ to: row?.active_schema, droppedOld: true });
  });

  it('after the switches the projectors keep applying new events to the new versions', async () => {
    await run.ctx.producer.publish([ordered('P2', 'O-NEW', 'E2', 'tsh', 'routine', 'orm-new', at(18))]);
    await run.caughtUp();
    const charges = await run.ctx.db.raw<{ rows: { status: string; price_cents: number }[] }>(
      `select status, price_cents from ${run.stable.billing}.charges where line_id = 'O-NEW'`,
    );
    // The chargemaster edit made before the rebuild survived it.
    expect(charges.rows).toEqual([{ status: 'pending', price_cents: 1234 }]);
    const n = await run.ctx.db.transaction(async (trx) => {
      await trx.raw(`set local role ${ANALYST_ROLE}`);
      return (
        await trx.raw<{ rows: { n: number }[] }>(
          `select count(*)::int as n from ${run.stable.analytics}.v_daily_census`,
        )
      ).rows;
    });
    expect(n[0]?.n).toBeGreaterThan(0);
  });

  it('hub projections status lists each read model with its version, the projector serving it and zero lag', async () => {
    const res = await hub(['--json', 'projections', 'status', ...PROJECTORS.map((p) => run.stable[p])]);
    expect(res.code, res.out).toBe(0);
    const rows = JSON.parse(res.out.slice(res.out.indexOf('[\n'))) as Record<string, unknown>[];
    for (const p of PROJECTORS) {
      expect(rows.find((r) => r['readModel'] === run.stable[p])).toMatchObject({
        active: run.schemaOf(p),
        serving: run.schemaOf(p),
        lag: 0,
      });
    }
  });
});
