import type { ClinicalEvent, Identifier } from '../events/index.js';
import type { Practitioner } from '../events/index.js';
import { categoryForSection, orderStatusFor, priorityFor, resultStatusFor, V2_TABLE } from './codes.js';
import { loc, refuse, type Seg } from './message.js';
import { noteTimes, notesOf } from './map-notes.js';
import { specimenTimes, specimensOf } from './map-specimen.js';
import { encounterIdFor, orderIdFor, type MapScope } from './scope.js';

export const ORDER_TRIGGERS = { ORM: ['O01'], OML: ['O21'] } as const;

/** One order group: an ORC and the segments up to the next ORC. */
export interface OrderGroup {
  orc: Seg;
  obr: Seg | undefined;
  tq1: Seg | undefined;
  /** NTE after the ORC or the OBR (before any OBX): comments on the order. */
  notes: Seg[];
  /** SPM segments (OML^O21 v2.5+ specimen group). */
  spm: Seg[];
}

/**
 * ORC groups of an ORM/OML. Everything after a second PID is an OML prior-
 * results group or another patient's order, which the hub does not map, so
 * grouping stops there. NTE after the ORC, the OBR or an SPM are the order's
 * notes; NTE after an OBX annotate that OBX (an ask-at-order-entry answer),
 * which an order event does not carry (mapping.md), so they are skipped.
 */
export function orderGroups(scope: MapScope): OrderGroup[] {
  const segs = scope.msg.segments;
  const groups: OrderGroup[] = [];
  let pids = 0;
  let current: OrderGroup | undefined;
  let notesGo: 'order' | 'elsewhere' = 'elsewhere';
  for (const s of segs) {
    if (s.name === 'PID' && ++pids > 1) break;
    if (s.name === 'ORC') {
      current = { orc: s, obr: undefined, tq1: undefined, notes: [], spm: [] };
      groups.push(current);
      notesGo = 'order';
    } else if (!current) {
      continue;
    } else if (s.name === 'OBR' && !current.obr) {
      current.obr = s;
      notesGo = 'order';
    } else if (s.name === 'TQ1' && !current.tq1) {
      current.tq1 = s;
    } else if (s.name === 'SPM') {
      current.spm.push(s);
      notesGo = 'order';
    } else if (s.name === 'OBX') {
      notesGo = 'elsewhere';
    } else if (s.name === 'NTE' && notesGo === 'order') {
      current.notes.push(s);
    }
  }
  return groups;
}

/** Placer (ORC-2, else OBR-2) and filler (ORC-3, else OBR-3) numbers; the hub order id prefers the placer's. */
export function orderNumbers(
  scope: MapScope,
  orc: Seg | undefined,
  obr: Seg | undefined,
): { placer: Identifier | null; filler: Identifier | null; orderId: string | null } {
  const placer = scope.ei(orc, 2) ?? scope.ei(obr, 2);
  const filler = scope.ei(orc, 3) ?? scope.ei(obr, 3);
  const n = placer ?? filler;
  return { placer, filler, orderId: n ? orderIdFor(n) : null };
}

/**
 * ORC-1 order control → event. NW/SN place an order; CA/OC/CR cancel it;
 * everything else that changes the workflow state is a status change.
 */
/** `fromOrc5`: the status is read from ORC-5; otherwise a FHIR request-status. */
type Control = 'place' | 'cancel' | { status: string };

function controlFor(orc1: string): Control | undefined {
  switch (orc1) {
    case 'NW':
    case 'SN':
      return 'place';
    case 'CA':
    case 'OC':
    case 'CR':
      return 'cancel';
    case 'SC':
    case 'XO':
    case 'XX':
    case 'XR':
    case 'SS':
      return { status: 'fromOrc5' };
    case 'DC':
    case 'OD':
    case 'DR':
      return { status: 'revoked' };
    case 'HD':
    case 'OH':
      return { status: 'on-hold' };
    case 'RL':
    case 'OE':
      return { status: 'active' };
    default:
      return undefined;
  }
}

/**
 * The ordering provider: ORC-12 with its call-back numbers ORC-14, else OBR-16 with OBR-17
 * (order call-back phone), as v2-to-FHIR maps them to ServiceRequest.requester.
 */
