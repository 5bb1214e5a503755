import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { HubError, toHubError } from '../errors/index.js';
import { createLogger } from './logger.js';
import { foreignTexts, isDriverError, scrubForLog, stackFrames } from './redact.js';

const CANARY = 'Zzcanary4471';

/** A Postgres error as node-postgres raises it, after knex prefixed the statement with its bindings. */
function pgError(): Error {
  const e = new Error(`value too long for type character varying(8): "${CANARY}"`);
  Object.assign(e, {
    name: 'error',
    length: 120,
    severity: 'ERROR',
    code: '23505',
    detail: `Key (mrn)=(${CANARY}) already exists.`,
    hint: `look at ${CANARY}`,
    where: `SQL statement "insert into patients values ('${CANARY}')"`,
    internalQuery: `select '${CANARY}'`,
    schema: 'portal_v1',
    table: 'patients',
    constraint: 'patients_pkey',
    routine: '_bt_check_unique',
  });
  e.message = `insert into "patients" ("mrn") values ('${CANARY}') - ${e.message}`;
  return e;
}

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  return { logger: createLogger({ name: 'redact-test', destination, level: 'debug' }), lines };
}

describe('log redaction of driver errors', () => {
  it('given a Postgres error, when logged as err, then no data field, message or stack header reaches the log; codes and names stay', () => {
    const { logger, lines } = capture();
    logger.error({ err: pgError() }, 'insert failed');
    const out = lines.join('');
    expect(out).not.toContain(CANARY);
    expect(out).toContain('23505');
    expect(out).toContain('patients_pkey');
    expect(out).toContain('insert failed');
    const err = (JSON.parse(out) as { err: Record<string, unknown> }).err;
    expect(err).toMatchObject({
      detail: '[REDACTED]',
      where: '[REDACTED]',
      hint: '[REDACTED]',
      message: '[REDACTED]',
    });
  });

  it('given a Postgres error logged alone, then the line message is not its text', () => {
    const { logger, lines } = capture();
    logger.error(pgError());
    expect(lines.join('')).not.toContain(CANARY);
    expect(JSON.parse(lines[0] ?? '{}')).toMatchObject({ msg: '[REDACTED]', err: { code: '23505' } });
  });

  it('given a hub error that copied the driver message (toHubError), then the copy is redacted, its cause too', () => {
    const { logger, lines } = capture();
    logger.error({ err: toHubError(pgError()) }, 'batch failed');
    logger.warn({
      err: new HubError('HUB_DB_ERROR', 'postgres refused a statement (23505)', { cause: pgError() }),
    });
    const out = lines.join('');
    expect(out).not.toContain(CANARY);
    expect(out).toContain('postgres refused a statement (23505)');
    expect(out).toContain('HUB_DB_ERROR');
  });

  it('given kafkajs entries (eachBatch error object, crash line quoting the message, bare stack), then nothing of the data', () => {
    const { logger, lines } = capture();
    const e = pgError();
    const kafkajs = logger.child({ component: 'kafkajs' });
    kafkajs.error(
      { namespace: 'Runner', topic: 't', partition: 0, stack: e.stack, error: e },
      'Error when calling eachBatch',
    );
    kafkajs.error({ namespace: 'Consumer', groupId: 'g', stack: e.stack }, `Crash: ${e.name}: ${e.message}`);
    kafkajs.error({ nested: { deeper: { parameters: [CANARY], cause: { err: e } } } }, 'deep');
    const out = lines.join('');
    expect(out).not.toContain(CANARY);
    expect(out).toContain('Crash: error: ');
    expect(out).toContain('Error when calling eachBatch');
  });

  it("keeps what is not a driver's data: kafkajs's own errors and plain errors stay readable", () => {
    const { logger, lines } = capture();
    const conn = new Error('Connection error: connect ECONNREFUSED 127.0.0.1:9092');
    conn.name = 'KafkaJSConnectionError';
    logger.error({ stack: conn.stack }, `Crash: ${conn.name}: ${conn.message}`);
    logger.warn({ err: new Error('socket hang up') }, 'retrying');
    const out = lines.join('');
    expect(out).toContain('ECONNREFUSED 127.0.0.1:9092');
    expect(out).toContain('socket hang up');
  });

  it('still censors PHI keys, survives cycles, and leaves the caller objects untouched', () => {
    const { logger, lines } = capture();
    const loop: Record<string, unknown> = { family: CANARY };
    loop['self'] = loop;
    const e = pgError();
    logger.info({ loop, err: e }, 'cyclic');
    expect(lines.join('')).not.toContain(CANARY);
    expect((e as unknown as { detail: string }).detail).toContain(CANARY);
  });
});

describe('redact helpers', () => {
  it('recognises a Postgres error by severity and SQLSTATE, nothing else', () => {
    expect(isDriverError(pgError())).toBe(true);
    expect(isDriverError(new HubError('HUB_DB_ERROR', 'x'))).toBe(false);
    expect(isDriverError({ severity: 'ERROR', code: 'ECONNREFUSED' })).toBe(false);
  });

  it('keeps stack frames only', () => {
    expect(stackFrames(`error: ${CANARY}\n    at f (a.js:1:1)`)).toBe('    at f (a.js:1:1)');
  });

  it('collects the driver texts once, longest first', () => {
    const texts = foreignTexts({ a: pgError(), b: { stack: `error: ${CANARY} short\n    at x` } });
    expect(texts.every((t) => t.includes(CANARY))).toBe(true);
    expect([...texts].sort((a, b) => b.length - a.length)).toEqual(texts);
  });

  it('copies arrays and plain objects, keeps dates and buffers as they are', () => {
    const at = new Date(0);
    const buf = Buffer.from('x');
    expect(scrubForLog({ at, buf, list: [{ detail: CANARY }] })).toEqual({
      at,
      buf,
      list: [{ detail: '[REDACTED]' }],
    });
  });
});
