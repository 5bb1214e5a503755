import { describe, expect, it } from 'vitest';
import { findingPatterns, type FhirFileReport } from './fhir-validator.js';

const finding = (location: string, messageId: string, message = `msg ${messageId}`) => ({
  location,
  message,
  messageId,
});

describe('findingPatterns', () => {
  it('groups findings by message id and element path, list indexes and entry ids dropped, most frequent first', () => {
    // Given two files with the same fault at different entries and one other fault
    const files: FhirFileReport[] = [
      {
        file: 'a.json',
        errors: [
          finding('Bundle.entry[0].resource/*Patient/p1*/.communication[0].language', 'TX_Unknown'),
          finding('Bundle.entry[3].resource/*Patient/p2*/.communication[1].language', 'TX_Unknown'),
        ],
        warnings: [],
      },
      {
        file: 'b.json',
        errors: [
          finding('Patient.communication[0].language', 'TX_Unknown'),
          finding('Bundle.entry', '', 'Array cannot be empty'),
          finding('Bundle.entry[0].resource/*Patient/p9*/.communication[0].language', 'TX_Unknown'),
        ],
        warnings: [finding('Patient', 'dom-6')],
      },
    ];
    // When they are grouped
    const errors = findingPatterns({ files }, 'errors');
    // Then each mistake is one pattern, with its count and the files it is in
    expect(errors.map((p) => [p.count, p.location, p.messageId, p.files])).toEqual([
      [3, 'Bundle.entry[].resource(Patient).communication[].language', 'TX_Unknown', ['a.json', 'b.json']],
      [1, 'Bundle.entry', 'Array cannot be empty', ['b.json']],
      [1, 'Patient.communication[].language', 'TX_Unknown', ['b.json']],
    ]);
    expect(findingPatterns({ files }, 'warnings')).toEqual([
      { messageId: 'dom-6', location: 'Patient', count: 1, example: 'msg dom-6', files: ['b.json'] },
    ]);
  });
});
