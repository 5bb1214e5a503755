import { describe, expect, it } from 'vitest';
import { deadLetterRow } from './dead-letters.js';

describe('dead-letter tally: a row from headers and position only', () => {
  it('given an HL7 adapter dead letter, then the source is the sending application and the reason its code', () => {
    const r = deadLetterRow('hl7.dlq.v1', 2, '17', '1767225600000', {
      'hl7-sender': Buffer.from('LABSYS|GENHOSP'),
      'hub-reason-code': Buffer.from('HL7_UNSUPPORTED_TYPE'),
    });
    expect(r).toEqual({
      position: 'hl7.dlq.v1|2|17',
      dlq_topic: 'hl7.dlq.v1',
      source: 'hl7:LABSYS',
      reason: 'HL7_UNSUPPORTED_TYPE',
      recorded_at: new Date(1767225600000),
    });
  });

  it('given a FHIR import or projector dead letter, then its own source and reason headers are used', () => {
    expect(
      deadLetterRow('hub.dlq.adapter-fhir', 0, '1', '0', {
        'hub-dlq-source': 'fhir-import',
        'hub-dlq-reason-code': 'HUB_INPUT_INVALID',
      }),
    ).toMatchObject({ source: 'fhir-import', reason: 'HUB_INPUT_INVALID' });
    expect(
      deadLetterRow('hub.dlq.projector-billing', 0, '1', '0', {
        'hub-dlq-consumer': 'hub.projection.billing.billing_v1',
        'hub-dlq-reason-code': 'HUB_EVENT_UNDECODABLE',
      }),
    ).toMatchObject({ source: 'hub.projection.billing.billing_v1', reason: 'HUB_EVENT_UNDECODABLE' });
  });

  it('given no headers, then the record still counts, as unknown', () => {
    expect(deadLetterRow('t', 0, '5', '0', undefined)).toMatchObject({
      source: 'unknown',
      reason: 'unknown',
    });
  });
});
