import { describe, expect, it } from 'vitest';
import { isAuditEvent, summarize } from '../audit/event.js';
import { parseDeadLetter } from './dlq.js';
import { auditEntryFor, dlqAuditEvent, patientOf, type FoundDeadLetter } from './dlq-ops.js';
import type { ScannedRecord } from './scan.js';

const found = (headers: Record<string, string>, key: string | null = 'P-1'): FoundDeadLetter => {
  const rec: ScannedRecord = {
    topic: 'hub.dlq.portal',
    partition: 0,
    offset: '7',
    key: key === null ? null : Buffer.from(key),
    value: Buffer.from([0, 0, 0, 0, 1, 2]),
    headers,
    timestamp: Date.UTC(2026, 0, 2),
  };
  return { rec, info: { ...parseDeadLetter(rec), state: 'open', stateReason: null } };
};

const runner = {
  'hub-event-type': 'PatientRegistered',
  'hub-dlq-reason-code': 'HUB_PROJECTION_FAILED',
  'hub-dlq-consumer': 'hub.projection.portal',
  'hub-dlq-source-topic': 'clinical.patient.v1',
  'hub-dlq-source-partition': '3',
  'hub-dlq-source-offset': '41',
};
const hl7 = { 'hl7-raw-id': 'r1', 'hub-reason-code': 'HUB_EVENT_INVALID' };

describe('patientOf', () => {
  it('given a clinical event the consumer runner parked, then its key is the patient', () => {
    expect(patientOf(found(runner))).toBe('P-1');
  });
  it('given an HL7 adapter dead letter or no key, then no patient is named', () => {
    expect(patientOf(found(hl7, 'LAB|MAIN'))).toBeNull();
    expect(patientOf(found(runner, null))).toBeNull();
  });
});

describe('dlqAuditEvent', () => {
  const id = '7f9c2b2e-1f1a-4c1e-9a53-2d2f1f0c0a11';
  const who = { name: 'alice', host: 'ops-box' };
  it('given a redrive, then an AuditEvent the audit table keeps: who, which record, whose, where it went, why', () => {
    const e = dlqAuditEvent(
      auditEntryFor(found(runner), 'dlq.redrive', 'INC-9', { to: 'clinical.patient.v1' }),
      who,
      Date.UTC(2026, 0, 3),
      id,
    );
    expect(isAuditEvent(e)).toBe(true);
    expect(e.action).toBe('E');
    expect(e.purposeOfEvent).toEqual([{ text: 'INC-9' }]);
    expect(summarize(e)).toMatchObject({
      auditId: id,
      action: 'dlq.redrive',
      agent: 'alice',
      route: 'hub.dlq.portal/0/7',
      patientId: 'P-1',
      sourceAddress: 'ops-box',
      outcome: '0',
    });
  });
  it('maps show-with-PHI to a read and discard to an update', () => {
    const d = found(hl7);
    expect(dlqAuditEvent(auditEntryFor(d, 'dlq.show.include-phi', 'INC-1'), who, 0, id).action).toBe('R');
    expect(dlqAuditEvent(auditEntryFor(d, 'dlq.discard', 'junk'), who, 0, id).action).toBe('U');
  });
});