export function orderingProvider(
  scope: MapScope,
  orc: Seg | undefined,
  obr: Seg | undefined,
): Practitioner | null {
  return (
    scope.practitioner(orc, 12, 0, scope.contactPoints(orc, 14, 'work')) ??
    scope.practitioner(obr, 16, 0, scope.contactPoints(obr, 17, 'work'))
  );
}

export function mapOrder(scope: MapScope): ClinicalEvent[] {
  const pid = scope.requireSegment('PID');
  const { patientId } = scope.patient(pid);
  const visit = scope.visitNumber(scope.msg.first('PV1'), pid);
  const encounterId = visit ? encounterIdFor(visit) : null;
  const groups = orderGroups(scope);
  if (groups.length === 0) scope.requireSegment('ORC');
  const defaultCategory = scope.header.messageCode === 'OML' ? 'laboratory' : 'other';
  const events: ClinicalEvent[] = [];
  for (const { orc, obr, tq1, notes: ntes, spm } of groups) {
    const orc1 = scope.requireField(orc, 1, 1, 'order control').toUpperCase();
    const control = controlFor(orc1);
    if (control === undefined) {
      throw refuse('AE', '103', 'ORC-1 (order control) is not a code the hub maps', loc(orc, 1));
    }
    const { placer, filler, orderId } = orderNumbers(scope, orc, obr);
    if (orderId === null) {
      throw refuse(
        'AE',
        '101',
        'required field ORC-2 (placer order number) is missing and ORC-3/OBR-2/OBR-3 are empty',
        loc(orc, 2),
      );
    }
    const at = scope.time(orc, 9) ?? scope.messageTime();
    const notes = notesOf(scope, ntes);
    if (control === 'place') {
      if (!obr) {
        throw refuse('AE', '101', 'required segment OBR is missing for a new order', {
          segment: 'OBR',
          segmentSequence: orc.sequence,
        });
      }
      const code = scope.code(obr, 4);
      if (!code)
        throw refuse(
          'AE',
          '101',
          'required field OBR-4 (universal service identifier) is missing',
          loc(obr, 4),
        );
      const priorityCode = (tq1 && tq1.get(9)) || obr.get(27, 6) || orc.get(7, 6);
      const orderedAt = scope.time(orc, 9) ?? scope.time(obr, 6) ?? scope.messageTime();
      const specimens = specimensOf(scope, obr, spm);
      const orc5 = orc.get(5);
      events.push({
        type: 'OrderPlaced',
        data: {
          meta: scope.meta('OrderPlaced', at, {
            orderedAt,
            ...noteTimes('notes', notes),
            ...specimenTimes('specimens', specimens),
          }),
          patientId,
          orderId,
          placerOrderNumber: placer,
          fillerOrderNumber: filler,
          encounterId,
          code,
          category: categoryForSection(obr.get(24)) ?? defaultCategory,
          priority: priorityFor(priorityCode),
          orderedAt: orderedAt.instant,
          orderingProvider: orderingProvider(scope, orc, obr),
          placerGroupNumber: scope.ei(orc, 4),
          specimens: specimens.map((sp) => sp.specimen),
          notes: notes.map((n) => n.note),
          reasons: scope.codeList(obr, 31),
          orderStatus: orc5 === '' ? null : orderStatusFor(orc5),
        },
      });
    } else if (control === 'cancel') {
      events.push({
        type: 'OrderCancelled',
        data: {
          meta: scope.meta('OrderCancelled', at, { cancelledAt: at }),
          patientId,
          orderId,
          reason: scope.codeOrText(orc, 16, 0, V2_TABLE('0119')),
          cancelledAt: at.instant,
          placerOrderNumber: placer,
          fillerOrderNumber: filler,
        },
      });
    } else {
      const orc5 = orc.get(5);
      events.push({
        type: 'OrderStatusChanged',
        data: {
          meta: scope.meta('OrderStatusChanged', at, { changedAt: at, ...noteTimes('notes', notes) }),
          patientId,
          orderId,
          status: control.status === 'fromOrc5' ? orderStatusFor(orc5) : control.status,
          fillerStatus: orc5 === '' ? null : orc5,
          changedAt: at.instant,
          placerOrderNumber: placer,
          fillerOrderNumber: filler,
          resultStatus: (obr && resultStatusFor(obr.get(25))) ?? null,
          notes: notes.map((n) => n.note),
        },
      });
    }
  }
  return events;
}
