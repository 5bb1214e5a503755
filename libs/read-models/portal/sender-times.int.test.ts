import type { Encounter } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, dropSchema, type Knex } from '../../db/index.js';
import { migrateProjection } from '../../projections/runner.js';
import { endpoints, uniqueId } from '../../../test/support/harness.js';
import { portalProjection } from './model.js';

/**
 * Migration 0111 on a portal projected before it (real Postgres): the search
 * instant `date_at` is filled from the UTC strings rows hold, and encounters
 * that kept 0104 offsets get their period rendered into the resource, as the
 * API served it until then.
 */
describe('portal migration 0111_portal_sender_times', () => {
  let db: Knex;
  let schema: string;

  beforeAll(() => {
    db = createDb(endpoints().databaseUrl);
    schema = uniqueId('portal0111').toLowerCase();
  });
  afterAll(async () => {
    await dropSchema(db, schema);
    await db.destroy();
  });

  it('given rows from before 0111, when migrated, then date_at holds their instants and 0104 offsets are rendered', async () => {
    // Given a portal migrated up to 0110 with an encounter (start offset kept), an order and a report
    const full = portalProjection(['t']);
    const before = {
      ...full,
      migrations: full.migrations.filter((m) => m.name !== '0111_portal_sender_times'),
    };
    await migrateProjection(db, schema, before);
    const encounter: Encounter = {
      resourceType: 'Encounter',
      id: 'E1',
      status: 'finished',
      class: { code: 'IMP' },
      period: { start: '2026-01-15T13:00:00.000Z', end: '2026-01-16T22:00:00.000Z' },
    };
    await db
      .withSchema(schema)
      .into('encounters')
      .insert({
        encounter_id: 'E1',
        patient_id: 'P1',
        visible: true,
        resource: JSON.stringify(encounter),
        start_offset_minutes: -300,
        end_offset_minutes: null,
      });
    await db
      .withSchema(schema)
      .into('service_requests')
      .insert({
        order_id: 'O1',
        patient_id: 'P1',
        resource: JSON.stringify({
          resourceType: 'ServiceRequest',
          id: 'O1',
          authoredOn: '2026-01-15T13:05:00.000Z',
        }),
      });
    await db
      .withSchema(schema)
      .into('reports')
      .insert({
        result_id: 'R1',
        patient_id: 'P1',
        visible: true,
        version_rank: 2,
        version_at: new Date(0),
        version_event: '00000000-0000-4000-8000-000000000001',
        resource: JSON.stringify({ resourceType: 'DiagnosticReport', id: 'R1' }),
      });

    // When 0111 is applied
    expect(await migrateProjection(db, schema, full)).toEqual(['0111_portal_sender_times']);

    // Then date_at holds each row's instant (null when the resource has no such time)
    const at = async (table: string) =>
      (await db.withSchema(schema).from(table).first<{ date_at: Date | null }>('date_at'))?.date_at;
    expect(await at('encounters')).toEqual(new Date('2026-01-15T13:00:00Z'));
    expect(await at('service_requests')).toEqual(new Date('2026-01-15T13:05:00Z'));
    expect(await at('reports')).toBeNull();
    // And the encounter's start is in the kept offset, its end (no offset kept) still UTC
    const row = await db.withSchema(schema).from('encounters').first<{ resource: Encounter }>('resource');
    expect(row?.resource.period).toEqual({
      start: '2026-01-15T08:00:00-05:00',
      end: '2026-01-16T22:00:00.000Z',
    });
  });
});
