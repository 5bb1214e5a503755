import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stackConfig } from '../libs/stack/index.js';
import { consumerGroupLag, endOffsets, ensureTopics } from '../libs/kafka/admin.js';
import { lagOf } from '../libs/projections/inspect.js';
import { clinicalTopics } from '../libs/projections/topics.js';
import { dropReadModel, readRegistry } from '../libs/projections/versions.js';
import { BACKGROUND_NICE } from '../libs/service/runtime.js';
import { patientRegistered } from './support/fixtures.js';
import { createTestContext, eventually, type TestContext } from './support/harness.js';
import { freePort, startProcess, type RunningProcess } from './support/processes.js';

/** The session timeout the consumer used before (30 s): a restart had to wait it out. */
const OLD_SESSION_TIMEOUT_MS = 30_000;
/** What a restart after SIGKILL may take at most, start-up of the new process included. */
const RESTART_BOUND_MS = 15_000;

/**
 * A projector process (projector-portal, started from its main.ts as a
 * supervisor would) restarted under the SAME consumer group, as it is in
 * production: how soon it serves again after SIGKILL and after SIGTERM, and
 * whether its Postgres-checkpointed offsets show up where Kafka's own tools
 * and `hub status` look for them (the group's committed offsets).
 */
describe('projector restarts under the same consumer group', () => {
  let ctx: TestContext;
  let topics: string[];
  let stable: string;
  let groupPrefix: string;
  let proc: RunningProcess | null = null;
  let port = 0;
  let seq = 0;
  const dlq = () => `hub.dlq.restart.${ctx.id}`;

  beforeAll(async () => {
    ctx = await createTestContext('restart');
    topics = clinicalTopics(ctx.topic);
    stable = `${ctx.schema}_portal`;
    groupPrefix = `hub.restart.${ctx.id}`;
    ctx.extraTopics.push(dlq());
    await ensureTopics(ctx.kafka, [{ name: dlq(), partitions: 1, replicationFactor: 1, retentionMs: -1 }]);
  });
  afterAll(async () => {
    await proc?.stop('SIGKILL');
    await dropReadModel(ctx.db, stable).catch(() => undefined);
    await ctx.cleanup();
  });

  async function start(): Promise<RunningProcess> {
    port = await freePort();
    proc = startProcess(['services/projector-portal/main.ts'], {
      KAFKA_BROKERS: ctx.ep.kafkaBrokers.join(','),
      SCHEMA_REGISTRY_URL: ctx.ep.registryUrl,
      DATABASE_URL: ctx.ep.databaseUrl,
      HUB_TOPIC_SUFFIX: ctx.id,
      PROJECTION_SCHEMA: stable,
      DLQ_TOPIC: dlq(),
      // The same group on every start: what a restarted deployment does.
      CONSUMER_GROUP_PREFIX: groupPrefix,
      HTTP_PORT: String(port),
      LOG_LEVEL: 'warn',
      NODE_HEAP_GROWING_PERCENT: '50',
    });
    return proc;
  }

  async function ready(what: string): Promise<void> {
    await eventually(
      async () => ((await fetch(`http://127.0.0.1:${port}/ready`).catch(() => null))?.ok ? true : undefined),
      { timeoutMs: 60_000, intervalMs: 50, what },
    );
  }

  async function activeSchema(): Promise<string> {
    return eventually(async () => (await readRegistry(ctx.db, stable))?.active_schema, {
      what: 'portal registry row',
    });
  }

  /** Publishes `n` new registrations (spread over the partitions) and returns when they are in Kafka. */
  async function publish(n: number): Promise<void> {
    await ctx.producer.publish(
      Array.from({ length: n }, () => {
        seq++;
        return patientRegistered(`PR${seq}`, `Family${seq}`, `restart-${seq}`);
      }),
    );
  }

  /** Resolves once the projector's Postgres checkpoints reach the end of every topic. */
  async function applied(what: string): Promise<void> {
    const schema = await activeSchema();
    await eventually(
      async () => ((await lagOf(ctx.db, ctx.kafka, schema, topics)).lag === 0n ? true : undefined),
      { timeoutMs: 60_000, intervalMs: 50, what },
    );
  }

  /** Time from `t0` until the new process answers /ready with 200, and until it applied the new event (awaited side by side). */
  async function resumed(t0: number, after: string): Promise<{ readyMs: number; appliedMs: number }> {
    const [readyMs, appliedMs] = await Promise.all([
      ready(`ready after ${after}`).then(() => performance.now() - t0),
      applied(`new event applied after ${after}`).then(() => performance.now() - t0),
    ]);
    return { readyMs, appliedMs };
  }

  async function groupId(): Promise<string> {
    return `${groupPrefix}.portal.${await activeSchema()}`;
  }

  /** The group's committed offsets where a topic has records, next to the topic's end offsets. */
  async function committedVsEnd(group: string) {
    const admin = ctx.kafka.admin();
    await admin.connect();
    try {
      const rows: { topic: string; partition: number; committed: string; end: bigint }[] = [];
      for (const t of await admin.fetchOffsets({ groupId: group, topics })) {
        const ends = await endOffsets(ctx.kafka, t.topic);
        for (const p of t.partitions) {
          const end = ends.get(p.partition) ?? 0n;
          if (end > 0n) rows.push({ topic: t.topic, partition: p.partition, committed: p.offset, end });
        }
      }
      return rows;
    } finally {
      await admin.disconnect();
    }
  }

  const allCommitted = (rows: Awaited<ReturnType<typeof committedVsEnd>>) =>
    rows.length > 0 && rows.every((r) => r.committed === r.end.toString());

  it('regression: projector offsets are visible to standard consumer-group tools', async () => {
    // Given a projector that has applied events (checkpointed in Postgres)
    await start();
    await ready('first start ready');
    // (A projector started as a service yields the cores to the ingest adapters: CPU_NICE's default.)
    expect(getPriority(proc!.child.pid)).toBe(BACKGROUND_NICE);
    // (And it re-executed itself with its heap settings, NODE_HEAP_GROWING_PERCENT among them.)
    const args = readFileSync(`/proc/${proc!.child.pid}/cmdline`, 'utf8').split('\0');
    expect(args).toContain('--heap-growing-percent=50');
    expect(args.some((a) => a.startsWith('--max-old-space-size='))).toBe(true);
    await publish(40);
    await applied('40 events applied');
    const group = await groupId();

    // When it is idle, then its consumer group shows the applied offsets: committed = end, lag 0
    const rows = await eventually(
      async () => {
        const r = await committedVsEnd(group);
        return allCommitted(r) ? r : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 100, what: 'group offsets at the end offsets' },
    );
    expect(rows.length).toBeGreaterThan(1);
    // ... and so does the lag that `hub status` shows (consumerGroupLag)
    const lags = await consumerGroupLag(ctx.kafka, topics, { groupFilter: (g) => g === group });
    const withRecords = lags.filter((l) => l.end > 0n);
    expect(withRecords.length).toBe(rows.length);
    for (const l of withRecords) {
      expect(l.committed).toBe(l.end);
      expect(l.lag).toBe(0n);
    }

    // ... and Kafka's own kafka-consumer-groups tool, where the stack's jars are at hand
    const libs = stackConfig('test').kafka.libsDir;
    if (existsSync(libs)) {
      const r = spawnSync(
        'java',
        [
          '-cp',
          `${libs}/*`,
          'org.apache.kafka.tools.consumer.group.ConsumerGroupCommand',
          '--bootstrap-server',
          ctx.ep.kafkaBrokers.join(','),
          '--describe',
          '--group',
          group,
        ],
        { encoding: 'utf8', timeout: 60_000 },
      );
      if (r.status === 0) {
        process.stdout.write(`kafka-consumer-groups --describe --group ${group}:\n${r.stdout}\n`);
        const lines = r.stdout.split('\n').filter((l) => l.includes(ctx.id) && /\s\d+\s+\d+\s+\d+\s/.test(l));
        expect(lines.length).toBe(rows.length);
        // GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG ...
        for (const l of lines) {
          const [, , , current, end, lag] = l.trim().split(/\s+/);
          expect(current).toBe(end);
          expect(lag).toBe('0');
        }
      } else {
        process.stdout.write(
          `kafka-consumer-groups not run (${r.error?.message ?? r.stderr.slice(0, 200)})\n`,
        );
      }
    }
  });

  it(`regression: a projector killed with SIGKILL applies a new event within ${RESTART_BOUND_MS / 1000} s of the kill, not after the ${OLD_SESSION_TIMEOUT_MS / 1000} s session timeout`, async () => {
    // Given a running, caught-up projector
    expect(proc).not.toBeNull();
    await applied('caught up before the kill');

    // When it is killed with SIGKILL (its member does not leave the group) and started again at once
    const killedAt = performance.now();
    await proc!.stop('SIGKILL');
    await start();
    await publish(1);

    // Then the new process is ready and applies the new event within seconds
    const { readyMs, appliedMs } = await resumed(killedAt, 'SIGKILL');
    process.stdout.write(
      `SIGKILL -> restarted projector ready after ${Math.round(readyMs)} ms, new event applied after ${Math.round(appliedMs)} ms\n`,
    );
    expect(appliedMs).toBeLessThan(RESTART_BOUND_MS);
    expect(readyMs).toBeLessThan(RESTART_BOUND_MS);
  });

  it('a projector stopped with SIGTERM commits its offsets, leaves its group, and its restart serves at once', async () => {
    // Given a projector that has just applied events
    expect(proc).not.toBeNull();
    await publish(20);
    await applied('20 events applied before SIGTERM');
    const group = await groupId();

    // When it is stopped with SIGTERM
    const stoppedAt = performance.now();
    expect(await proc!.stop('SIGTERM')).toBe(0);
    const exitMs = performance.now() - stoppedAt;

    // Then by its exit the group holds every applied offset (the final commit) and has no member left
    const committedAtExit = allCommitted(await committedVsEnd(group));
    const admin = ctx.kafka.admin();
    await admin.connect();
    const described = await admin.describeGroups([group]).finally(() => admin.disconnect());
    const membersAtExit = described.groups[0]?.members.length;

    // ... and a restart applies a new event without waiting for any session to expire
    await start();
    await publish(1);
    const { readyMs, appliedMs } = await resumed(stoppedAt, 'SIGTERM');
    process.stdout.write(
      `SIGTERM -> exit after ${Math.round(exitMs)} ms, restarted projector ready after ${Math.round(readyMs)} ms, new event applied after ${Math.round(appliedMs)} ms\n`,
    );
    expect(committedAtExit).toBe(true);
    expect(membersAtExit).toBe(0);
    expect(appliedMs).toBeLessThan(RESTART_BOUND_MS);
    expect(readyMs).toBeLessThan(RESTART_BOUND_MS);
    expect(await proc!.stop('SIGTERM')).toBe(0);
    proc = null;
  });
});
