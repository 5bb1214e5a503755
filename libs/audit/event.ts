import type { AuditEvent } from '@medplum/fhirtypes';
import { unstorableTextPaths } from '../events/index.js';

/**
 * FHIR R4 AuditEvent for one API request that touched (or tried to touch)
 * PHI. Pure. The event names the patient by enterprise id and the route by
 * its template; it never carries the response, query values or names.
 */
export type AuditOutcome = '0' | '4' | '8' | '12';

export interface AuditInput {
  id: string;
  recorded: number;
  /**
   * FHIR restful-interaction code: read, search-type, operation; create, update, batch and transaction at the
   * FHIR adapter; create, update and delete of subscriptions at the API.
   */
  interaction:
    'read' | 'search-type' | 'operation' | 'create' | 'update' | 'delete' | 'batch' | 'transaction';
  /** The route template, e.g. `GET /fhir/Observation`. */
  route: string;
  resourceType: string | null;
  status: number;
  /** The patient the request asked for (denied requests too), else the one it was confined to. */
  patientId: string | null;
  who: { subject: string; clientId: string; scopes: readonly string[] } | null;
  /** Why a request was refused (a code, e.g. patient-mismatch), when it was. */
  denyReason: string | null;
  sourceAddress: string;
  observer: string;
}

export function outcomeOf(status: number): AuditOutcome {
  if (status < 400) return '0';
  if (status < 500) return '4';
  return '8';
}

export const AUDIT_SYSTEMS = {
  type: 'http://terminology.hl7.org/CodeSystem/audit-event-type',
  interaction: 'http://hl7.org/fhir/restful-interaction',
  entityType: 'http://terminology.hl7.org/CodeSystem/audit-entity-type',
  objectRole: 'http://terminology.hl7.org/CodeSystem/object-role',
  hubClient: 'urn:hub:oauth-client',
  hubSubject: 'urn:hub:oauth-subject',
  hubScope: 'urn:hub:oauth-scope',
  hubDeny: 'urn:hub:deny-reason',
  hubEventType: 'urn:hub:audit-event-type',
  hubOperator: 'urn:hub:operator',
  hubOperatorAction: 'urn:hub:operator-action',
  hubSubscription: 'urn:hub:subscription',
  dicom: 'http://dicom.nema.org/resources/ontology/DCM',
} as const;

type AuditEntity = NonNullable<AuditEvent['entity']>[number];

/** AuditEvent.action (C create, R read, U update, D delete, E execute) of each interaction. */
const ACTION: Record<AuditInput['interaction'], NonNullable<AuditEvent['action']>> = {
  read: 'R',
  'search-type': 'R',
  operation: 'E',
  create: 'C',
  update: 'U',
  delete: 'D',
  batch: 'E',
  transaction: 'E',
};

/** The entity naming whose data it was; summarize() reads the patient column from it. */
function patientEntity(patientId: string): AuditEntity {
  return {
    what: { reference: `Patient/${patientId}` },
    type: { system: AUDIT_SYSTEMS.entityType, code: '1', display: 'Person' },
    role: { system: AUDIT_SYSTEMS.objectRole, code: '1', display: 'Patient' },
  };
}

export function buildAuditEvent(i: AuditInput): AuditEvent {
  const outcome = outcomeOf(i.status);
  const entity: NonNullable<AuditEvent['entity']> = [];
  if (i.patientId) entity.push(patientEntity(i.patientId));
  entity.push({
    what: { display: i.route },
    type: { system: AUDIT_SYSTEMS.entityType, code: '2', display: 'System Object' },
    ...(i.resourceType ? { description: i.resourceType } : {}),
    detail: [{ type: 'http-status', valueString: String(i.status) }],
  });
  return {
    resourceType: 'AuditEvent',
    id: i.id,
    type: { system: AUDIT_SYSTEMS.type, code: 'rest', display: 'RESTful Operation' },
    subtype: [{ system: AUDIT_SYSTEMS.interaction, code: i.interaction }],
    action: ACTION[i.interaction],
    recorded: new Date(i.recorded).toISOString(),
    outcome,
    ...(i.denyReason
      ? { outcomeDesc: i.denyReason }
      : outcome === '0'
        ? {}
        : { outcomeDesc: `http ${i.status}` }),
    agent: [
      {
        requestor: true,
        who: i.who
          ? { identifier: { system: AUDIT_SYSTEMS.hubSubject, value: i.who.subject } }
          : { display: 'anonymous' },
        ...(i.who
          ? {
              altId: i.who.clientId,
              policy: [...i.who.scopes],
            }
          : {}),
        network: { address: i.sourceAddress, type: '2' },
      },
    ],
    source: { observer: { display: i.observer } },
    entity,
  };
}

/**
 * An operator's action through the `hub` CLI rather than an API request: a
 * dead-letter redrive or discard, or reading a dead letter's payload. It is
 * the same resource in the same chained table as API requests, so that
 * `hub audit verify` covers it and a patient's access report lists it.
 */
export interface OperatorActionInput {
  id: string;
  recorded: number;
  /** What was done, e.g. `dlq.redrive`: the table's `action` column. */
  action: string;
  /** FHIR AuditEvent.action: R read, U update, E execute. */
  crud: 'R' | 'U' | 'E';
  /** What was acted on, e.g. a Kafka record `topic/partition/offset`: the table's `route` column. */
  target: string;
  /** Whose data it was, when the target names a patient. */
  patientId: string | null;
  operator: string;
  /** The machine the command ran on. */
  host: string;
  /** Why, in the operator's words. */
  reason: string | null;
  /** Facts about the action (e.g. where a record was redriven to); codes and names, never data. */
  detail: Readonly<Record<string, string>>;
  observer: string;
}

