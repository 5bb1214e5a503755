import { execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completeEvent } from '../cli/publish.js';
import { createDb, type Knex } from '../libs/db/index.js';
import type { ClinicalEvent } from '../libs/events/index.js';
import { scanTopic } from '../libs/kafka/scan.js';
import { createTestContext, eventually, type TestContext } from './support/harness.js';
import { isRoot, pgBin, runPg } from './support/private-postgres.js';
import { freePort, startProcess, type RunningProcess } from './support/processes.js';

/**
 * Postgres stopped under load, with a PRIVATE Postgres (initdb + pg_ctl on a
 * free port in a temp dir) — never the shared server. The patient-directory
 * projector pauses, reports not-ready, resumes when Postgres is back and
 * drains the lag: every event applied exactly once, nothing dead-lettered.
 */
const bin = pgBin();

function pg(cmd: string, args: string[]): void {
  runPg(bin ?? '', cmd, args);
}

function patientEvent(i: number): ClinicalEvent {
  return completeEvent(
    {
      type: 'PatientRegistered',
      data: {
        meta: { occurredAt: 1, source: { system: 'PGSTOP', messageId: `m-${i}` } },
        patientId: `PG-${i}`,
        demographics: { identifiers: [] },
      },
    },
    i,
    1,
  );
}

describe.skipIf(!bin)('ops: Postgres stopped under load (private instance)', () => {
  let ctx: TestContext;
  let dir: string;
  let port: number;
  let db: Knex;
  let svc: RunningProcess | undefined;
  let httpPort: number;
  const dlq = () => `hub.dlq.patient-directory.${ctx.id}`;

  const start = () =>
    pg('pg_ctl', [
      '-D',
      join(dir, 'data'),
      '-l',
      join(dir, 'log'),
      '-o',
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`,
      '-w',
      'start',
    ]);
  const stop = () => pg('pg_ctl', ['-D', join(dir, 'data'), '-m', 'fast', '-w', 'stop']);

  beforeAll(async () => {
    ctx = await createTestContext('opspg');
    ctx.extraTopics.push(`hub.dlq.patient-directory.${ctx.id}`);
    dir = mkdtempSync(join(tmpdir(), 'hub-pgstop-'));
    if (isRoot) chownSync(dir, Number(execFileSync('id', ['-u', 'postgres']).toString().trim()), -1);
    port = await freePort();
    httpPort = await freePort();
    pg('initdb', ['-D', join(dir, 'data'), '-A', 'trust', '-U', 'postgres', '--no-sync']);
    start();
    db = createDb(`postgres://postgres@127.0.0.1:${port}/postgres`);
  });
  afterAll(async () => {
    if (svc) await svc.stop('SIGKILL');
    await db?.destroy();
    try {
      stop();
    } catch {
      // already stopped
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
    await ctx?.cleanup();
  });

  const ready = async (): Promise<number> => {
    try {
      return (await fetch(`http://127.0.0.1:${httpPort}/ready`)).status;
    } catch {
      return 0;
    }
  };

  it('pauses, goes not-ready, resumes and drains with nothing lost or duplicated', async () => {
    svc = startProcess(['services/patient-directory/main.ts'], {
      KAFKA_BROKERS: ctx.ep.kafkaBrokers.join(','),
      SCHEMA_REGISTRY_URL: ctx.ep.registryUrl,
      DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/postgres`,
      HUB_TOPIC_SUFFIX: ctx.id,
      PROJECTION_SCHEMA: 'pgstop',
      HTTP_PORT: String(httpPort),
      LOG_LEVEL: 'warn',
    });
    await eventually(async () => ((await ready()) === 200 ? true : undefined), {
      what: 'service ready',
      timeoutMs: 60_000,
    });

    const N = 3000;
    const events = Array.from({ length: N }, (_, i) => patientEvent(i));
    const scalar = async (sql: string): Promise<number> =>
      Number((await db.raw<{ rows: { n: string | number }[] }>(sql)).rows[0]!.n);
    const count = () => scalar('select count(*) as n from pgstop.patients');

    // Load: a third before, a third while Postgres is down, a third after.
    for (let i = 0; i < 1000; i += 100) await ctx.producer.publish(events.slice(i, i + 100));
    await eventually(async () => ((await count()) > 0 ? true : undefined), { what: 'first rows' });
    stop();
    const downAt = Date.now();
    for (let i = 1000; i < 2000; i += 100) await ctx.producer.publish(events.slice(i, i + 100));
    await eventually(async () => ((await ready()) === 503 ? true : undefined), {
      what: 'not-ready while Postgres is down',
      timeoutMs: 20_000,
    });
    const notReadyAfterMs = Date.now() - downAt;
    // Stay down a while, with the projector retrying.
    await new Promise((r) => setTimeout(r, 5_000));
    expect(svc.child.exitCode).toBeNull();
    start();
    const upAt = Date.now();
    for (let i = 2000; i < N; i += 100) await ctx.producer.publish(events.slice(i, i + 100));
    // A resend of already-applied messages must not double anything.
    await ctx.producer.publish(events.slice(0, 200));

    await eventually(async () => ((await count()) === N ? true : undefined), {
      what: `all ${N} patients projected`,
      timeoutMs: 120_000,
      intervalMs: 250,
    });
    const drainedMs = Date.now() - upAt;
    await eventually(async () => ((await ready()) === 200 ? true : undefined), { what: 'ready again' });
    // The runner's bookkeeping is private to the version schema (readers see views of the rest).
    expect(await scalar('select count(*) as n from pgstop_v1.applied_events')).toBe(N);
    expect(await scalar('select max(version) as n from pgstop.patients')).toBe(1);
    expect(await scanTopic(ctx.kafka, dlq())).toHaveLength(0);
    process.stderr.write(
      `[ops-pgstop] not-ready ${notReadyAfterMs} ms after stop; drained ${N} events ${drainedMs} ms after restart\n`,
    );
  }, 240_000);
});
