import type { Coverage, CoverageClass } from '@medplum/fhirtypes';
import { codeOf, type Code } from '../events/index.js';
import {
  concept,
  hubIdOfResource,
  identifiers,
  metaFor,
  needSubject,
  toHubIdentifier,
  UNKNOWN_SYSTEM,
  type MapContext,
  type MapInput,
  type MapResult,
} from './map-common.js';

/** Coverage.class of one type (coverage-class: plan, group, …). */
function classOf(c: Coverage, type: string): CoverageClass | undefined {
  return c.class?.find((k) => k.type.coding?.some((cd) => cd.code === type));
}

/** The plan as a Code: its value (a payer's plan id, in no code system FHIR names) and its name as display. */
function planOf(c: Coverage): Code | null {
  const plan = classOf(c, 'plan');
  if (!plan) return null;
  return codeOf(UNKNOWN_SYSTEM, plan.value, plan.name ?? null);
}

/**
 * Coverage → CoverageRecorded (every write restates it). The member id is subscriberId (what US
 * payers print on the card), else an identifier of type MB (member number).
 */
export function mapCoverage(c: Coverage, input: MapInput, ctx: MapContext): MapResult {
  const subject = needSubject(input, 'Coverage');
  if (typeof subject !== 'string') return subject;
  const coverageId = input.previous?.hubId ?? hubIdOfResource(c, input.id, ctx.policy);
  const payor = c.payor[0];
  const group = classOf(c, 'group');
  const member = identifiers(c.identifier, ctx.policy).find((i) => i.type === 'MB');
  const subscriber = c.subscriber?.display;
  return {
    ok: true,
    events: [
      {
        type: 'CoverageRecorded',
        data: {
          meta: metaFor('CoverageRecorded', 0, input, ctx, ctx.recordedAt),
          patientId: subject,
          coverageId,
          order: c.order ?? null,
          payerId: payor?.identifier ? toHubIdentifier(payor.identifier, ctx.policy) : null,
          payerName: payor?.display ?? null,
          plan: planOf(c),
          planType: concept(c.type),
          groupNumber: group?.value ?? null,
          groupName: group?.name ?? null,
          memberId: c.subscriberId ?? member?.value ?? null,
          subscriberName: subscriber
            ? { family: subscriber, given: [], prefix: null, suffix: null, use: null }
            : null,
          relationship: concept(c.relationship),
          periodStart: c.period?.start ?? null,
          periodEnd: c.period?.end ?? null,
          status: c.status,
          encounterId: null,
        },
      },
    ],
    state: { hubId: coverageId, patientKey: subject, status: c.status, location: null },
  };
}
