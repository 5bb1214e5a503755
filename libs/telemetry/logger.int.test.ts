import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endpoints, eventually, uniqueId } from '../../test/support/harness.js';
import { createDb, toDbError, type Knex } from '../db/index.js';
import { toHubError } from '../errors/index.js';
import { deleteTopics, ensureTopics } from '../kafka/admin.js';
import { createKafkaClient, type KafkaClient } from '../kafka/client.js';
import { createLogger, type Logger } from './logger.js';

const CANARY = 'Zzcanary5519';

/**
 * The PHI-canary test on real drivers (#17: "kafkajs error logs forward pg's
 * where/detail (data) unredacted"): errors Postgres raises with the canary in
 * their detail, where, hint and message, logged through the hub logger the
 * ways the hub and kafkajs log them, and a real kafkajs consumer whose batch
 * handler fails with one of them. No line may carry the canary.
 */
describe('PHI canary: Postgres and Kafka errors through the hub logger', () => {
  let db: Knex;
  let kafka: KafkaClient;
  let logger: Logger;
  const lines: string[] = [];
  const table = uniqueId('canary');
  const topic = uniqueId('canarytopic');

  beforeAll(async () => {
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString('utf8'));
        done();
      },
    });
    logger = createLogger({ name: 'canary-int', level: 'debug', destination });
    db = createDb(endpoints().databaseUrl);
    await db.raw(`create table public.?? (mrn text primary key, n int)`, [table]);
    kafka = createKafkaClient({ brokers: endpoints().kafkaBrokers, clientId: uniqueId('canary'), logger });
    await ensureTopics(kafka, [{ name: topic, partitions: 1, replicationFactor: 1, retentionMs: 3_600_000 }]);
  });
  afterAll(async () => {
    await db.raw(`drop table if exists public.??`, [table]);
    await db.destroy();
    await deleteTopics(kafka, [topic]);
  });

  /** The error a statement raises (every one of these must fail). */
  const raised = async (q: () => Promise<unknown>): Promise<Error> => {
    const err = await q().then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    if (!err) throw new Error('the statement was expected to fail');
    return err;
  };

  /**
   * Unique violation (detail, and knex's message with the bindings), the same
   * inside PL/pgSQL (where quotes the statement), RAISE with DETAIL and HINT,
   * bad input (the message quotes the value).
   */
  async function postgresErrors(): Promise<Error[]> {
    await db(table).del();
    await db(table).insert({ mrn: CANARY, n: 1 });
    return [
      await raised(() => db(table).insert({ mrn: CANARY, n: 2 })),
      await raised(() => db.raw(`do $$ begin insert into public.${table} values ('${CANARY}', 3); end $$`)),
      await raised(() =>
        db.raw(
          `do $$ begin raise exception using message = 'refused', detail = '${CANARY}', hint = 'see ${CANARY}'; end $$`,
        ),
      ),
      await raised(() => db(table).where({ n: CANARY })),
    ];
  }

  it('has canaries to leak: the driver errors carry it in detail, where, hint and message', async () => {
    const errs = await postgresErrors();
    const fields = errs.map((e) => e as unknown as Record<string, unknown>);
    expect(fields[0]?.['detail']).toContain(CANARY);
    expect(fields[1]?.['where']).toContain(CANARY);
    expect(fields[1]?.['detail']).toContain(CANARY);
    expect(fields[2]?.['detail']).toContain(CANARY);
    expect(fields[2]?.['hint']).toContain(CANARY);
    expect(fields[3]?.['message']).toContain(CANARY);
    await db(table).del();
  });

  it('logs Postgres errors every way the hub does with no canary, keeping SQLSTATE and constraint', async () => {
    lines.length = 0;
    for (const e of await postgresErrors()) {
      logger.error({ err: e }, 'statement failed');
      logger.error(e);
      logger.error({ err: toHubError(e) }, 'wrapped');
      logger.error({ err: toDbError(e) }, 'mapped');
      logger.warn({ error: e, stack: e.stack }, `Crash: ${e.name}: ${e.message}`);
    }
    await db(table).del();
    const out = lines.join('');
    expect(lines.length).toBe(20);
    expect(out).not.toContain(CANARY);
    expect(out).toContain('23505');
    expect(out).toContain(`${table}_pkey`);
    expect(out).toContain('22P02');
  });

  it('logs a kafkajs consumer whose batch handler failed on Postgres with no canary', async () => {
    lines.length = 0;
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ key: 'k', value: 'v' }] });
    await producer.disconnect();
    await db(table).insert({ mrn: CANARY, n: 1 });
    const consumer = kafka.consumer({
      groupId: uniqueId('canary'),
      retry: { retries: 0, restartOnFailure: () => Promise.resolve(false) },
    });
    let crashed = false;
    consumer.on(consumer.events.CRASH, () => {
      crashed = true;
    });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachBatch: async () => {
        await db(table).insert({ mrn: CANARY, n: 2 });
      },
    });
    await eventually(() => Promise.resolve(crashed ? true : undefined), {
      what: 'the consumer to crash',
      timeoutMs: 60_000,
    });
    await consumer.disconnect();
    await db(table).del();
    const out = lines.join('');
    expect(out).toContain('Error when calling eachBatch');
    expect(out).toContain('Crash');
    expect(out).toContain('23505');
    expect(out).not.toContain(CANARY);
  });
});
