import { describe, expect, it } from 'vitest';
import { HubError } from '../errors/index.js';
import {
  dlqTopicFor,
  dlqTopicsOf,
  isDlqTopic,
  matches,
  parseDeadLetter,
  redriveRecord,
  safeHeaders,
} from './dlq.js';
import type { ScannedRecord } from './scan.js';

const rec = (headers: Record<string, string>, value: Buffer | null = Buffer.from([0, 0, 0, 0, 1, 2])) =>
  ({
    topic: 'hub.dlq.portal',
    partition: 0,
    offset: '7',
    key: Buffer.from('P-1'),
    value,
    headers,
    timestamp: Date.UTC(2026, 0, 2),
  }) satisfies ScannedRecord;

const runnerHeaders = {
  'hub-event-type': 'PatientRegistered',
  'hub-event-id': '2b1b7a8e-0000-4000-8000-000000000001',
  'hub-source': 'EHR',
  'hub-dlq-reason-code': 'HUB_PROJECTION_FAILED',
  'hub-dlq-reason': 'portal could not apply a batch',
  'hub-dlq-consumer': 'hub.projection.portal.portal_v1',
  'hub-dlq-source-topic': 'clinical.patient.v1',
  'hub-dlq-source-partition': '3',
  'hub-dlq-source-offset': '41',
  'hub-dlq-failed-at': '2026-01-02T00:00:01.000Z',
};

describe('isDlqTopic', () => {
  it('recognises the hub, HL7 and suffixed DLQ names and nothing else', () => {
    expect(isDlqTopic('hub.dlq.patient-directory')).toBe(true);
    expect(isDlqTopic('hl7.dlq.v1.test_1')).toBe(true);
    expect(isDlqTopic('hub.dlq.abc_12')).toBe(true);
    expect(isDlqTopic('clinical.patient.v1')).toBe(false);
    expect(isDlqTopic('hub.dlqx')).toBe(false);
  });
});

describe('dlqTopicFor', () => {
  it("names a consumer's dead-letter topic, with the deployment's topic naming applied", () => {
    expect(dlqTopicFor('patient-directory')).toBe('hub.dlq.patient-directory');
    expect(dlqTopicFor('adapter-fhir', (n) => `${n}.test_1`)).toBe('hub.dlq.adapter-fhir.test_1');
    expect(isDlqTopic(dlqTopicFor('projector-portal'))).toBe(true);
  });
});

describe('dlqTopicsOf', () => {
  it('keeps the DLQ topics of this deployment only', () => {
    const all = ['hub.dlq.a', 'hub.dlq.a.t1', 'hl7.dlq.v1.t1', 'clinical.patient.v1.t1', 'hub.dlq.b.t2'];
    expect(dlqTopicsOf(all, 't1')).toEqual(['hub.dlq.a.t1', 'hl7.dlq.v1.t1']);
    expect(dlqTopicsOf(all, undefined)).toEqual([
      'hub.dlq.a',
      'hub.dlq.a.t1',
      'hl7.dlq.v1.t1',
      'hub.dlq.b.t2',
    ]);
  });
});

describe('parseDeadLetter', () => {
  it('given a record parked by the consumer runner, reads reason, consumer and source, and it is redrivable', () => {
    const d = parseDeadLetter(rec(runnerHeaders));
    expect(d).toMatchObject({
      kind: 'consumer',
      reasonCode: 'HUB_PROJECTION_FAILED',
      consumer: 'hub.projection.portal.portal_v1',
      source: { topic: 'clinical.patient.v1', partition: 3, offset: '41' },
      failedAt: '2026-01-02T00:00:01.000Z',
      eventType: 'PatientRegistered',
      redrivable: true,
    });
  });
  it('given an HL7 adapter dead letter, names the sender and control id and is not redrivable', () => {
    const d = parseDeadLetter(
      rec(
        {
          'hl7-raw-id': 'r1',
          'hl7-sender': 'LAB|MAIN',
          'hl7-control-id': 'C-9',
          'hl7-message-type': 'ORU^R01',
          'hl7-received-at': '2026-01-02T00:00:00.000Z',
          'hub-reason-code': 'missing_pid3',
        },
        Buffer.from('MSH|...'),
      ),
    );
    expect(d).toMatchObject({
      kind: 'hl7-adapter',
      reasonCode: 'missing_pid3',
      consumer: 'adapter-hl7',
      origin: 'LAB|MAIN #C-9 ORU^R01',
      redrivable: false,
    });
  });
  it('given a FHIR import dead letter, points at the import and line', () => {
    const d = parseDeadLetter(
      rec({
        'hub-dlq-reason-code': 'invalid',
        'hub-dlq-source': 'fhir-import',
        'hub-dlq-line': '12',
        'hub-dlq-import': 'http:abc',
      }),
    );
    expect(d).toMatchObject({ kind: 'fhir-import', origin: 'http:abc line 12', redrivable: false });
  });
  it('given a record without known headers, still lists it as unknown', () => {
    expect(parseDeadLetter(rec({}))).toMatchObject({
      kind: 'unknown',
      reasonCode: 'unknown',
      redrivable: false,
    });
  });
});

describe('redriveRecord', () => {
  it('given a runner dead letter, rebuilds the original record for its source topic without DLQ headers', () => {
    const r = redriveRecord(rec(runnerHeaders), 'clinical.patient.v1', Date.UTC(2026, 0, 3));
    expect(r.topic).toBe('clinical.patient.v1');
    expect(r.key?.toString()).toBe('P-1');
    expect(r.headers).toEqual({
      'hub-event-type': 'PatientRegistered',
      'hub-event-id': '2b1b7a8e-0000-4000-8000-000000000001',
      'hub-source': 'EHR',
      'hub-redriven-from': 'hub.dlq.portal/0/7',
      'hub-redriven-at': '2026-01-03T00:00:00.000Z',
    });
  });
  it('refuses an HL7 dead letter and says to remap instead', () => {
    expect(() => redriveRecord(rec({ 'hub-reason-code': 'x', 'hl7-raw-id': 'r' }), 't', 0)).toThrow(
      /hub hl7 remap/,
    );
    expect(() => redriveRecord(rec({}), 't', 0)).toThrow(HubError);
  });
});

describe('matches and safeHeaders', () => {
  it('filters by consumer, reason and partition:offset', () => {
    const d = parseDeadLetter(rec(runnerHeaders));
    expect(matches(d, {})).toBe(true);
    expect(matches(d, { at: ['0:7'] })).toBe(true);
    expect(matches(d, { at: ['0:8'] })).toBe(false);
    expect(matches(d, { reasonCode: 'HUB_PROJECTION_FAILED', consumer: 'other' })).toBe(false);
  });
  it('shows only the hub’s own headers', () => {
    expect(safeHeaders({ 'hub-x': '1', 'hl7-sender': 'A|B', 'x-patient-name': 'Doe' })).toEqual({
      'hub-x': '1',
      'hl7-sender': 'A|B',
      'x-patient-name': '[not shown]',
    });
  });
});
