import type { AuditEvent } from '@medplum/fhirtypes';
import { randomUUID } from 'node:crypto';
import { buildAuditEvent } from '../../libs/audit/event.js';

/** An AuditEvent as the API builds one for a read of `patientId`'s record, by `subject`. */
export function readAuditEvent(patientId: string | null, subject = 'nurse-1'): AuditEvent {
  return buildAuditEvent({
    id: randomUUID(),
    recorded: Date.now(),
    interaction: 'read',
    route: 'GET /fhir/Patient/:id',
    resourceType: 'Patient',
    status: 200,
    patientId,
    who: { subject, clientId: 'ward-app', scopes: ['user/*.rs'] },
    denyReason: null,
    sourceAddress: '10.0.0.7',
    observer: 'hub-api',
  });
}
