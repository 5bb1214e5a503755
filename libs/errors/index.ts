/**
 * One error model for the whole hub. Every failure that crosses a module
 * boundary is a HubError with a code from this closed list; edges (HL7 ACK,
 * FHIR OperationOutcome, CLI exit code, HTTP status) map codes, never messages.
 * Messages must not contain PHI: they may travel to other systems and logs.
 */
export const ERROR_CODES = {
  HUB_CONFIG_INVALID: { retriable: false, description: 'configuration is missing or invalid' },
  HUB_SCHEMA_INVALID: { retriable: false, description: 'an Avro schema file is malformed or unresolvable' },
  HUB_SCHEMA_INCOMPATIBLE: {
    retriable: false,
    description: 'the registry refused a schema as incompatible with earlier versions',
  },
  HUB_SCHEMA_NOT_REGISTERED: { retriable: false, description: 'no schema is registered for this subject' },
  HUB_REGISTRY_UNAVAILABLE: { retriable: true, description: 'the schema registry did not answer' },
  HUB_EVENT_INVALID: { retriable: false, description: 'an event does not match its Avro contract' },
  HUB_EVENT_UNDECODABLE: {
    retriable: false,
    description:
      'a record on a topic is not a decodable event (wrong magic byte, unknown schema id, corrupt payload)',
  },
  HUB_EVENT_UNKNOWN_TYPE: { retriable: false, description: 'a decoded record is not a known event type' },
  HUB_KAFKA_UNAVAILABLE: { retriable: true, description: 'the Kafka broker did not acknowledge in time' },
  HUB_KAFKA_ERROR: { retriable: false, description: 'Kafka refused a request' },
  HUB_DB_UNAVAILABLE: { retriable: true, description: 'PostgreSQL is unreachable' },
  HUB_DB_ERROR: { retriable: false, description: 'PostgreSQL refused a statement' },
  HUB_PROJECTION_FAILED: { retriable: false, description: 'a projection could not apply an event' },
  HUB_INPUT_INVALID: { retriable: false, description: 'input from a user or source system is invalid' },
  HUB_NOT_FOUND: { retriable: false, description: 'the requested resource does not exist' },
  HUB_INFRA_FAILED: { retriable: false, description: 'local infrastructure could not be started' },
  HUB_UNAUTHENTICATED: { retriable: false, description: 'no valid bearer token was presented' },
  HUB_FORBIDDEN: { retriable: false, description: 'the token does not grant access to this resource' },
  HUB_AUDIT_CHAIN_BROKEN: { retriable: false, description: 'the audit log hash chain does not verify' },
  HUB_AUTH_UNAVAILABLE: { retriable: true, description: 'the identity provider (JWKS) did not answer' },
  HUB_INTERNAL: { retriable: false, description: 'an unexpected internal error' },
} as const satisfies Record<string, { retriable: boolean; description: string }>;

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
