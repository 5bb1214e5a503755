import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HubError } from '../../libs/errors/index.js';
import type { ClinicalEvent } from '../../libs/events/index.js';
import {
  awaitCommand,
  explainPatient,
  listReview,
  pairKeyOf,
  requestDecision,
} from '../../libs/identity/store.js';
import type { EventProducer } from '../../libs/kafka/producer.js';
import { patientsMerged } from '../../test/support/fixtures.js';
import { createTestContext, eventually, uniqueId, type TestContext } from '../../test/support/harness.js';
import {
  IDENTITY_TEST_WEIGHTS,
  identityEvents,
  registration,
  startIdentityMatcherInProcess,
  type Person,
} from '../../test/support/identity.js';
import type { IdentityMatcherService } from './app.js';

/** A made-up person; the variants below are how a second facility got them wrong. */
const jonathan: Person = {
  given: 'Jonathan',
  family: 'Whitfield',
  birthDate: '1984-03-12',
  sex: 'male',
  line: '12 Elm Street',
  postalCode: '62704',
  phone: '217-555-0142',
};
/** First name typo'd, a new street, no phone: 22 under the test weights (review). */
const typoOf = (p: Person): Person => ({ ...p, given: 'Jonathon', line: '9 Oak Avenue', phone: null });

/** Each test its own person (the tests share a log, and one person's records would match across tests). */
const FAMILIES = ['Whitfield', 'Abernathy', 'Castellano', 'Dunmore', 'Ellsworth', 'Fairbanks'];
const personNo = (n: number): Person => ({
  ...jonathan,
  family: FAMILIES[n] ?? 'Whitfield',
  birthDate: `19${60 + n}-0${n + 1}-1${n}`,
  phone: `217-555-01${40 + n}`,
});
/** Someone else entirely (never near the thresholds). */
const stranger: Person = {
  given: 'Beatrix',
  family: 'Okonkwo',
  birthDate: '1951-07-30',
  sex: 'female',
  line: '3 Birch Lane',
  postalCode: '10001',
  phone: null,
};

type IdentityEvent = Extract<
  ClinicalEvent,
  { type: 'PatientLinkProposed' | 'PatientsLinked' | 'PatientsUnlinked' | 'PatientLinkRejected' }
>;

function ofPair(events: ClinicalEvent[], a: string, b: string): IdentityEvent[] {
  const { lo, hi } = pairKeyOf(a, b);
  return events.filter(
    (e): e is IdentityEvent =>
      (e.type === 'PatientLinkProposed' ||
        e.type === 'PatientsLinked' ||
        e.type === 'PatientsUnlinked' ||
        e.type === 'PatientLinkRejected') &&
      e.data.patientId === lo &&
      e.data.otherPatientId === hi,
  );
}

/** The pair's decisions as the matcher stored them (committed only after their events were acknowledged). */
async function decisionTypes(ctx: TestContext, a: string, b: string): Promise<string[]> {
  const rows = await ctx.db
    .withSchema(ctx.schema)
    .from('decisions')
    .where({ pair_key: pairKeyOf(a, b).pairKey })
    .orderBy([{ column: 'decided_at' }, { column: 'event_id' }])
    .select<{ type: string }[]>('type');
  return rows.map((r) => r.type);
}

const hasDecisions = (ctx: TestContext, a: string, b: string, n: number) => async () => {
  const t = await decisionTypes(ctx, a, b);
  return t.length >= n ? t : undefined;
};

/** Resolves once the matcher has stored the record as of `line` (the record and its decisions commit together). */
const recordAt = (ctx: TestContext, id: string, line: string) => async () => {
  const e = await explainPatient(ctx.db, ctx.schema, id);
  return e?.display.address?.lines[0] === line ? e : undefined;
};

