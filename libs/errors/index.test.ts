import { describe, expect, it } from 'vitest';
import {
  ERROR_CODES,
  EXIT,
  HubError,
  errorSpec,
  exitCodeOf,
  httpStatusOf,
  isRetriable,
  publicMessage,
  toHubError,
  type ErrorCode,
  type FhirIssueType,
} from './index.js';

const CODES = Object.keys(ERROR_CODES) as ErrorCode[];
const CANARY = 'duplicate key value (mrn)=(Zzcanary) violates unique constraint';

// The R4 IssueType value set (http://hl7.org/fhir/R4/valueset-issue-type.html).
const FHIR_ISSUE_TYPES: readonly FhirIssueType[] = [
  'invalid',
  'structure',
  'required',
  'value',
  'invariant',
  'security',
  'login',
  'unknown',
  'expired',
  'forbidden',
  'suppressed',
  'processing',
  'not-supported',
  'duplicate',
  'multiple-matches',
  'not-found',
  'deleted',
  'too-long',
  'code-invalid',
  'extension',
  'too-costly',
  'business-rule',
  'conflict',
  'transient',
  'lock-error',
  'no-store',
  'exception',
  'timeout',
  'incomplete',
  'throttled',
  'informational',
];
// HL7 table 0357 codes (message error condition codes) the hub may send.
const TABLE_0357 = ['0', '100', '101', '102', '103', '200', '201', '202', '203', '204', '205', '206', '207'];

/**
 * Code -> [http, fhir issue, hl7 "ack code" or "-", exit, expose]: every edge
 * in one place, pinned. HTTP statuses are the most specific of the tables
 * this replaced (libs/http, api, adapter-fhir); exit codes are the CLI's.
 */
const EDGES: Record<ErrorCode, [number, FhirIssueType, string, number, boolean]> = {
  HUB_CONFIG_INVALID: [500, 'exception', '-', EXIT.USAGE, false],
  HUB_SCHEMA_INVALID: [500, 'exception', 'AR 207', EXIT.USAGE, false],
  HUB_SCHEMA_INCOMPATIBLE: [500, 'exception', '-', EXIT.INCOMPATIBLE, false],
  HUB_SCHEMA_NOT_REGISTERED: [500, 'exception', 'AR 207', EXIT.FAILED, false],
  HUB_REGISTRY_UNAVAILABLE: [503, 'transient', 'AR 207', EXIT.UNAVAILABLE, false],
  HUB_EVENT_INVALID: [422, 'processing', 'AR 207', EXIT.USAGE, true],
  HUB_EVENT_UNDECODABLE: [500, 'exception', '-', EXIT.FAILED, false],
  HUB_EVENT_UNKNOWN_TYPE: [500, 'exception', '-', EXIT.FAILED, false],
  HUB_KAFKA_UNAVAILABLE: [503, 'transient', 'AR 207', EXIT.UNAVAILABLE, false],
  HUB_KAFKA_ERROR: [500, 'exception', 'AR 207', EXIT.FAILED, false],
  HUB_DB_UNAVAILABLE: [503, 'transient', 'AR 207', EXIT.UNAVAILABLE, false],
  HUB_DB_ERROR: [500, 'exception', 'AR 207', EXIT.FAILED, false],
  HUB_PROJECTION_FAILED: [500, 'exception', '-', EXIT.FAILED, false],
  HUB_INPUT_INVALID: [400, 'invalid', 'AE 102', EXIT.USAGE, true],
  HUB_NOT_FOUND: [404, 'not-found', '-', EXIT.FAILED, true],
  HUB_CONFLICT: [409, 'conflict', '-', EXIT.FAILED, true],
  HUB_INFRA_FAILED: [500, 'exception', '-', EXIT.UNAVAILABLE, false],
  HUB_UNAUTHENTICATED: [401, 'login', '-', EXIT.FAILED, true],
  HUB_FORBIDDEN: [403, 'forbidden', '-', EXIT.FAILED, true],
  HUB_SENDER_NOT_ALLOWED: [403, 'forbidden', 'AR 103', EXIT.FAILED, true],
  HUB_AUDIT_CHAIN_BROKEN: [500, 'exception', '-', EXIT.FAILED, false],
  HUB_AUTH_UNAVAILABLE: [503, 'transient', '-', EXIT.UNAVAILABLE, false],
  HUB_INTERNAL: [500, 'exception', 'AR 207', EXIT.FAILED, false],
};

