import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, eventually, uniqueId, type TestContext } from '../../test/support/harness.js';
import { patientRegistered } from '../../test/support/fixtures.js';
import { HubError } from '../errors/index.js';
import { consumerGroupLag, endOffsets, ensureTopics } from './admin.js';
import {
  createConsumerRunner,
  type ConsumerRunner,
  type DeadLetter,
  type DecodedRecord,
  type PartitionBatch,
} from './consumer.js';

/** Producer, codec and consumer runner against the real broker and registry. */
describe('consumer runner', () => {
  let ctx: TestContext;
  let dlq: string;

  beforeAll(async () => {
    ctx = await createTestContext('consumer');
    dlq = `hub.dlq.${ctx.id}`;
    ctx.extraTopics.push(dlq);
    await ensureTopics(ctx.kafka, [{ name: dlq, partitions: 1, replicationFactor: 1, retentionMs: -1 }]);
  });
  afterAll(async () => {
    await ctx.cleanup();
  });

  /** What every runner here shares: the test's servers and DLQ, a fresh group on `topic`. */
  function runnerBasics(topic: string) {
    return {
      kafka: ctx.kafka,
      codec: ctx.codec,
      producer: ctx.producer,
      groupId: uniqueId('g'),
      topics: [topic],
      dlqTopic: dlq,
      logger: ctx.logger,
    };
  }

  async function readDlq(count: number) {
    const got: { headers: Record<string, string>; value: Buffer | null; key: string | null }[] = [];
    const c = ctx.kafka.consumer({ groupId: uniqueId('dlq-reader') });
    await c.connect();
    await c.subscribe({ topic: dlq, fromBeginning: true });
    await new Promise<void>((resolve) => {
      void c.run({
        eachMessage: ({ message }) => {
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
          got.push({ headers, value: message.value, key: message.key?.toString() ?? null });
          if (got.length >= count) resolve();
          return Promise.resolve();
        },
      });
    });
    await c.disconnect();
    return got;
  }

  it('delivers events in order per patient, dead-letters undecodable records with a reason, and keeps going', async () => {
    const topic = ctx.topicFor('PatientRegistered');
    await ctx.producer.publish([patientRegistered('PA', 'One', 'c1'), patientRegistered('PA', 'Two', 'c2')]);
    // Not Avro in the Confluent wire format: a producer that bypassed the hub.
    await ctx.producer.publishRaw([{ topic, key: 'PA', value: Buffer.from('{"not":"avro"}') }]);
    await ctx.producer.publish([patientRegistered('PA', 'Three', 'c3')]);

    const seen: DecodedRecord[] = [];
    const dead: DeadLetter[] = [];
    let done!: () => void;
    const allSeen = new Promise<void>((r) => (done = r));
    const runner = createConsumerRunner({
      ...runnerBasics(topic),
      handle: (b) => {
        seen.push(...b.records);
        if (seen.length >= 3) done();
        return Promise.resolve();
      },
      onDeadLetter: (d) => dead.push(d),
    });
    await runner.start();
    await allSeen;
    await runner.stop();

    const families = seen.map((r) =>
      r.event.type === 'PatientRegistered' ? r.event.data.demographics.names[0]?.family : '',
    );
    expect(families).toEqual(['One', 'Two', 'Three']);
    expect(dead).toHaveLength(1);
    expect(dead[0]?.reasonCode).toBe('HUB_EVENT_UNDECODABLE');
    const [parked] = await readDlq(1);
    expect(parked?.value?.toString()).toBe('{"not":"avro"}');
    expect(parked?.key).toBe('PA');
    expect(parked?.headers['hub-dlq-reason-code']).toBe('HUB_EVENT_UNDECODABLE');
    expect(parked?.headers['hub-dlq-source-topic']).toBe(topic);
  });

  it('isolates a poison event that the handler rejects: the rest of the batch is handled, the culprit parked', async () => {
    const topic = ctx.topicFor('PatientRegistered');
    // Same patient, so the three land in one partition and one batch.
    await ctx.producer.publish([
      patientRegistered('PB', 'Good1', 'p1'),
      patientRegistered('PB', 'Poison', 'p2'),
      patientRegistered('PB', 'Good2', 'p3'),
    ]);
    const handled: string[] = [];
    const checkpoints: bigint[] = [];
    const dead: DeadLetter[] = [];
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    const runner = createConsumerRunner({
      ...runnerBasics(topic),
      handle: (b) => {
        const recs = b.records.filter((r) => r.key === 'PB');
        const names = recs.map((r) =>
          r.event.type === 'PatientRegistered' ? (r.event.data.demographics.names[0]?.family ?? '') : '',
        );
        if (names.includes('Poison')) {
          return Promise.reject(new HubError('HUB_PROJECTION_FAILED', 'cannot apply this event'));
        }
        handled.push(...names);
        checkpoints.push(b.lastOffset);
        if (handled.includes('Good2')) done();
        return Promise.resolve();
      },
      onDeadLetter: (d) => dead.push(d),
    });
    await runner.start();
    await finished;
    await runner.stop();
    expect(handled).toEqual(expect.arrayContaining(['Good1', 'Good2']));
    expect(handled).not.toContain('Poison');
    // (The first test's undecodable record is on this topic too and is parked again for this group.)
    const poisoned = dead.filter((d) => d.reasonCode === 'HUB_PROJECTION_FAILED');
    expect(poisoned).toHaveLength(1);
    // The checkpoint still moves past the parked record.
    expect(checkpoints.at(-1)).toBeGreaterThan(BigInt(poisoned[0]!.offset));
  });
  it('hands the partitions of one fetch to handleGroup together; a failed group is handled batch by batch, so only the poison is parked', async () => {
    const topic = ctx.topicFor('PatientRegistered');
    // Twelve patients: their keys spread over the topic's partitions.
    const ids = Array.from({ length: 12 }, (_, i) => `PG${i}`);
    await ctx.producer.publish([
      ...ids.map((id) => patientRegistered(id, 'Good', `g-${id}`)),
      patientRegistered('PG0', 'Poison', 'g-poison'),
    ]);
    const family = (r: DecodedRecord) =>
      r.event.type === 'PatientRegistered' ? (r.event.data.demographics.names[0]?.family ?? '') : '';
    const groups: number[][] = [];
    const applied = new Map<string, string[]>();
    const dead: DeadLetter[] = [];
    let inHandler = 0;
    let overlapped = false;
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    const check = () => {
      if (ids.every((id) => applied.has(id)) && dead.some((d) => d.reasonCode === 'HUB_PROJECTION_FAILED'))
        done();
    };
    // All or nothing, like a transaction: a group with the poison applies none of its records.
    const apply = async (batches: PartitionBatch[]) => {
      overlapped ||= inHandler > 0;
      inHandler++;
      try {
        await new Promise((r) => setImmediate(r));
        const ours = batches.flatMap((b) => b.records.filter((r) => r.key?.startsWith('PG')));
        if (ours.some((r) => family(r) === 'Poison')) {
          throw new HubError('HUB_PROJECTION_FAILED', 'cannot apply this event');
        }
        for (const r of ours) applied.set(r.key!, [...(applied.get(r.key!) ?? []), family(r)]);
        check();
      } finally {
        inHandler--;
      }
    };
    const runner = createConsumerRunner({
      ...runnerBasics(topic),
      handle: (b) => apply([b]),
      handleGroup: (batches) => {
        groups.push(batches.map((b) => b.partition));
        return apply(batches);
      },
      onDeadLetter: (d) => {
        dead.push(d);
        check();
      },
    });
    await runner.start();
    await finished;
    await runner.stop();
    expect(groups.some((g) => new Set(g).size > 1)).toBe(true);
    // Nothing of the failed group is lost or applied twice: each good event exactly once.
    for (const id of ids) expect(applied.get(id)).toEqual(['Good']);
    expect(dead.filter((d) => d.reasonCode === 'HUB_PROJECTION_FAILED')).toHaveLength(1);
    expect(overlapped).toBe(false);
  });

  /** A runner that takes every record and reports (as `caughtUp`) when it has applied `topic` to its end offsets. */
  function applyingRunner(topic: string, extra: Partial<Parameters<typeof createConsumerRunner>[0]> = {}) {
    const basics = runnerBasics(topic);
    const applied = new Map<number, bigint>();
    let check: (() => void) | null = null;
    const runner: ConsumerRunner = createConsumerRunner({
      ...basics,
      handle: (b) => {
        applied.set(b.partition, b.lastOffset + 1n);
        check?.();
        return Promise.resolve();
      },
      ...extra,
    });
    /** Resolves once every partition of `topic` with records is applied to its end. */
    const caughtUp = async () => {
      const ends = [...(await endOffsets(ctx.kafka, topic))].filter(([, end]) => end > 0n);
      const done = () => ends.every(([p, end]) => (applied.get(p) ?? 0n) >= end);
      if (done()) return ends;
      await new Promise<void>((resolve) => {
        check = () => {
          if (done()) resolve();
        };
      });
      check = null;
      return ends;
    };
    return { runner, groupId: basics.groupId, caughtUp };
  }

  async function groupOffsets(groupId: string, topic: string): Promise<Map<number, string>> {
    const admin = ctx.kafka.admin();
    await admin.connect();
    try {
      const [t] = await admin.fetchOffsets({ groupId, topics: [topic] });
      return new Map((t?.partitions ?? []).map((p) => [p.partition, p.offset]));
    } finally {
      await admin.disconnect();
    }
  }

  async function describeGroup(groupId: string) {
    const admin = ctx.kafka.admin();
    await admin.connect();
    try {
      const { groups } = await admin.describeGroups([groupId]);
      return groups[0]!;
    } finally {
      await admin.disconnect();
    }
  }

  it('regression: projector offsets are visible to standard consumer-group tools', async () => {
    // Given events on a topic and a runner that applies them (its own store: the handler)
    const topic = ctx.topicFor('PatientRegistered');
    await ctx.producer.publish(
      Array.from({ length: 12 }, (_, i) => patientRegistered(`PV${i}`, 'Visible', `v-${i}`)),
    );
    const { runner, groupId, caughtUp } = applyingRunner(topic);
    await runner.start();
    try {
      // When it has applied everything
      const ends = await caughtUp();
      expect(ends.length).toBeGreaterThan(1);

      // Then the group's committed offsets (what kafka-consumer-groups reads) reach the end offsets, without a stop
      const expected = new Map(ends.map(([p, end]) => [p, end.toString()]));
      await eventually(
        async () => {
          const committed = await groupOffsets(groupId, topic);
          return ends.every(([p]) => committed.get(p) === expected.get(p)) ? true : undefined;
        },
        { timeoutMs: 5_000, intervalMs: 100, what: 'committed offsets at the end offsets' },
      );
      // ... and the lag that `hub status` shows is 0
      const lags = (await consumerGroupLag(ctx.kafka, [topic], { groupFilter: (g) => g === groupId })).filter(
        (l) => l.end > 0n,
      );
      expect(lags).toHaveLength(ends.length);
      for (const l of lags) expect(l.lag).toBe(0n);
    } finally {
      await runner.stop();
    }
  });

  it('a clean stop commits what was applied since the last commit, then leaves the group', async () => {
    // Given a runner that commits at most once a minute (only its first commit goes out before the stop)
    const topic = ctx.topicFor('PatientRegistered');
    const { runner, groupId, caughtUp } = applyingRunner(topic, { groupCommitIntervalMs: 60_000 });
    await runner.start();
    await caughtUp();
    await ctx.producer.publish(
      Array.from({ length: 12 }, (_, i) => patientRegistered(`PS${i}`, 'Stopped', `s-${i}`)),
    );
    const ends = await caughtUp();

    // When it stops
    await runner.stop();

    // Then the group holds the last applied offsets and has no member left
    const committed = await groupOffsets(groupId, topic);
    for (const [p, end] of ends) expect(committed.get(p)).toBe(end.toString());
    expect((await describeGroup(groupId)).members).toHaveLength(0);
  });

  it('commits nothing to the group when told not to (a throw-away group)', async () => {
    const topic = ctx.topicFor('PatientRegistered');
    const { runner, groupId, caughtUp } = applyingRunner(topic, { commitGroupOffsets: false });
    await runner.start();
    await caughtUp();
    await runner.stop();
    expect([...(await groupOffsets(groupId, topic)).values()].every((o) => o === '-1')).toBe(true);
  });

  it('regression: a batch that takes longer than the session timeout keeps its member in the group', async () => {
    // Given a runner whose first batch takes longer than the session (a large transaction)
    const topic = ctx.topicFor('PatientRegistered');
    const sessionTimeoutMs = 6_000;
    let calls = 0;
    let entered!: () => void;
    const inHandler = new Promise<void>((r) => (entered = r));
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let finished!: () => void;
    const firstDone = new Promise<void>((r) => (finished = r));
    const basics = runnerBasics(topic);
    const runner = createConsumerRunner({
      ...basics,
      sessionTimeoutMs,
      handle: async () => {
        calls++;
        if (calls === 1) {
          entered();
          await released;
          finished();
        }
      },
    });
    await runner.start();
    try {
      await inHandler;
      const before = await eventually(
        async () => {
          const g = await describeGroup(basics.groupId);
          return g.state === 'Stable' && g.members.length === 1 ? g.members[0]!.memberId : undefined;
        },
        { what: 'a stable group with one member' },
      );
      // When the batch runs for longer than the session timeout
      const timer = setTimeout(release, sessionTimeoutMs + 2_000);
      await firstDone;
      clearTimeout(timer);

      // Then the broker did not drop the member: still the same one, and nothing was handed out twice
      const after = await describeGroup(basics.groupId);
      expect(after.state).toBe('Stable');
      expect(after.members.map((m) => m.memberId)).toEqual([before]);
    } finally {
      await runner.stop();
    }
  }, 30_000);
});