describe('identity-matcher: patient events in, link decisions out (issue 21)', () => {
  let ctx: TestContext;
  let svc: IdentityMatcherService;
  const ids = (tag: string) => [`P-${tag}-1`, `P-${tag}-2`] as const;

  beforeAll(async () => {
    ctx = await createTestContext('identity');
    svc = await startIdentityMatcherInProcess(ctx);
  }, 120_000);

  afterAll(async () => {
    await svc?.stop();
    await ctx?.cleanup();
  });

  it('given two registrations of one person by two facilities with a typo in the first name, then a PatientLinkProposed with evidence and the weights version, on the worklist', async () => {
    const person = personNo(0);
    const [a, b] = ids(uniqueId('typo'));
    await ctx.producer.publish([
      registration(a, person, 'NORTH', `${a}-reg`),
      registration(b, typoOf(person), 'SOUTH', `${b}-reg`),
      registration(`${b}-x`, stranger, 'SOUTH', `${b}-x-reg`),
    ]);
    expect(await eventually(hasDecisions(ctx, a, b, 1), { what: 'a decision on the pair' })).toEqual([
      'PatientLinkProposed',
    ]);

    const [proposed, ...more] = ofPair(await identityEvents(ctx), a, b);
    expect(more).toEqual([]);
    if (proposed?.type !== 'PatientLinkProposed') throw new Error('expected a PatientLinkProposed');
    expect(proposed.data.weightsVersion).toBe(IDENTITY_TEST_WEIGHTS.version);
    expect(proposed.data.decidedBy).toBe('identity-matcher');
    expect(proposed.data.score).toBeGreaterThanOrEqual(IDENTITY_TEST_WEIGHTS.lower);
    expect(proposed.data.score).toBeLessThan(IDENTITY_TEST_WEIGHTS.upper);
    expect(proposed.data.evidence).toContainEqual(
      expect.objectContaining({ field: 'given', level: 'jw-high' }),
    );
    expect(proposed.data.evidence).toContainEqual(
      expect.objectContaining({ field: 'birthDate', level: 'exact' }),
    );
    // Evidence names levels and weights, never a value.
    expect(JSON.stringify(proposed.data.evidence)).not.toMatch(
      new RegExp(`Jonath|${person.family}|${person.birthDate}|Elm|Oak`),
    );

    const review = await listReview(ctx.db, ctx.schema, { limit: 100 });
    const item = review.find((r) => r.pair.pairKey === pairKeyOf(a, b).pairKey);
    expect(item?.pair.state).toBe('proposed');
    expect(item?.record.names[0]?.given[0]).toBe(a < b ? 'Jonathan' : 'Jonathon');
    expect(review.some((r) => r.pair.patientId.includes('-x') || r.pair.otherPatientId.includes('-x'))).toBe(
      false,
    );
  });

  it('given a near-exact duplicate by a second facility, then PatientsLinked by the matcher', async () => {
    const person = personNo(1);
    const [a, b] = ids(uniqueId('dup'));
    await ctx.producer.publish([
      registration(a, person, 'NORTH', `${a}-reg`),
      registration(b, person, 'SOUTH', `${b}-reg`),
    ]);
    expect(await eventually(hasDecisions(ctx, a, b, 1), { what: 'an auto-link' })).toEqual([
      'PatientsLinked',
    ]);
    const [linked] = ofPair(await identityEvents(ctx), a, b);
    if (linked?.type !== 'PatientsLinked') throw new Error('expected PatientsLinked');
    expect(linked.data.decidedBy).toBe('identity-matcher');
    expect(linked.data.score).toBeGreaterThanOrEqual(IDENTITY_TEST_WEIGHTS.upper);
    expect(linked.data.rules).toEqual([]);
  });

  it('given a proposal, when a steward links it and later unlinks it, then PatientsLinked and PatientsUnlinked by the steward, and the matcher never re-decides the pair', async () => {
    const person = personNo(2);
    const [a, b] = ids(uniqueId('steward'));
    await ctx.producer.publish([
      registration(a, person, 'NORTH', `${a}-reg`),
      registration(b, typoOf(person), 'SOUTH', `${b}-reg`),
    ]);
    await eventually(hasDecisions(ctx, a, b, 1), { what: 'the proposal' });

    const link = await requestDecision(ctx.db, ctx.schema, {
      kind: 'link',
      patientId: b,
      otherPatientId: a,
      decidedBy: 'steward-ann',
      reason: 'same person: phoned the patient',
    });
    const linked = await awaitCommand(ctx.db, ctx.schema, link.commandId, { timeoutMs: 20_000 });
    expect(linked.status).toBe('done');
    const explained = await explainPatient(ctx.db, ctx.schema, a);
    expect(explained?.person).toEqual([a, b].sort());
    expect(explained?.history.map((h) => h.type)).toEqual(['PatientLinkProposed', 'PatientsLinked']);

    const unlink = await requestDecision(ctx.db, ctx.schema, {
      kind: 'unlink',
      patientId: a,
      otherPatientId: b,
      decidedBy: 'steward-bob',
      reason: 'twins after all',
    });
    expect((await awaitCommand(ctx.db, ctx.schema, unlink.commandId, { timeoutMs: 20_000 })).status).toBe(
      'done',
    );

    // An update that would re-propose the pair: the steward's decision stands.
    await ctx.producer.publish([
      registration(b, { ...typoOf(person), line: '10 Oak Avenue' }, 'SOUTH', `${b}-upd`, 'PatientUpdated'),
    ]);
    await eventually(recordAt(ctx, b, '10 Oak Avenue'), { what: 'the update applied' });
    expect(await decisionTypes(ctx, a, b)).toEqual([
      'PatientLinkProposed',
      'PatientsLinked',
      'PatientsUnlinked',
    ]);

    const events = ofPair(await identityEvents(ctx), a, b);
    expect(events.map((e) => [e.type, e.data.decidedBy, e.data.reason])).toEqual([
      ['PatientLinkProposed', 'identity-matcher', expect.any(String)],
      ['PatientsLinked', 'steward-ann', 'same person: phoned the patient'],
      ['PatientsUnlinked', 'steward-bob', 'twins after all'],
    ]);
    expect(events[1]?.data.meta.eventId).toBe(linked.eventId);
    expect((await explainPatient(ctx.db, ctx.schema, a))?.person).toEqual([a]);
  });

  it('given the matcher linked one pair and proposed another, when a record changes beyond recognition, then PatientsUnlinked and PatientLinkRejected (rescored) by the matcher', async () => {
    const person = personNo(4);
    const [a, b] = ids(uniqueId('rescore'));
    const c = `${b}-typo`;
    await ctx.producer.publish([
      registration(a, person, 'NORTH', `${a}-reg`),
      registration(b, person, 'SOUTH', `${b}-reg`),
      registration(c, typoOf(person), 'EAST', `${c}-reg`),
    ]);
    await eventually(hasDecisions(ctx, a, b, 1), { what: 'the auto-link' });
    await eventually(hasDecisions(ctx, a, c, 1), { what: 'the proposal' });
    expect(await decisionTypes(ctx, a, c)).toEqual(['PatientLinkProposed']);

    // a was someone else all along (the registration clerk picked the wrong record, then fixed it).
    await ctx.producer.publish([
      registration(a, { ...stranger, line: '5 Harbour Row' }, 'NORTH', `${a}-fix`, 'PatientUpdated'),
    ]);
    await eventually(recordAt(ctx, a, '5 Harbour Row'), { what: 'the correction applied' });
    expect(await decisionTypes(ctx, a, b)).toEqual(['PatientsLinked', 'PatientsUnlinked']);
    expect(await decisionTypes(ctx, a, c)).toEqual(['PatientLinkProposed', 'PatientLinkRejected']);
    const events = [...ofPair(await identityEvents(ctx), a, b), ...ofPair(await identityEvents(ctx), a, c)];
    expect(events.map((e) => [e.type, e.data.decidedBy, e.data.reason])).toEqual([
      ['PatientsLinked', 'identity-matcher', expect.any(String)],
      ['PatientsUnlinked', 'identity-matcher', 'rescored'],
      ['PatientLinkProposed', 'identity-matcher', expect.any(String)],
      ['PatientLinkRejected', 'identity-matcher', 'rescored'],
    ]);
  });

  it('given decisions, when /metrics is read, then decisions by type and by whom and the review queue, and no patient', async () => {
    const res = await svc.http.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toMatch(/hub_identity_decisions_total\{type="PatientsLinked",by="matcher"\} \d+/);
    expect(res.body).toMatch(/hub_identity_decisions_total\{type="PatientsUnlinked",by="steward"\} \d+/);
    expect(res.body).toMatch(/hub_identity_review_queue \d+/);
    expect(res.body).toMatch(/hub_identity_match_seconds_count \d+/);
    expect(res.body).not.toMatch(/P-|Jonath|Okonkwo/);
  });

  it('given an unknown record or the same record twice, when a steward asks, then HUB_NOT_FOUND / HUB_INPUT_INVALID and nothing is queued', async () => {
    const [a] = ids(uniqueId('unknown'));
    const ask = (other: string) =>
      requestDecision(ctx.db, ctx.schema, {
        kind: 'link',
        patientId: a,
        otherPatientId: other,
        decidedBy: 's',
        reason: null,
      });
    await expect(ask('P-nobody')).rejects.toSatisfy(
      (e: unknown) => e instanceof HubError && e.code === 'HUB_NOT_FOUND',
    );
    await expect(ask(a)).rejects.toSatisfy(
      (e: unknown) => e instanceof HubError && e.code === 'HUB_INPUT_INVALID',
    );
  });

  it('given an auto-linked pair, when an EHR merge (A40) retires one record, then the matcher never unlinks it and a steward command on it is refused', async () => {
    const person = personNo(3);
    const [a, b] = ids(uniqueId('a40'));
    const survivor = `${b}-survivor`;
    await ctx.producer.publish([
      registration(a, person, 'NORTH', `${a}-reg`),
      registration(b, person, 'SOUTH', `${b}-reg`),
      registration(survivor, stranger, 'SOUTH', `${survivor}-reg`),
    ]);
    await eventually(hasDecisions(ctx, a, b, 1), { what: 'the auto-link' });
    await ctx.producer.publish([patientsMerged(survivor, b, `${b}-a40`)]);
    await eventually(
      async () => ((await explainPatient(ctx.db, ctx.schema, b))?.active === false ? true : undefined),
      {
        what: 'the retirement',
      },
    );
    expect((await explainPatient(ctx.db, ctx.schema, b))?.mergedInto).toBe(survivor);

    // a changes beyond recognition: the link to the retired record is the merge's to keep.
    await ctx.producer.publish([
      registration(a, { ...stranger, line: '77 Quay Road' }, 'NORTH', `${a}-upd`, 'PatientUpdated'),
    ]);
    await eventually(recordAt(ctx, a, '77 Quay Road'), { what: 'the update applied' });
    expect(await decisionTypes(ctx, a, b)).toEqual(['PatientsLinked']);

    const cmd = await requestDecision(ctx.db, ctx.schema, {
      kind: 'unlink',
      patientId: a,
      otherPatientId: b,
      decidedBy: 'steward-ann',
      reason: 'not the same',
    });
    const outcome = await awaitCommand(ctx.db, ctx.schema, cmd.commandId, { timeoutMs: 20_000 });
    expect([outcome.status, outcome.eventId]).toEqual(['refused', null]);
    expect(outcome.error).toMatch(/A40/);
    expect(await decisionTypes(ctx, a, b)).toEqual(['PatientsLinked']);
  });
});

