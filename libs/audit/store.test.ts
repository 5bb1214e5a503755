import { describe, expect, it } from 'vitest';
import { HubError } from '../errors/index.js';
import { dataErrorCode } from './store.js';

describe('dataErrorCode', () => {
  it('given a Postgres data exception (class 22), then its SQLSTATE, also through a wrapping cause', () => {
    expect(
      dataErrorCode(Object.assign(new Error('unsupported Unicode escape sequence'), { code: '22P05' })),
    ).toBe('22P05');
    const pg = Object.assign(new Error('invalid input syntax for type uuid'), { code: '22P02' });
    expect(dataErrorCode(new HubError('HUB_DB_ERROR', 'refused', { cause: pg }))).toBe('22P02');
  });
  it('given a retriable or other failure, then null: the batch is retried, not skipped', () => {
    expect(dataErrorCode(Object.assign(new Error('connection'), { code: 'ECONNRESET' }))).toBeNull();
    expect(dataErrorCode(Object.assign(new Error('admin shutdown'), { code: '57P01' }))).toBeNull();
    expect(dataErrorCode(Object.assign(new Error('unique'), { code: '23505' }))).toBeNull();
    expect(dataErrorCode(null)).toBeNull();
  });
});