describe('ERROR_CODES: every code owns its edges', () => {
  it.each(CODES)(
    'given %s, then it has a status, a FHIR issue type, an exit code and an expose flag',
    (code) => {
      const s = errorSpec(code);
      expect(s.description).not.toBe('');
      expect(s.httpStatus).toBeGreaterThanOrEqual(400);
      expect(s.httpStatus).toBeLessThan(600);
      expect(FHIR_ISSUE_TYPES).toContain(s.fhirIssue);
      expect(Object.values(EXIT)).toContain(s.exitCode);
      expect(s.exitCode).not.toBe(EXIT.OK);
      expect(typeof s.expose).toBe('boolean');
      if (s.hl7) {
        expect(['AE', 'AR']).toContain(s.hl7.ack);
        expect(TABLE_0357).toContain(s.hl7.code);
      }
    },
  );

  it('given the edge table, when read per code, then each edge is the one pinned here', () => {
    const actual = Object.fromEntries(
      CODES.map((c) => {
        const s = errorSpec(c);
        return [
          c,
          [s.httpStatus, s.fhirIssue, s.hl7 ? `${s.hl7.ack} ${s.hl7.code}` : '-', s.exitCode, s.expose],
        ];
      }),
    );
    expect(actual).toEqual(EDGES);
  });

  it('given a code a retry may cure, then it answers 503 transient and exits "unavailable", and the converse', () => {
    for (const code of CODES) {
      const s = errorSpec(code);
      expect(s.retriable, code).toBe(s.httpStatus === 503);
      expect(s.retriable, code).toBe(s.fhirIssue === 'transient');
      if (s.retriable) expect(s.exitCode, code).toBe(EXIT.UNAVAILABLE);
    }
  });

  it("given a 5xx code, then its message is never exposed; a 4xx code is the caller's to read", () => {
    for (const code of CODES) expect(errorSpec(code).expose, code).toBe(errorSpec(code).httpStatus < 500);
  });

  it('given a code whose AR an HL7 sender gets, then it is AR for our failures and AE only for its content', () => {
    for (const code of CODES) {
      const hl7 = errorSpec(code).hl7;
      if (hl7?.ack === 'AE') expect(errorSpec(code).httpStatus, code).toBeLessThan(500);
    }
  });
});

describe('publicMessage', () => {
  it.each(CODES.filter((c) => !ERROR_CODES[c].expose))(
    'given %s carrying driver text, when answered, then only the description is sent',
    (code) => {
      const msg = publicMessage(new HubError(code, CANARY));
      expect(msg).not.toContain('Zzcanary');
      expect(msg).toBe(errorSpec(code).description);
    },
  );

  it('given an exposable code, when answered, then its own (PHI-free) message is sent', () => {
    expect(publicMessage(new HubError('HUB_FORBIDDEN', 'access denied (patient-mismatch)'))).toBe(
      'access denied (patient-mismatch)',
    );
  });

  it("given an unknown thrown error, when answered, then HUB_INTERNAL's description, not its text", () => {
    expect(publicMessage(new Error(CANARY))).toBe(ERROR_CODES.HUB_INTERNAL.description);
    expect(publicMessage('Zzcanary')).not.toContain('Zzcanary');
    expect(publicMessage(undefined)).toBe(ERROR_CODES.HUB_INTERNAL.description);
  });

  it("given the framework's own 4xx (bad JSON), when answered, then its message, which names no data", () => {
    const fst = Object.assign(
      new Error("Body is not valid JSON but content-type is set to 'application/json'"),
      {
        statusCode: 400,
        code: 'FST_ERR_CTP_INVALID_JSON_BODY',
      },
    );
    expect(publicMessage(fst)).toBe(fst.message);
  });
});

describe('httpStatusOf', () => {
  it('given a HubError, then its code decides, whatever else it carries', () => {
    expect(httpStatusOf(new HubError('HUB_DB_UNAVAILABLE', 'query exceeded 300 ms'))).toBe(503);
    expect(httpStatusOf(new HubError('HUB_EVENT_INVALID', 'x'))).toBe(422);
    expect(httpStatusOf(Object.assign(new HubError('HUB_INTERNAL', 'x'), { statusCode: 404 }))).toBe(500);
  });

  it("given the framework's 4xx, then its status; its 5xx or anything unknown, then 500", () => {
    expect(
      httpStatusOf(
        Object.assign(new Error('too large'), { statusCode: 413, code: 'FST_ERR_CTP_BODY_TOO_LARGE' }),
      ),
    ).toBe(413);
    expect(httpStatusOf(Object.assign(new Error('boom'), { statusCode: 500 }))).toBe(500);
    expect(httpStatusOf(new Error(CANARY))).toBe(500);
    expect(httpStatusOf(null)).toBe(500);
  });

  it('given something that only looks like a HubError (a HUB_ code and a 4xx), then it is not trusted: 500', () => {
    expect(httpStatusOf({ code: 'HUB_NOT_FOUND', statusCode: 404, message: CANARY })).toBe(500);
    expect(publicMessage({ code: 'HUB_NOT_FOUND', statusCode: 404, message: CANARY })).not.toContain(
      'Zzcanary',
    );
  });
});

describe('exitCodeOf', () => {
  it("given a HubError, then its code's exit code; anything else fails with 1", () => {
    expect(exitCodeOf(new HubError('HUB_SCHEMA_INCOMPATIBLE', 'x'))).toBe(3);
    expect(exitCodeOf(new HubError('HUB_KAFKA_UNAVAILABLE', 'x'))).toBe(4);
    expect(exitCodeOf(new HubError('HUB_INPUT_INVALID', 'x'))).toBe(2);
    expect(exitCodeOf(new Error('x'))).toBe(EXIT.FAILED);
  });
});

describe('HubError API (unchanged)', () => {
  it('given a wrapped unknown error, then HUB_INTERNAL, not retriable, the cause kept', () => {
    const cause = new Error('boom');
    const h = toHubError(cause);
    expect(h).toMatchObject({ code: 'HUB_INTERNAL', retriable: false, message: 'boom', cause });
    expect(toHubError(h)).toBe(h);
    expect(isRetriable(new HubError('HUB_KAFKA_ERROR', 'x', { retriable: true }))).toBe(true);
    expect(isRetriable(new Error('x'))).toBe(false);
  });
});