describe('identity-matcher: a re-processed batch republishes the same decisions (issue 21)', () => {
  let ctx: TestContext;

  beforeAll(async () => {
    ctx = await createTestContext('identity_replay');
  }, 120_000);

  afterAll(async () => {
    await ctx?.cleanup();
  });

  it('given the ack of a publish is lost and the matcher restarts from an earlier offset, then the same event ids, one decision each', async () => {
    // A producer whose first acknowledgement of a decision is lost: the records landed, the batch failed.
    let lost = false;
    const lossy: EventProducer = {
      ...ctx.producer,
      publish: async (events, headers) => {
        const r = await ctx.producer.publish(events, headers);
        if (!lost && events.some((e) => e.type === 'PatientsLinked')) {
          lost = true;
          throw new HubError('HUB_KAFKA_UNAVAILABLE', 'acknowledgement lost (test)', { retriable: true });
        }
        return r;
      },
    };
    const groupId = uniqueId('hub.identity-matcher.replay');
    const first = await startIdentityMatcherInProcess(ctx, { producer: lossy, groupId });
    const [a, b] = ['P-r-1', 'P-r-2'];
    await ctx.producer.publish([
      registration(a, jonathan, 'NORTH', `${a}-reg`),
      registration(b, jonathan, 'SOUTH', `${b}-reg`),
    ]);
    await eventually(hasDecisions(ctx, a, b, 1), { what: 'the link after the retry' });
    expect(lost).toBe(true);
    const offsets = () =>
      ctx.db
        .withSchema(ctx.schema)
        .from('offsets')
        .select<{ partition: number; last_offset: string }[]>('partition', 'last_offset');
    const applied = await offsets();
    await first.stop();

    // A restart that re-reads everything (the stored offsets rewound).
    await ctx.db.withSchema(ctx.schema).from('offsets').update({ last_offset: -1 });
    const second = await startIdentityMatcherInProcess(ctx, { groupId });
    try {
      await eventually(
        async () => {
          const now = await offsets();
          return applied.every((x) =>
            now.some((y) => y.partition === x.partition && y.last_offset === x.last_offset),
          )
            ? true
            : undefined;
        },
        { what: 'the re-read caught up' },
      );
    } finally {
      await second.stop();
    }

    const events = ofPair(await identityEvents(ctx), a, b);
    // The lost ack published the link twice, with one id; the re-read decided nothing new.
    expect(events.map((e) => e.type)).toEqual(['PatientsLinked', 'PatientsLinked']);
    expect(new Set(events.map((e) => e.data.meta.eventId)).size).toBe(1);
    expect(await decisionTypes(ctx, a, b)).toEqual(['PatientsLinked']);
  });
});
