import type { ClinicalEvent } from '../events/index.js';
import {
  HUB_AUTHORITY,
  fields,
  SECTION,
  nteSegments,
  patientById,
  pv1Segment,
  seg,
  type Ctx,
} from './outbound-segments.js';
import { comps, cwe, ei, escOpt, reps, xcn, xtn } from './outbound-types.js';

/**
 * ORM^O01 from order events: the inverse of map-order.ts. ORC-1 says what
 * happened (NW placed, CA cancelled, SC status changed), ORC-2/3 the placer
 * and filler numbers, ORC-9 when. See outbound.ts.
 */

/** FHIR request-status → ORC-5 order status (table 0038), as orderStatusFor reads it back. */
const ORDER_STATUS: Readonly<Record<string, string>> = {
  active: 'IP',
  completed: 'CM',
  revoked: 'CA',
  'on-hold': 'HD',
  'entered-in-error': 'ER',
};
/** FHIR request-priority → table 0027 (TQ.6), as priorityFor reads it back. */
const PRIORITY: Readonly<Record<string, string>> = { routine: 'R', urgent: 'T', asap: 'A', stat: 'S' };

export const ORDER_EVENT_TYPES = ['OrderPlaced', 'OrderCancelled', 'OrderStatusChanged'] as const;
export type OrderEvent = Extract<ClinicalEvent, { type: (typeof ORDER_EVENT_TYPES)[number] }>;

export function isOrderEvent(ev: ClinicalEvent): ev is OrderEvent {
  return (ORDER_EVENT_TYPES as readonly string[]).includes(ev.type);
}

/** PID, PV1 when the order names a visit, ORC, OBR for a new order, then the order's notes. */
export function ormBody(c: Ctx, ev: OrderEvent): string[] {
  const d = ev.data;
  // Every order event has a hub order id; with no number of its own, that id is the placer number.
  const hubNumber = { system: `urn:hl7:authority:${HUB_AUTHORITY}`, value: d.orderId, type: null };
  const placer = d.placerOrderNumber ?? (d.fillerOrderNumber ? null : hubNumber);
  const numbers: [number, string][] = [
    [2, ei(placer, c.o.policy)],
    [3, ei(d.fillerOrderNumber, c.o.policy)],
  ];
  const head = patientById(c, d.patientId);
  switch (ev.type) {
    case 'OrderPlaced': {
      const o = ev.data;
      const provider = xcn(o.orderingProvider, c.o.policy);
      const callback = reps((o.orderingProvider?.telecom ?? []).map(xtn));
      const priority = comps('', '', '', '', '', PRIORITY[o.priority] ?? 'R');
      const orc = seg(
        'ORC',
        fields([
          [1, 'NW'],
          ...numbers,
          [4, ei(o.placerGroupNumber, c.o.policy)],
          [5, o.orderStatus ? (ORDER_STATUS[o.orderStatus] ?? '') : ''],
          [7, priority],
          [9, c.time(o.orderedAt, 'orderedAt')],
          [12, provider],
          [14, callback],
        ]),
      );
      const obr = seg(
        'OBR',
        fields([
          [1, '1'],
          ...numbers,
          [4, cwe(o.code, c.v27)],
          [16, provider],
          [24, SECTION[o.category] ?? 'OTH'],
          [27, priority],
          [31, reps(o.reasons.map((r) => cwe(r, c.v27)))],
        ]),
      );
      const pv1 = o.encounterId ? [pv1Segment(c, { encounterId: o.encounterId, patientClass: '' })] : [];
      return [...head, ...pv1, orc, obr, ...nteSegments(c, o.notes, 'notes')];
    }
    case 'OrderCancelled': {
      const o = ev.data;
      const orc = seg(
        'ORC',
        fields([
          [1, 'CA'],
          ...numbers,
          [9, c.time(o.cancelledAt, 'cancelledAt')],
          [16, cwe(o.reason, c.v27)],
        ]),
      );
      return [...head, orc];
    }
    case 'OrderStatusChanged': {
      const o = ev.data;
      // ORC-5 as the filler sent it where known; else the status it means.
      const orc5 = o.fillerStatus ?? ORDER_STATUS[o.status] ?? '';
      const orc = seg(
        'ORC',
        fields([[1, 'SC'], ...numbers, [5, escOpt(orc5)], [9, c.time(o.changedAt, 'changedAt')]]),
      );
      return [...head, orc, ...nteSegments(c, o.notes, 'notes')];
    }
  }
}
