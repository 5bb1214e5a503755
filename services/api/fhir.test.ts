import { validateResource } from '@medplum/core';
import { describe, expect, it } from 'vitest';
import { buildAuditEvent } from '../../libs/audit/event.js';
import { loadFhirDefinitions } from '../../libs/fhir/validate.js';
import { capabilityStatement, errorAnswer, operationOutcome } from './fhir.js';
import { HubError } from '../../libs/errors/index.js';

describe('FHIR resources the API writes itself', () => {
  it('given the R4 definitions, when validated, then CapabilityStatement, OperationOutcome and AuditEvent conform', () => {
    loadFhirDefinitions();
    expect(() => validateResource(capabilityStatement())).not.toThrow();
    expect(() => validateResource(operationOutcome(403, 'access denied (patient-mismatch)'))).not.toThrow();
    const audit = buildAuditEvent({
      id: '7f9c2b2e-1f1a-4c1e-9a53-2d2f1f0c0a11',
      recorded: Date.UTC(2026, 10, 25),
      interaction: 'search-type',
      route: 'GET /fhir/Observation',
      resourceType: 'Observation',
      status: 403,
      patientId: 'P2',
      who: { subject: 'patient-p1', clientId: 'portal', scopes: ['patient/*.rs'] },
      denyReason: 'patient-mismatch',
      sourceAddress: '10.0.0.7',
      observer: 'hub-api',
    });
    expect(() => validateResource(audit)).not.toThrow();
  });
});

describe('error answers', () => {
  it('given driver errors, when answered, then their text is not sent', () => {
    const e = errorAnswer(new Error('duplicate key value (patient_id)=(Zzcanary) violates ...'));
    expect(e.status).toBe(500);
    expect(e.message).not.toContain('Zzcanary');
  });
  it('given hub errors, when answered, then the status follows the code', () => {
    expect(errorAnswer(new HubError('HUB_FORBIDDEN', 'access denied (patient-mismatch)'))).toEqual({
      status: 403,
      message: 'access denied (patient-mismatch)',
    });
    expect(errorAnswer(new HubError('HUB_DB_UNAVAILABLE', 'query exceeded 300 ms')).status).toBe(503);
  });
});
