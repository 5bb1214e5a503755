import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sqlArray } from '../db/index.js';
import { topicArray } from './runner.js';

describe('topicArray', () => {
  it('property: given any topics in any order, then the literal is the one sqlArray writes element by element', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom('clinical.patient.v1', 'a"b', 'c\\d', 'NULL', 'x,y{z}')),
        (topics) => {
          // Given records of those topics, when written as one literal
          const records = topics.map((topic) => ({ topic }));
          // Then it is what quoting each one gives
          expect(topicArray(records)).toBe(sqlArray(topics));
        },
      ),
    );
  });
});
