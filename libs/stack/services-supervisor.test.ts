import { describe, expect, it } from 'vitest';
import { RESTART_BACKOFF, backoffMs, describeExit, loggedError } from './services-supervisor.js';

describe('loggedError', () => {
  it('keeps only the code and message of error and fatal lines', () => {
    // given service log lines, one with a field that may hold data
    const line = JSON.stringify({
      level: 50,
      code: 'HUB_DB_UNAVAILABLE',
      msg: 'database unreachable',
      patient: { mrn: 'MRN10001' },
    });
    // when / then
    expect(loggedError(line)).toEqual({ code: 'HUB_DB_UNAVAILABLE', msg: 'database unreachable' });
    expect(loggedError(JSON.stringify({ level: 60, msg: 'fatal' }))).toEqual({ msg: 'fatal' });
    expect(loggedError(JSON.stringify({ level: 40, code: 'X', msg: 'warning' }))).toBeUndefined();
    expect(loggedError(JSON.stringify({ level: 'error', code: 'X', msg: 'm' }))).toEqual({
      code: 'X',
      msg: 'm',
    });
    expect(loggedError('Error: Cannot find module MRN10001')).toBeUndefined();
    expect(loggedError('{not json')).toBeUndefined();
    expect(loggedError(JSON.stringify({ level: 50, code: { x: 1 }, msg: 7 }))).toEqual({});
  });
});

describe('describeExit', () => {
  it('says the exit code or signal and the last error, or that there was none', () => {
    expect(describeExit(1, null, { code: 'HUB_DB_UNAVAILABLE', msg: 'database unreachable' })).toBe(
      'exited with code 1 (last error: HUB_DB_UNAVAILABLE database unreachable)',
    );
    expect(describeExit(null, 'SIGKILL', null)).toBe('was killed by SIGKILL (no error line logged)');
  });
});

describe('backoffMs', () => {
  it('doubles from 0.5 s up to the 15 s cap', () => {
    expect([0, 1, 2, 3, 4, 5, 6].map((n) => backoffMs(RESTART_BACKOFF, n))).toEqual([
      500, 1000, 2000, 4000, 8000, 15_000, 15_000,
    ]);
  });
});
