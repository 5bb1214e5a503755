import { describe, expect, it } from 'vitest';
import {
  auditRecordOf,
  buildAuditEvent,
  buildOperatorAuditEvent,
  isAuditEvent,
  outcomeOf,
  summarize,
} from './event.js';

const base = {
  id: '7f9c2b2e-1f1a-4c1e-9a53-2d2f1f0c0a11',
  recorded: Date.UTC(2026, 10, 25, 12, 0, 0),
  interaction: 'read' as const,
  route: 'GET /fhir/Patient/:id',
  resourceType: 'Patient',
  sourceAddress: '10.0.0.7',
  observer: 'hub-api',
};

describe('AuditEvent', () => {
  it('given a denied read of another patient, when built, then who, which patient, what, outcome, when and where are recorded', () => {
    const e = buildAuditEvent({
      ...base,
      status: 403,
      patientId: 'P2',
      who: { subject: 'patient-p1', clientId: 'portal', scopes: ['patient/*.rs'] },
      denyReason: 'patient-mismatch',
    });
    expect(e).toMatchObject({
      resourceType: 'AuditEvent',
      action: 'R',
      recorded: '2026-11-25T12:00:00.000Z',
      outcome: '4',
      outcomeDesc: 'patient-mismatch',
      agent: [
        { who: { identifier: { value: 'patient-p1' } }, altId: 'portal', network: { address: '10.0.0.7' } },
      ],
      entity: [{ what: { reference: 'Patient/P2' } }, { what: { display: 'GET /fhir/Patient/:id' } }],
    });
    expect(isAuditEvent(e)).toBe(true);
    expect(summarize(e)).toMatchObject({
      patientId: 'P2',
      agent: 'patient-p1',
      outcome: '4',
      action: 'read',
    });
  });
  it('given an anonymous request, when built, then the agent is anonymous and no patient is invented', () => {
    const e = buildAuditEvent({
      ...base,
      status: 401,
      patientId: null,
      who: null,
      denyReason: 'unauthenticated',
    });
    expect(e.agent[0]!.who).toEqual({ display: 'anonymous' });
    expect(summarize(e).patientId).toBeNull();
  });
  it('maps HTTP status to FHIR outcome codes', () => {
    expect([200, 304, 400, 403, 404, 500, 503].map(outcomeOf)).toEqual(['0', '0', '4', '4', '4', '8', '8']);
  });
  it('given something else on the topic, when checked, then it is not an AuditEvent', () => {
    expect(isAuditEvent({ resourceType: 'Patient', id: 'x' })).toBe(false);
    expect(isAuditEvent(null)).toBe(false);
  });
  it('given an operator action from the CLI, when built, then it is an AuditEvent the table summarizes by operator, action, target and patient', () => {
    const e = buildOperatorAuditEvent({
      id: base.id,
      recorded: base.recorded,
      action: 'dlq.redrive',
      crud: 'E',
      target: 'hub.dlq.portal/0/7',
      patientId: 'P1',
      operator: 'alice',
      host: 'ops-box',
      reason: 'INC-9 fixed',
      detail: { to: 'clinical.patient.v1' },
      observer: 'hub-cli',
    });
    expect(isAuditEvent(e)).toBe(true);
    expect(e).toMatchObject({
      action: 'E',
      outcome: '0',
      purposeOfEvent: [{ text: 'INC-9 fixed' }],
      agent: [{ who: { identifier: { value: 'alice' } }, network: { address: 'ops-box', type: '1' } }],
      entity: [
        { what: { reference: 'Patient/P1' } },
        {
          what: { display: 'hub.dlq.portal/0/7' },
          detail: [{ type: 'to', valueString: 'clinical.patient.v1' }],
        },
      ],
    });
    expect(summarize(e)).toEqual({
      auditId: base.id,
      recordedAt: '2026-11-25T12:00:00.000Z',
      patientId: 'P1',
      agent: 'alice',
      clientId: null,
      action: 'dlq.redrive',
      route: 'hub.dlq.portal/0/7',
      outcome: '0',
      sourceAddress: 'ops-box',
    });
  });
  it('given an operator action without reason, patient or detail, when built, then none is invented', () => {
    const e = buildOperatorAuditEvent({
      id: base.id,
      recorded: base.recorded,
      action: 'dlq.discard',
      crud: 'U',
      target: 'hl7.dlq.v1/0/3',
      patientId: null,
      operator: 'bob',
      host: 'h',
      reason: null,
      detail: {},
      observer: 'hub-cli',
    });
    expect(e.purposeOfEvent).toBeUndefined();
    expect(e.entity).toEqual([expect.not.objectContaining({ detail: expect.anything() as unknown })]);
    expect(summarize(e).patientId).toBeNull();
  });
});

describe('auditRecordOf (issue #17: a NUL in an audit event stopped the audit table)', () => {
  const ok = buildAuditEvent({ ...base, status: 200, patientId: 'P1', who: null, denyReason: null });
  it('given a well-formed AuditEvent, then it can be appended', () => {
    expect(auditRecordOf(ok)).toEqual({ event: ok });
  });
  it('given a patient reference with U+0000 (as a JSON escape on the wire), then it is refused as unstorable-text', () => {
    const wire = JSON.stringify(
      buildAuditEvent({ ...base, status: 200, patientId: 'P1\u0000', who: null, denyReason: null }),
    );
    expect(wire).toContain('\\u0000');
    expect(auditRecordOf(JSON.parse(wire))).toEqual({ rejected: 'unstorable-text' });
  });
  it('given something that is not an AuditEvent, then it is refused as not-an-audit-event', () => {
    expect(auditRecordOf(null)).toEqual({ rejected: 'not-an-audit-event' });
    expect(auditRecordOf({ ...ok, id: 'nope' })).toEqual({ rejected: 'not-an-audit-event' });
  });
});
