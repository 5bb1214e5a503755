import type { CodeableConcept, ServiceRequest } from '@medplum/fhirtypes';
import type { ClinicalEvent, Identifier } from '../events/index.js';
import {
  concept,
  concepts,
  codeNotInBinding,
  fhirCode,
  hubIdOfResource,
  identifiers,
  instant,
  metaFor,
  needSubject,
  notes,
  practitioner,
  specimensOf,
  toHubIdentifier,
  type MapContext,
  type MapInput,
  type MapResult,
} from './map-common.js';
import { errorIssue } from './outcome.js';
import { invalid, type Invalid } from './validate.js';

const PRIORITIES = new Set(['routine', 'urgent', 'asap', 'stat']);
const LAB_CATEGORIES = new Set(['108252007', 'LAB', 'laboratory']);
const IMAGING_CATEGORIES = new Set(['363679005', 'RAD', 'imaging', 'IMG']);

export function categoryOf(cats: readonly CodeableConcept[] | undefined): 'laboratory' | 'imaging' | 'other' {
  for (const c of cats ?? []) {
    for (const cd of c.coding ?? []) {
      if (cd.code && LAB_CATEGORIES.has(cd.code)) return 'laboratory';
      if (cd.code && IMAGING_CATEGORIES.has(cd.code)) return 'imaging';
    }
  }
  return 'other';
}

/** Placer (PLAC, else the first) and filler (FILL) numbers of an order, as for ORC-2 / ORC-3. */
export function orderNumbers(ids: readonly Identifier[]): {
  placerOrderNumber: Identifier | null;
  fillerOrderNumber: Identifier | null;
} {
  return {
    placerOrderNumber: ids.find((i) => i.type === 'PLAC') ?? ids.find((i) => i.type !== 'FILL') ?? null,
    fillerOrderNumber: ids.find((i) => i.type === 'FILL') ?? null,
  };
}

interface OrderWrite {
  s: ServiceRequest;
  input: MapInput;
  ctx: MapContext;
  subject: string;
  orderId: string;
  numbers: ReturnType<typeof orderNumbers>;
}

function placed(w: OrderWrite, seq: number): ClinicalEvent | Invalid {
  const { s, input, ctx } = w;
  const c = concept(s.code);
  if (!c) {
    return invalid('unmappable', 422, [
      errorIssue('required', 'ServiceRequest.code is required to place an order', 'ServiceRequest.code'),
    ]);
  }
  return {
    type: 'OrderPlaced',
    data: {
      meta: metaFor('OrderPlaced', seq, input, ctx, instant(s.authoredOn) ?? ctx.recordedAt, {
        'meta.occurredAt': s.authoredOn,
        orderedAt: s.authoredOn,
      }),
      patientId: w.subject,
      orderId: w.orderId,
      ...w.numbers,
      encounterId: input.encounterId ?? null,
      code: c,
      category: categoryOf(s.category),
      priority: s.priority ?? 'routine',
      orderedAt: instant(s.authoredOn) ?? ctx.recordedAt,
      orderingProvider: practitioner(s.requester, ctx.policy),
      placerGroupNumber: s.requisition ? toHubIdentifier(s.requisition, ctx.policy) : null,
      specimens: specimensOf(s.specimen, s, input, ctx.policy),
      notes: notes(s.note),
      reasons: concepts(s.reasonCode),
      orderStatus: s.status,
    },
  };
}

function changed(w: OrderWrite, seq: number): ClinicalEvent {
  const { s, input, ctx } = w;
  return {
    type: 'OrderStatusChanged',
    data: {
      meta: metaFor('OrderStatusChanged', seq, input, ctx, ctx.recordedAt),
      patientId: w.subject,
      orderId: w.orderId,
      status: s.status,
      fillerStatus: null,
      changedAt: ctx.recordedAt,
      ...w.numbers,
      resultStatus: null,
      notes: notes(s.note),
    },
  };
}

function cancelled(w: OrderWrite, seq: number): ClinicalEvent {
  const { s, input, ctx } = w;
  return {
    type: 'OrderCancelled',
    data: {
      meta: metaFor('OrderCancelled', seq, input, ctx, ctx.recordedAt),
      patientId: w.subject,
      orderId: w.orderId,
      reason:
        s.status === 'entered-in-error'
          ? fhirCode('http://hl7.org/fhir/request-status', 'entered-in-error')
          : null,
      cancelledAt: ctx.recordedAt,
      ...w.numbers,
    },
  };
}

function orderEvents(w: OrderWrite): ClinicalEvent[] | Invalid {
  const prevStatus = w.input.previous?.status ?? null;
  switch (w.s.status) {
    case 'draft':
    case 'active':
    case 'on-hold':
    case 'completed': {
      if (prevStatus !== null) return prevStatus !== w.s.status ? [changed(w, 0)] : [];
      const p = placed(w, 0);
      if ('ok' in p) return p;
      return w.s.status === 'on-hold' || w.s.status === 'completed' ? [p, changed(w, 1)] : [p];
    }
    case 'revoked':
    case 'entered-in-error':
      return prevStatus !== 'revoked' && prevStatus !== 'entered-in-error' ? [cancelled(w, 0)] : [];
    case 'unknown':
    case undefined:
      return invalid('unmappable', 422, [
        errorIssue('code-invalid', 'ServiceRequest.status unknown cannot be mapped', 'ServiceRequest.status'),
      ]);
  }
}

export function mapServiceRequest(s: ServiceRequest, input: MapInput, ctx: MapContext): MapResult {
  if (s.priority !== undefined && !PRIORITIES.has(s.priority)) {
    return codeNotInBinding('ServiceRequest.priority', 'request-priority');
  }
  const subject = needSubject(input, 'ServiceRequest');
  if (typeof subject !== 'string') return subject;
  const orderId = input.previous?.hubId ?? hubIdOfResource(s, input.id, ctx.policy);
  const numbers = orderNumbers(identifiers(s.identifier, ctx.policy));
  const events = orderEvents({ s, input, ctx, subject, orderId, numbers });
  if (!Array.isArray(events)) return events;
  return {
    ok: true,
    events,
    state: { hubId: orderId, patientKey: subject, status: s.status, location: null },
  };
}
