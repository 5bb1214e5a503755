import { pino, type Logger, type DestinationStream, type LogFn } from 'pino';
import { foreignTexts, scrubForLog, withoutForeign } from './redact.js';

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

/**
 * Every log call's object is scrubbed of driver error fields, driver
 * messages and stack headers (./redact.ts), and its message of the texts
 * those carried (kafkajs puts a failed handler's message in the log line).
 * An error logged alone is logged as `{ err }` with its scrubbed message.
 */
function scrubCall(args: Parameters<LogFn>): Parameters<LogFn> {
  const [first, ...rest] = args as unknown[];
  if (typeof first !== 'object' || first === null) return args;
  const foreign = foreignTexts(first);
  const view = scrubForLog(first, foreign) as Record<string, unknown>;
  const msg = rest[0];
  const cleanRest = typeof msg === 'string' ? [withoutForeign(msg, foreign), ...rest.slice(1)] : rest;
  if (first instanceof Error) {
    const text = typeof msg === 'string' ? cleanRest[0] : view['message'];
    return [{ err: view }, text, ...cleanRest.slice(1)] as Parameters<LogFn>;
  }
  return [view, ...cleanRest] as Parameters<LogFn>;
}

/** For `err` / `error` in child bindings, which do not pass through a log call. */
const scrubValue = (v: unknown) => scrubForLog(v);

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
      serializers: { err: scrubValue, error: scrubValue },
      hooks: {
        logMethod(args, method) {
          method.apply(this, scrubCall(args));
        },
      },
      base: { service: opts.name },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.destination,
  );
}
