import type { Knex } from 'knex';
import { toDbError } from '../../libs/db/index.js';
import { HubError } from '../../libs/errors/index.js';

/**
 * Every read of the API runs under a statement deadline: Postgres cancels
 * the query (not just the wait) and the client gets a retriable 503 instead
 * of a socket held open behind a lock or a runaway plan.
 */
export async function timedRead<T>(q: Knex.QueryBuilder | Knex.Raw, timeoutMs: number): Promise<T> {
  try {
    return (await q.timeout(timeoutMs, { cancel: true })) as T;
  } catch (err) {
    if ((err as { name?: unknown }).name === 'KnexTimeoutError') {
      throw new HubError('HUB_DB_UNAVAILABLE', `query exceeded ${timeoutMs} ms`, {
        cause: err,
        retriable: true,
      });
    }
    throw toDbError(err);
  }
}
