import { describe, expect, it } from 'vitest';
import { auditDeadLetter, auditIdOf } from './topic.js';

describe('audit dead letters', () => {
  const at = {
    topic: 'hub.audit.v1',
    partition: 0,
    dlqTopic: 'hub.dlq.audit',
    groupId: 'hub.audit.projector.audit',
  };
  const now = new Date(Date.UTC(2026, 11, 5, 18, 0, 0));

  it('given a poison record, when dead-lettered, then it keeps key and value and carries the reason, where it came from and its audit id', () => {
    const value = Buffer.from('{"resourceType":"AuditEvent"}');
    const rec = auditDeadLetter(
      { key: Buffer.from('P1'), value, headers: { 'content-type': 'application/fhir+json' }, offset: '42' },
      at,
      'unstorable-text',
      '0b6f7f1c-1111-4222-8333-944455556666',
      now,
    );
    expect(rec).toMatchObject({ topic: 'hub.dlq.audit', key: Buffer.from('P1'), value });
    expect(rec.headers).toEqual({
      'content-type': 'application/fhir+json',
      'hub-audit-id': '0b6f7f1c-1111-4222-8333-944455556666',
      'hub-dlq-reason-code': 'unstorable-text',
      'hub-dlq-reason':
        'audit record cannot be appended: holds U+0000 or a lone surrogate, which Postgres text cannot store',
      'hub-dlq-consumer': 'hub.audit.projector.audit',
      'hub-dlq-source-topic': 'hub.audit.v1',
      'hub-dlq-source-partition': '0',
      'hub-dlq-source-offset': '42',
      'hub-dlq-failed-at': '2026-12-05T18:00:00.000Z',
    });
  });

  it('given a record whose id header is forged and whose value has no id, when dead-lettered, then no audit id is carried', () => {
    const rec = auditDeadLetter(
      { key: null, value: Buffer.from('x'), headers: { 'hub-audit-id': 'Jane Doe' }, offset: '1' },
      at,
      'sqlstate-22P05',
      null,
      now,
    );
    expect(rec.headers?.['hub-audit-id']).toBeUndefined();
    expect(rec.headers?.['hub-dlq-reason']).toBe(
      'audit record cannot be appended: Postgres refused it as data (22P05)',
    );
  });

  it('given values of any shape, then only a uuid-shaped id is taken (anything else may be PHI)', () => {
    expect(auditIdOf({ id: '0b6f7f1c-1111-4222-8333-944455556666' })).toBe(
      '0b6f7f1c-1111-4222-8333-944455556666',
    );
    expect(auditIdOf({ id: 'MRN-12345' })).toBeNull();
    expect(auditIdOf(null)).toBeNull();
    expect(auditIdOf('x')).toBeNull();
  });
});
