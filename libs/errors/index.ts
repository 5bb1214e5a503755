/**
 * One error model for the whole hub. Every failure that crosses a module
 * boundary is a HubError with a code from this closed list; edges (HL7 ACK,
 * FHIR OperationOutcome, CLI exit code, HTTP status) map codes, never messages.
 * Messages must not contain PHI: they may travel to other systems and logs.
 *
 * Each code carries its edges here, as fastify's createError(code, message,
 * statusCode) does, so that a new code is mapped everywhere at once and no
 * edge keeps a table of its own. Adding a code: add it below with every edge
 * (the compiler refuses a missing one); the tests check the edges agree.
 *
 * This module imports nothing: every layer (libs, services, cli) depends on it.
 */

/** CLI exit codes scripts can rely on (cli/hub.ts documents them for operators). */
export const EXIT = { OK: 0, FAILED: 1, USAGE: 2, INCOMPATIBLE: 3, UNAVAILABLE: 4 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** FHIR R4 IssueType (http://hl7.org/fhir/issue-type), the codes of OperationOutcome.issue.code. */
export type FhirIssueType =
  | 'invalid'
  | 'structure'
  | 'required'
  | 'value'
  | 'invariant'
  | 'security'
  | 'login'
  | 'unknown'
  | 'expired'
  | 'forbidden'
  | 'suppressed'
  | 'processing'
  | 'not-supported'
  | 'duplicate'
  | 'multiple-matches'
  | 'not-found'
  | 'deleted'
  | 'too-long'
  | 'code-invalid'
  | 'extension'
  | 'too-costly'
  | 'business-rule'
  | 'conflict'
  | 'transient'
  | 'lock-error'
  | 'no-store'
  | 'exception'
  | 'timeout'
  | 'incomplete'
  | 'throttled'
  | 'informational';

/** What an HL7 v2 sender is told: the application ACK code and an HL7 table 0357 error code. */
export interface Hl7Edge {
  ack: 'AE' | 'AR';
  code: string;
}

export interface ErrorSpec {
  /** Whether a retry might succeed (a HubError may override it per instance). */
  retriable: boolean;
  description: string;
  httpStatus: number;
  fhirIssue: FhirIssueType;
  /** Absent for codes an HL7 sender never causes (auth, ops, projections). */
  hl7?: Hl7Edge;
  exitCode: ExitCode;
  /**
   * Whether the error's own message may be sent to a caller (HTTP body, FHIR
   * diagnostics). False for every 5xx code: their messages can quote a driver
   * (SQL text, broker replies) and so data; the caller gets the description.
   */
  expose: boolean;
}

// "Application internal error": the sender did nothing wrong and should resend later.
const AR_207: Hl7Edge = { ack: 'AR', code: '207' };

export const ERROR_CODES = {
  HUB_CONFIG_INVALID: {
    retriable: false,
    description: 'configuration is missing or invalid',
    httpStatus: 500,
    fhirIssue: 'exception',
    exitCode: EXIT.USAGE,
    expose: false,
  },
  HUB_SCHEMA_INVALID: {
    retriable: false,
    description: 'an Avro schema file is malformed or unresolvable',
    httpStatus: 500,
    fhirIssue: 'exception',
    hl7: AR_207,
    exitCode: EXIT.USAGE,
    expose: false,
  },
  HUB_SCHEMA_INCOMPATIBLE: {
    retriable: false,
    description: 'the registry refused a schema as incompatible with earlier versions',
    httpStatus: 500,
    fhirIssue: 'exception',
    exitCode: EXIT.INCOMPATIBLE,
    expose: false,
  },
  HUB_SCHEMA_NOT_REGISTERED: {
    retriable: false,
    description: 'no schema is registered for this subject',
    httpStatus: 500,
    fhirIssue: 'exception',
    hl7: AR_207,
    exitCode: EXIT.FAILED,
    expose: false,
  },
  HUB_REGISTRY_UNAVAILABLE: {
    retriable: true,
    description: 'the schema registry did not answer',
    httpStatus: 503,
    fhirIssue: 'transient',
    hl7: AR_207,
    exitCode: EXIT.UNAVAILABLE,
    expose: false,
  },
  HUB_EVENT_INVALID: {
    retriable: false,
    description: 'an event does not match its Avro contract',
    httpStatus: 422,
    fhirIssue: 'processing',
    // The mapper built an event its contract refuses: our bug, not the sender's content.
    hl7: AR_207,
    exitCode: EXIT.USAGE,
    expose: true,
  },
  HUB_EVENT_UNDECODABLE: {
    retriable: false,
    description:
      'a record on a topic is not a decodable event (wrong magic byte, unknown schema id, corrupt payload)',
    httpStatus: 500,
    fhirIssue: 'exception',
    exitCode: EXIT.FAILED,
    expose: false,
  },
  HUB_EVENT_UNKNOWN_TYPE: {
    retriable: false,
    description: 'a decoded record is not a known event type',
    httpStatus: 500,
    fhirIssue: 'exception',
    exitCode: EXIT.FAILED,
    expose: false,
  },
  HUB_KAFKA_UNAVAILABLE: {
    retriable: true,
    description: 'the Kafka broker did not acknowledge in time',
    httpStatus: 503,
    fhirIssue: 'transient',
    hl7: AR_207,
    exitCode: EXIT.UNAVAILABLE,
    expose: false,
  },
  HUB_KAFKA_ERROR: {
    retriable: false,
    description: 'Kafka refused a request',
    httpStatus: 500,
    fhirIssue: 'exception',
    hl7: AR_207,
    exitCode: EXIT.FAILED,
    expose: false,
  },
  HUB_DB_UNAVAILABLE: {
    retriable: true,
    description: 'PostgreSQL is unreachable',
    httpStatus: 503,
    fhirIssue: 'transient',
    hl7: AR_207,
    exitCode: EXIT.UNAVAILABLE,
    expose: false,
  },
  HUB_DB_ERROR: {
    retriable: false,
    description: 'PostgreSQL refused a statement',
    httpStatus: 500,
    fhirIssue: 'exception',
    hl7: AR_207,
    exitCode: EXIT.FAILED,
    expose: false,
  },
  HUB_PROJECTION_FAILED: {
    retriable: false,
    description: 'a projection could not apply an event',
    httpStatus: 500,
    fhirIssue: 'exception',
    exitCode: EXIT.FAILED,
    expose: false,
  },
  HUB_INPUT_INVALID: {
    retriable: false,
    description: 'input from a user or source system is invalid',
    httpStatus: 400,
    fhirIssue: 'invalid',
    // Data type error; a refusal that knows better carries its own code in details.hl7ErrorCode.
    hl7: { ack: 'AE', code: '102' },
    exitCode: EXIT.USAGE,
    expose: true,
  },
  HUB_NOT_FOUND: {
    retriable: false,
    description: 'the requested resource does not exist',
    httpStatus: 404,
    fhirIssue: 'not-found',
    exitCode: EXIT.FAILED,
    expose: true,
  },
  HUB_CONFLICT: {
    retriable: false,
    description: 'the request conflicts with the current state (e.g. unlinking records that are not linked)',
    httpStatus: 409,
    fhirIssue: 'conflict',
    exitCode: EXIT.FAILED,
    expose: true,
  },
  HUB_INFRA_FAILED: {
    retriable: false,
    description: 'local infrastructure could not be started',
    httpStatus: 500,
    fhirIssue: 'exception',
    exitCode: EXIT.UNAVAILABLE,
    expose: false,
  },
  HUB_UNAUTHENTICATED: {
    retriable: false,
    description: 'no valid bearer token was presented',
    httpStatus: 401,
    fhirIssue: 'login',
    exitCode: EXIT.FAILED,
    expose: true,
  },
  HUB_FORBIDDEN: {
    retriable: false,
    description: 'the token does not grant access to this resource',
    httpStatus: 403,
    fhirIssue: 'forbidden',
    exitCode: EXIT.FAILED,
    expose: true,
  },
  HUB_SENDER_NOT_ALLOWED: {
    retriable: false,
    description: 'the connection may not send messages as this sender',
    httpStatus: 403,
    fhirIssue: 'forbidden',
    // Table 0357 (v2.5-v2.9) has no "not authorised" code. MSH-3/MSH-4 take their values
    // from user tables 0361/0362, and the value sent is not in this peer's table of
    // senders: "103 table value not found", at MSH-3, with AR (not AE): resending the
    // same message over the same connection cannot succeed. 207 would say it is our fault.
    hl7: { ack: 'AR', code: '103' },
    exitCode: EXIT.FAILED,
    expose: true,
  },
  HUB_AUDIT_CHAIN_BROKEN: {
    retriable: false,
    description: 'the audit log hash chain does not verify',
    httpStatus: 500,
    fhirIssue: 'exception',
    exitCode: EXIT.FAILED,
    expose: false,
  },
  HUB_AUTH_UNAVAILABLE: {
    retriable: true,
    description: 'the identity provider (JWKS) did not answer',
    httpStatus: 503,
    fhirIssue: 'transient',
    exitCode: EXIT.UNAVAILABLE,
    expose: false,
  },
  HUB_INTERNAL: {
    retriable: false,
    description: 'an unexpected internal error',
    httpStatus: 500,
    fhirIssue: 'exception',
    hl7: AR_207,
    exitCode: EXIT.FAILED,
    expose: false,
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface HubErrorOptions {
  cause?: unknown;
  /** Overrides the code's default, e.g. a DB error known to be a lost connection. */
  retriable?: boolean;
  /** Non-PHI structured details (field paths, subject names, offsets). */
  details?: Record<string, unknown>;
}

export class HubError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: HubErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HubError';
    this.code = code;
    this.retriable = options.retriable ?? ERROR_CODES[code].retriable;
    this.details = options.details ?? {};
  }

  toJSON(): { code: ErrorCode; message: string; retriable: boolean; details: Record<string, unknown> } {
    return { code: this.code, message: this.message, retriable: this.retriable, details: this.details };
  }
}

export function isHubError(err: unknown): err is HubError {
  return err instanceof HubError;
}

/** Wraps anything thrown into a HubError, keeping HubErrors as they are. */
export function toHubError(err: unknown, fallback: ErrorCode = 'HUB_INTERNAL'): HubError {
  if (err instanceof HubError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new HubError(fallback, message, { cause: err });
}

/** Whether a retry might succeed; unknown errors are not retried. */
export function isRetriable(err: unknown): boolean {
  return err instanceof HubError ? err.retriable : false;
}

/** Every edge of a code. */
export function errorSpec(code: ErrorCode): ErrorSpec {
  return ERROR_CODES[code];
}

/**
 * A client error raised by the HTTP framework itself (fastify's bad JSON,
 * body too large, unsupported media type, schema validation, rate limit):
 * not a HubError, with a 4xx statusCode. Its message names the request's
 * shape or a schema rule, never the data, so it may go back to the caller.
 */
export function frameworkClientError(err: unknown): { statusCode: number; message: string } | undefined {
  if (err instanceof HubError || typeof err !== 'object' || err === null) return undefined;
  const e = err as { statusCode?: unknown; code?: unknown; message?: unknown };
  if (typeof e.statusCode !== 'number' || e.statusCode < 400 || e.statusCode >= 500) return undefined;
  // A HUB_ code on something that is not a HubError is a copy of ours: not the framework's.
  if (typeof e.code === 'string' && e.code.startsWith('HUB_')) return undefined;
  const message = typeof e.message === 'string' && e.message !== '' ? e.message : 'bad request';
  return { statusCode: e.statusCode, message };
}

/** HTTP status for anything thrown: a HubError's code, a framework 4xx as it is, else 500. */
export function httpStatusOf(err: unknown): number {
  if (err instanceof HubError) return ERROR_CODES[err.code].httpStatus;
  return frameworkClientError(err)?.statusCode ?? 500;
}

/**
 * Text safe to send to a caller: the message of an exposable code or of a
 * framework 4xx; otherwise the code's description (for anything unknown,
 * HUB_INTERNAL's), never the message, which may quote driver text or data.
 */
export function publicMessage(err: unknown): string {
  if (err instanceof HubError) {
    const spec = ERROR_CODES[err.code];
    return spec.expose ? err.message : spec.description;
  }
  return frameworkClientError(err)?.message ?? ERROR_CODES.HUB_INTERNAL.description;
}

/** CLI exit code for anything thrown (unknown errors: FAILED). */
export function exitCodeOf(err: unknown): ExitCode {
  return err instanceof HubError ? ERROR_CODES[err.code].exitCode : EXIT.FAILED;
}
