import { randomBytes } from 'node:crypto';
import type { AuditEvent } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAuditEvent } from '../../test/support/audit-events.js';
import { endpoints, uniqueId } from '../../test/support/harness.js';
import { createDb, dropSchema, type Knex } from '../db/index.js';
import { AUDIT_TABLE, appendAudit, migrateAudit, verifyAuditChain } from './store.js';

/** An AuditEvent as the API builds one for a read; `odd` adds values whose jsonb text differs from JSON's. */
function event(n: number, odd: boolean): AuditEvent {
  const e = readAuditEvent(`P-${n % 7}`, `nurse-${n % 3}`);
  if (!odd) return e;
  // jsonb reorders keys (shorter first) and prints numbers as numeric does
  // (1e21 and 2^64 in full digits, 5e-324 as 324 decimals): the hash must not depend on either.
  return {
    ...e,
    extension: [
      { url: 'urn:hub:test:zz', valueDecimal: 1e21 },
      { url: 'urn:hub:test:a', valueDecimal: 5e-324 },
      { url: 'urn:hub:test:b', valueDecimal: 0.1 },
      { url: 'urn:hub:test:c', valueDecimal: 2 ** 64 },
      { url: 'urn:hub:test:d', valueString: 'e\u0301 ✓ 𝄞' },
    ],
  };
}

/**
 * `npx tsx scripts/bench-api.ts` printed "hub audit verify: BROKEN" after the
 * API had appended one audit row per request under load. The chain was
 * intact: the API keys it (chain version 2) and the bench walked it without
 * the key, which fails every keyed row as `key-required` at seq 1 (the bench
 * now keys the API with its own key file and verifies with it). What the
 * symptom pointed at is pinned here: appenders racing from several
 * processes, each with many transactions at once, with redelivered ids and
 * events whose jsonb text differs from their JSON, leave one chain that
 * verifies, seq 1..n without a gap, each id once.
 */
describe('regression: bench-api reported the audit chain BROKEN after concurrent appends', () => {
  const schema = uniqueId('audit_race').toLowerCase();
  const key = Buffer.from(randomBytes(48).toString('base64'), 'utf8');
  // One pool per "API process": its own Postgres sessions, as a second replica's would be.
  let pools: Knex[] = [];

  beforeAll(async () => {
    pools = [0, 1, 2].map(() => createDb(endpoints().databaseUrl, { pool: { min: 0, max: 4 } }));
    await migrateAudit(pools[0]!, schema);
  });

  afterAll(async () => {
    if (pools[0]) await dropSchema(pools[0], schema);
    await Promise.all(pools.map((p) => p.destroy()));
  });

  it('given three pools appending 60 transactions at once, some redelivering ids, then the keyed chain verifies with every event once; without the key it names the missing key at seq 1', async () => {
    // 60 batches of 1-4 events; every fifth batch also carries the previous batch's first event again.
    const batches: AuditEvent[][] = [];
    let n = 0;
    for (let b = 0; b < 60; b++) {
      const batch = Array.from({ length: 1 + (b % 4) }, () => event(n, n++ % 5 === 0));
      const earlier = batches[b - 1]?.[0];
      batches.push(b % 5 === 4 && earlier ? [...batch, earlier] : batch);
    }
    const ids = new Set(batches.flat().map((e) => e.id));

    const appended = await Promise.all(
      batches.map((batch, b) =>
        pools[b % pools.length]!.transaction((trx) => appendAudit(trx, schema, batch, key)),
      ),
    );

    expect(appended.reduce((a, x) => a + x, 0)).toBe(ids.size);
    const rows = await pools[0]!
      .withSchema(schema)
      .from(AUDIT_TABLE)
      .orderBy('seq')
      .select<{ seq: string; audit_id: string }[]>('seq', 'audit_id');
    expect(rows.map((r) => Number(r.seq))).toEqual(Array.from({ length: ids.size }, (_, i) => i + 1));
    expect(new Set(rows.map((r) => r.audit_id))).toEqual(ids);
    // Small pages too: the walk carries the chain across page boundaries.
    for (const pageSize of [7, 2000]) {
      expect(await verifyAuditChain(pools[1]!, schema, { key, pageSize })).toMatchObject({
        ok: true,
        rows: ids.size,
        keyedFrom: 1,
        unkeyedRows: 0,
      });
    }
    expect(await verifyAuditChain(pools[2]!, schema)).toEqual({
      ok: false,
      rows: 1,
      brokenAt: 1,
      reason: 'key-required',
    });
  });
});
