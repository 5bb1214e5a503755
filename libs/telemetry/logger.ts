import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/**
 * Field names that carry PHI anywhere in a logged object. Code must not log
 * events or messages in the first place; this is the safety net for when
 * someone does. Censoring by key is coarse on purpose: a false positive costs
 * a redacted field, a false negative costs a reportable breach.
 */
export const PHI_KEYS = [
  'name',
  'names',
  'family',
  'given',
  'birthDate',
  'dob',
  'identifiers',
  'identifier',
  'mrn',
  'ssn',
  'address',
  'addresses',
  'telecom',
  'phone',
  'email',
  'demographics',
  'patient',
  'data',
  'body',
  'payload',
  'raw',
  'value',
  'text',
] as const;

const paths = PHI_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]).filter(
  // pino's own top-level message field must stay readable.
  (p) => p !== 'msg',
);

export interface LoggerOptions {
  name: string;
  level?: string;
  destination?: DestinationStream;
}

export function createLogger(opts: LoggerOptions): Logger {
  return pino(
    {
      // No pino `name`: a top-level "name" key is redacted like any other.
      level: opts.level ?? 'info',
      redact: { paths, censor: '[REDACTED]' },
      base: { service: opts.name },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.destination,
  );
}
