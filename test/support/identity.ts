/**
 * The identity-matcher in the test's own process (real Kafka, registry and
 * Postgres), hand-set match weights whose scores a test can reason about,
 * made-up people as patient events, and the identity topic read back.
 */
import { deterministicEventId, type ClinicalEvent, type Demographics } from '../../libs/events/index.js';
import { EMPTY_DEMOGRAPHICS } from '../../libs/events/demographics.js';
import type { MatchWeights } from '../../libs/identity/matching/types.js';
import type { EventProducer } from '../../libs/kafka/producer.js';
import { ensureTopics } from '../../libs/kafka/admin.js';
import { scanTopic } from '../../libs/kafka/scan.js';
import { createMetrics } from '../../libs/telemetry/metrics.js';
import {
  buildIdentityMatcherService,
  type IdentityMatcherConfig,
  type IdentityMatcherService,
} from '../../services/identity-matcher/app.js';
import { uniqueId, type TestContext } from './harness.js';

/** log2(m/u) per level as m/u pairs: a positive weight w is m 0.5, u 2^-(w+1); a negative one m 0.5·2^w, u 0.5. */
function level(w: number): { m: number; u: number } {
  return w >= 0 ? { m: 0.5, u: 2 ** -(w + 1) } : { m: 0.5 * 2 ** w, u: 0.5 };
}

function table(levels: Record<string, number>): Record<string, { m: number; u: number }> {
  return Object.fromEntries(Object.entries(levels).map(([k, w]) => [k, level(w)]));
}

/**
 * Test weights (not estimated): an exact duplicate without a shared
 * identifier scores 27 (link at 25), a first-name typo with a new street and
 * no phone 22 (review from 12), another person of the same family, postal
 * code and birth year below 0.
 */
export const IDENTITY_TEST_WEIGHTS: MatchWeights = {
  version: 'test-weights-1',
  upper: 25,
  lower: 12,
  fields: {
    given: table({
      exact: 6,
      nickname: 4,
      'jw-high': 4,
      'jw-mid': 2,
      phonetic: 1,
      initial: 0,
      swapped: 3,
      disagree: -5,
    }),
    family: table({
      exact: 7,
      compound: 4,
      'jw-high': 4,
      'jw-mid': 2,
      phonetic: 1,
      swapped: 3,
      disagree: -6,
    }),
    birthDate: table({ exact: 8, transposed: 4, typo: 4, 'year-only': 0, disagree: -8 }),
    sex: table({ agree: 1, disagree: -4 }),
    phone: table({ agree: 6, typo: 3, disagree: -1 }),
    postalCode: table({ exact: 3, partial: 1, disagree: -1 }),
    address: table({ exact: 5, similar: 3, disagree: -1 }),
    email: table({ exact: 6, disagree: -1 }),
    identifier: table({ agree: 10, conflict: -4 }),
  },
};

export interface Person {
  given: string;
  family: string;
  birthDate: string;
  sex: string;
  line: string | null;
  postalCode: string | null;
  phone: string | null;
}

/** A made-up person's demographics as a facility registers them, with that facility's MRN. */
export function demographicsOf(p: Person, facility: string, mrn: string): Demographics {
  return {
    ...EMPTY_DEMOGRAPHICS,
    identifiers: [{ system: `urn:test:${facility}:mrn`, value: mrn, type: 'MR' }],
    names: [{ family: p.family, given: [p.given], prefix: null, suffix: null, use: 'official' }],
    birthDate: p.birthDate,
    administrativeGender: p.sex,
    addresses: p.line
      ? [
          {
            lines: [p.line],
            city: 'Springfield',
            state: null,
            postalCode: p.postalCode,
            country: null,
            use: 'home',
            type: null,
          },
        ]
      : [],
    telecom: p.phone ? [{ system: 'phone', value: p.phone, use: 'home', part: null }] : [],
  };
}

/** A registration (or update) of `patientId` by `facility`; the message id makes the event id. */
export function registration(
  patientId: string,
  p: Person,
  facility: string,
  messageId: string,
  type: 'PatientRegistered' | 'PatientUpdated' = 'PatientRegistered',
): ClinicalEvent {
  const at = Date.UTC(2026, 0, 15, 9, 30);
  const data = {
    meta: {
      eventId: deterministicEventId(['TEST-EHR', facility, messageId, type]),
      eventType: type,
      occurredAt: at,
      recordedAt: at + 1000,
      source: { system: 'TEST-EHR', facility, messageId },
      correlationId: messageId,
      causationId: null,
      rawMessageRef: null,
      sourceTimes: [],
    },
    patientId,
    demographics: demographicsOf(p, facility, `MRN-${patientId}`),
  };
  return type === 'PatientRegistered' ? { type, data } : { type, data };
}

/** Started, on the context's topics and schema, its own group; the caller stops it. */
export async function startIdentityMatcherInProcess(
  ctx: TestContext,
  overrides: Partial<IdentityMatcherConfig> & { producer?: EventProducer } = {},
): Promise<IdentityMatcherService> {
  const dlq = ctx.topic('hub.dlq.identity-matcher');
  if (!ctx.extraTopics.includes(dlq)) ctx.extraTopics.push(dlq);
  await ensureTopics(ctx.kafka, [{ name: dlq, partitions: 1, replicationFactor: 1, retentionMs: -1 }]);
  const { producer, ...cfg } = overrides;
  const svc = buildIdentityMatcherService(
    {
      db: ctx.db,
      kafka: ctx.kafka,
      codec: ctx.codec,
      producer: producer ?? ctx.producer,
      logger: ctx.logger,
      metrics: createMetrics({ defaultMetrics: false }),
    },
    {
      schema: ctx.schema,
      weights: IDENTITY_TEST_WEIGHTS,
      groupId: uniqueId('hub.identity-matcher.test'),
      dlqTopic: dlq,
      topic: ctx.topic,
      commandPollMs: 100,
      ...cfg,
    },
  );
  await svc.start();
  return svc;
}

/** Every event on the context's identity topic now, in log order per partition. */
export async function identityEvents(ctx: TestContext): Promise<ClinicalEvent[]> {
  const records = await scanTopic(ctx.kafka, ctx.topic('clinical.identity.v1'));
  const out: ClinicalEvent[] = [];
  for (const r of records) if (r.value) out.push(await ctx.codec.decode(r.value));
  return out;
}