/** Pure, like buildAuditEvent; an operator action always succeeded (a refused one is not performed). */
export function buildOperatorAuditEvent(i: OperatorActionInput): AuditEvent {
  const entity: NonNullable<AuditEvent['entity']> = [];
  if (i.patientId) entity.push(patientEntity(i.patientId));
  const detail = Object.entries(i.detail).map(([type, valueString]) => ({ type, valueString }));
  entity.push({
    what: { display: i.target },
    type: { system: AUDIT_SYSTEMS.entityType, code: '2', display: 'System Object' },
    ...(detail.length > 0 ? { detail } : {}),
  });
  return {
    resourceType: 'AuditEvent',
    id: i.id,
    // No code of the standard value set fits a maintenance action on the hub's own topics.
    type: { system: AUDIT_SYSTEMS.hubEventType, code: 'operator', display: 'Operator action' },
    subtype: [{ system: AUDIT_SYSTEMS.hubOperatorAction, code: i.action }],
    action: i.crud,
    recorded: new Date(i.recorded).toISOString(),
    outcome: '0',
    ...(i.reason ? { purposeOfEvent: [{ text: i.reason }] } : {}),
    agent: [
      {
        requestor: true,
        who: { identifier: { system: AUDIT_SYSTEMS.hubOperator, value: i.operator } },
        // Network access point type 1: a machine name.
        network: { address: i.host, type: '1' },
      },
    ],
    source: { observer: { display: i.observer } },
    entity,
  };
}

/**
 * One outbound delivery that carried a patient's data to a subscriber
 * (issue 20): who received it (the subscription, first agent, so that the
 * audit table's agent column and `GET /audit/events?agent=` name it), whose
 * data, which event, over which channel. Stream-level: one per event
 * delivered, in the same chained table as API reads.
 */
export interface DeliveryAuditInput {
  id: string;
  recorded: number;
  subscriptionId: string;
  subscriptionName: string;
  channel: 'webhook' | 'rest-hook' | 'mllp';
  /** The receiver's host (and port): never a path or query, which may carry a token. */
  destination: string;
  patientId: string;
  eventType: string;
  eventId: string;
  idempotencyKey: string;
  observer: string;
}

export function buildDeliveryAuditEvent(i: DeliveryAuditInput): AuditEvent {
  return {
    resourceType: 'AuditEvent',
    id: i.id,
    // DICOM 110106 Export: data leaving the system of record for another one.
    type: { system: AUDIT_SYSTEMS.dicom, code: '110106', display: 'Export' },
    subtype: [{ system: AUDIT_SYSTEMS.hubEventType, code: 'subscription-delivery' }],
    action: 'R',
    recorded: new Date(i.recorded).toISOString(),
    outcome: '0',
    agent: [
      {
        requestor: false,
        who: { identifier: { system: AUDIT_SYSTEMS.hubSubscription, value: i.subscriptionId } },
        altId: i.subscriptionName,
        // Network access point type 1: a machine name (with its port).
        network: { address: i.destination, type: '1' },
      },
    ],
    source: { observer: { display: i.observer } },
    entity: [
      patientEntity(i.patientId),
      {
        what: { display: `delivery ${i.channel} ${i.eventType}` },
        type: { system: AUDIT_SYSTEMS.entityType, code: '2', display: 'System Object' },
        detail: [
          { type: 'event-id', valueString: i.eventId },
          { type: 'idempotency-key', valueString: i.idempotencyKey },
        ],
      },
    ],
  };
}

/** The fields the audit table keeps as columns, for queries by patient, agent and outcome. */
export interface AuditSummary {
  auditId: string;
  recordedAt: string;
  patientId: string | null;
  agent: string | null;
  clientId: string | null;
  action: string;
  route: string;
  outcome: string;
  sourceAddress: string | null;
}

export function summarize(e: AuditEvent): AuditSummary {
  const agent = e.agent?.[0];
  const patientRef = e.entity?.find((x) => x.what?.reference?.startsWith('Patient/'))?.what?.reference;
  const route = e.entity?.find((x) => x.what?.display)?.what?.display ?? '';
  return {
    auditId: e.id ?? '',
    recordedAt: e.recorded,
    patientId: patientRef ? patientRef.slice('Patient/'.length) : null,
    agent: agent?.who?.identifier?.value ?? null,
    clientId: agent?.altId ?? null,
    action: e.subtype?.[0]?.code ?? e.action ?? '',
    route,
    outcome: e.outcome ?? '',
    sourceAddress: agent?.network?.address ?? null,
  };
}

/**
 * Why a record from the audit topic can never be appended, as a code (never
 * its content: it may carry PHI). `unstorable-text`: a string or key holds
 * U+0000 or a lone surrogate (libs/events' rule), which Postgres text and
 * jsonb cannot store, so appending it would fail the same way on every retry.
 */
export type AuditRejectReason = 'not-an-audit-event' | 'unstorable-text';

/** A record from the audit topic: the event to append, or why it never can be. */
export function auditRecordOf(v: unknown): { event: AuditEvent } | { rejected: AuditRejectReason } {
  if (!isAuditEvent(v)) return { rejected: 'not-an-audit-event' };
  if (unstorableTextPaths(v).length > 0) return { rejected: 'unstorable-text' };
  return { event: v };
}

/** A minimal shape check for what arrives on the audit topic. */
export function isAuditEvent(v: unknown): v is AuditEvent {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as { resourceType?: unknown; id?: unknown; recorded?: unknown; agent?: unknown };
  return (
    o.resourceType === 'AuditEvent' &&
    typeof o.id === 'string' &&
    /^[0-9a-f-]{36}$/.test(o.id) &&
    typeof o.recorded === 'string' &&
    Array.isArray(o.agent)
  );
}
