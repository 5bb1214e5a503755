import type { Resource } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClinicalEvent } from '../../events/index.js';
import { migrateProjection, type Projection } from '../../projections/runner.js';
import { allergy, coverage, diagnosis } from '../../../test/support/clinical-facts.js';
import { createTestContext, type TestContext } from '../../../test/support/harness.js';
import { admitted, at, merged, registered } from '../../../test/support/hospital-day.js';
import { asRecords } from '../../../test/support/read-model-testing.js';
import { portalProjection } from './model.js';

/**
 * Allergies, conditions and coverage in real Postgres: migration 0120, the
 * patient_record view serving them, and a merge moving them (and the element
 * naming the patient in each resource) to the survivor.
 */
describe('portal clinical facts (Postgres)', () => {
  let ctx: TestContext;
  let p: Projection;
  const schema = () => `${ctx.schema}_pc`;

  beforeAll(async () => {
    ctx = await createTestContext('portalclin');
    p = portalProjection(['t']);
    await migrateProjection(ctx.db, schema(), p);
  });
  afterAll(async () => {
    await ctx.db.raw(`drop schema if exists ${schema()} cascade`);
    await ctx.cleanup();
  });

  const apply = (events: ClinicalEvent[]) =>
    ctx.db.transaction((trx) => p.apply(trx, schema(), asRecords(events)));
  const record = async (patientId: string) =>
    (
      await ctx.db
        .withSchema(schema())
        .from('patient_record')
        .where({ patient_id: patientId })
        .orderBy(['resource_type', 'resource_id'])
        .select<{ resource_type: string; resource_id: string; resource: Resource }[]>(
          'resource_type',
          'resource_id',
          'resource',
        )
    ).map((r) => [r.resource_type, r.resource_id]);

  it('given facts of a retired patient, when merged, then the survivor serves them, each naming the survivor', async () => {
    // Given P9's allergy, diagnosis (on its visit) and coverage, and one withdrawn allergy
    await apply([
      registered('P1', 'Alpha', 'Ann', 'r1', at(7)),
      registered('P9', 'Alpha', 'Anne', 'r9', at(7)),
      admitted('P9', 'E9', 'inpatient', 'W1', 'a9', at(8)),
      allergy({ patientId: 'P9', allergyId: 'AL9', encounterId: 'E9' }),
      allergy({ patientId: 'P9', allergyId: 'AL9X', verificationStatus: 'entered-in-error' }),
      diagnosis({ patientId: 'P9', diagnosisId: 'D9', encounterId: 'E9' }),
      coverage({ patientId: 'P9', coverageId: 'C9', encounterId: 'E9' }),
    ]);
    expect(await record('P9')).toEqual([
      ['AllergyIntolerance', 'AL9'],
      ['Condition', 'D9'],
      ['Coverage', 'C9'],
      ['Encounter', 'E9'],
      ['Patient', 'P9'],
    ]);

    // When P9 is merged into P1
    await apply([merged('P1', 'P9', 'm1', at(9))]);

    // Then P1's record has them, and each resource names P1
    expect((await record('P1')).filter(([t]) => t !== 'Patient')).toEqual([
      ['AllergyIntolerance', 'AL9'],
      ['Condition', 'D9'],
      ['Coverage', 'C9'],
      ['Encounter', 'E9'],
    ]);
    const one = async (table: string, key: string, id: string) =>
      (
        await ctx.db
          .withSchema(schema())
          .from(table)
          .where(key, id)
          .first<{ resource: Record<string, unknown> }>('resource')
      )?.resource;
    expect((await one('allergies', 'allergy_id', 'AL9'))?.['patient']).toEqual({ reference: 'Patient/P1' });
    expect((await one('conditions', 'condition_id', 'D9'))?.['subject']).toEqual({ reference: 'Patient/P1' });
    expect((await one('coverages', 'coverage_id', 'C9'))?.['beneficiary']).toEqual({
      reference: 'Patient/P1',
    });
    // And the visit lists its diagnosis
    expect((await one('encounters', 'encounter_id', 'E9'))?.['diagnosis']).toMatchObject([
      { condition: { reference: 'Condition/D9' }, rank: 1 },
    ]);
  });
});
