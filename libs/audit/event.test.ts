import { describe, expect, it } from 'vitest';
import { buildAuditEvent, isAuditEvent, outcomeOf, summarize } from './event.js';

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
});
