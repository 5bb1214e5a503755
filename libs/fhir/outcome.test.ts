import { validateResource } from '@medplum/core';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, HubError, type ErrorCode } from '../errors/index.js';
import { toOperationOutcome } from './outcome.js';
import { loadFhirDefinitions } from './validate.js';

describe('toOperationOutcome', () => {
  it("given every hub code, when answered, then a conformant R4 OperationOutcome with the code's status and issue type", () => {
    loadFhirDefinitions();
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
      const { status, outcome } = toOperationOutcome(new HubError(code, 'x'));
      expect(status, code).toBe(ERROR_CODES[code].httpStatus);
      expect(outcome.issue[0], code).toMatchObject({
        severity: status >= 500 ? 'fatal' : 'error',
        code: ERROR_CODES[code].fhirIssue,
      });
      expect(() => validateResource(outcome), code).not.toThrow();
    }
  });

  it('given a driver error quoting data, when answered, then 500 exception naming the code, not the text', () => {
    const { status, outcome } = toOperationOutcome(new Error('(mrn)=(Zzcanary) violates unique constraint'));
    expect(status).toBe(500);
    expect(outcome.issue).toEqual([
      { severity: 'fatal', code: 'exception', diagnostics: 'HUB_INTERNAL: an unexpected internal error' },
    ]);
  });

  it("given the framework's rate limit (a plain object with 429), when answered, then throttled with its message", () => {
    const { status, outcome } = toOperationOutcome({
      statusCode: 429,
      message: 'Rate limit exceeded, retry in 1 minute',
    });
    expect(status).toBe(429);
    expect(outcome.issue).toEqual([
      { severity: 'error', code: 'throttled', diagnostics: 'Rate limit exceeded, retry in 1 minute' },
    ]);
  });
});
