import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codeOf, type ObservationValue } from '../../libs/events/index.js';
import { ANALYST_ROLE } from '../../libs/read-models/analytics/views.js';
import { normaliseRows, planView } from '../api/analytics-views.js';
import { diagnosed } from '../../test/support/coverage-diagnosis.js';
import { admitted, admissionCancelled, at, obs, resulted } from '../../test/support/hospital-day.js';
import { startProjectorRun, type ProjectorRun } from '../../test/support/projectors.js';

type Row = Record<string, unknown>;

const V2_0078 = 'http://terminology.hl7.org/CodeSystem/v2-0078';

/** An observation as an HL7 feed sends it after #18: LOINC (or local only), UCUM or text unit, flags. */
function value(loinc: string | null, flags: string[], ucum: boolean, seq: number): ObservationValue {
  const local = codeOf('urn:hl7:codesystem:99LAB', `L${seq}`, null);
  return {
    ...obs(loinc ?? `L${seq}`, 'Test', 1, 'mmol/L', null, 'final'),
    sequence: seq,
    code: loinc ? { ...codeOf('http://loinc.org', loinc, `LOINC ${loinc}`), alternates: [local] } : local,
    unitCode: ucum ? codeOf('http://unitsofmeasure.org', 'mmol/L', null) : null,
    interpretations: flags.map((f) => codeOf(V2_0078, f, null)),
    interpretation: flags[0] ? codeOf(V2_0078, flags[0], null) : null,
  };
}

/**
 * Result-level KPIs and encounters by principal diagnosis through the real
 * projection: events on real topics, the analytics projector, the views in
 * Postgres read as the analyst role and as the query API plans them.
 */
describe('analytics: result-level KPIs and principal diagnoses (real projection)', () => {
  let run: ProjectorRun;

  beforeAll(async () => {
    run = await startProjectorRun('resultkpis', ['analytics']);
    await run.publishInOrder([
      admitted('P1', 'E1', 'inpatient', '4WEST', 'k-a1', at(8)),
      admitted('P2', 'E2', 'emergency', 'ED', 'k-a2', at(9)),
      admitted('P3', 'E3', 'inpatient', '5EAST', 'k-a3', at(9)),
      admissionCancelled('P3', 'E3', 'k-a3c', at(10)),
      // E1: principal J18.9 (rank 1), secondary I10 (rank 2).
      diagnosed('P1', 'D1', 'E1', 'J18.9', 'Pneumonia', 1, 'k-d1', at(8, 30)),
      diagnosed('P1', 'D2', 'E1', 'I10', 'Hypertension', 2, 'k-d2', at(8, 30)),
      // E2: an unranked diagnosis, and a refuted one ranked first that does not count.
      diagnosed('P2', 'D3', 'E2', 'J18.9', 'Pneumonia', null, 'k-d3', at(9, 30)),
      diagnosed('P2', 'D4', 'E2', 'I21.4', 'NSTEMI', 1, 'k-d4', at(9, 30), 'refuted'),
      // A cancelled visit is not counted.
      diagnosed('P3', 'D5', 'E3', 'I10', 'Hypertension', 1, 'k-d5', at(9, 30)),
      resulted('P1', 'R1', 'O1', 'E1', 'bmp', 'final', 'k-r1', at(10), [
        value('2823-3', ['H', 'HH'], true, 1),
        value('2951-2', ['N'], true, 2),
        value(null, [], false, 3),
      ]),
      resulted('P2', 'R2', 'O2', 'E2', 'bmp', 'final', 'k-r2', at(11), [value('2823-3', ['LL'], true, 1)]),
      // Preliminary only: not released, not counted.
      resulted('P2', 'R3', 'O3', 'E2', 'bmp', 'preliminary', 'k-r3', at(11), [
        value('2823-3', ['HH'], true, 1),
      ]),
    ]);
    await run.caughtUp();
  });
  afterAll(async () => {
    await run?.cleanup();
  });

  const asAnalyst = (sql: string, bindings: readonly string[] = []) =>
    run.ctx.db.transaction(async (trx) => {
      await trx.raw(`set local role ${ANALYST_ROLE}`);
      return (await trx.raw<{ rows: Row[] }>(sql, bindings)).rows;
    });
  const viaApiPlan = async (view: string, groupBy?: string) => {
    const plan = planView(run.stable.analytics, { view, ...(groupBy ? { groupBy } : {}) });
    return normaliseRows(plan, await asAnalyst(plan.sql, plan.bindings));
  };

  it('given released results, then abnormal and critical rates by LOINC code, as the query API serves them', async () => {
    expect(await viaApiPlan('v_abnormal_rate_by_test')).toEqual([
      {
        loinc_code: '2823-3',
        display: 'LOINC 2823-3',
        observations: 2,
        abnormal: 2,
        critical: 2,
        abnormal_rate: 1,
        critical_rate: 1,
      },
      {
        loinc_code: '2951-2',
        display: 'LOINC 2951-2',
        observations: 1,
        abnormal: 0,
        critical: 0,
        abnormal_rate: 0,
        critical_rate: 0,
      },
    ]);
  });

  it('given critical flags HH and LL, then critical values by test, flag and sender, with distinct patients', async () => {
    expect(await viaApiPlan('v_critical_values')).toEqual([
      {
        code: '2823-3',
        display: 'LOINC 2823-3',
        flag: 'HH',
        source_system: 'LAB-LIS',
        critical: 1,
        patients: 1,
      },
      {
        code: '2823-3',
        display: 'LOINC 2823-3',
        flag: 'LL',
        source_system: 'LAB-LIS',
        critical: 1,
        patients: 1,
      },
    ]);
    expect(await viaApiPlan('v_critical_values', 'code')).toEqual([{ code: '2823-3', critical: 2 }]);
  });

  it('given observations with and without LOINC and units coded or not, then the data-quality views count them by sender', async () => {
    expect(await viaApiPlan('v_results_without_loinc')).toEqual([
      { source_system: 'LAB-LIS', observations: 4, without_loinc: 1, without_loinc_rate: 0.25 },
    ]);
    expect(await viaApiPlan('v_results_by_unit_system')).toEqual([
      { source_system: 'LAB-LIS', unit_system: 'text', observations: 1 },
      { source_system: 'LAB-LIS', unit_system: 'ucum', observations: 3 },
    ]);
  });

  it('given diagnoses, then encounters by principal diagnosis: lowest rank, refuted left out, cancelled visits not counted', async () => {
    expect(await viaApiPlan('v_encounters_by_principal_diagnosis')).toEqual([
      {
        encounter_class: 'emergency',
        code_system: 'http://hl7.org/fhir/sid/icd-10-cm',
        code: 'J18.9',
        display: 'Pneumonia',
        encounters: 1,
      },
      {
        encounter_class: 'inpatient',
        code_system: 'http://hl7.org/fhir/sid/icd-10-cm',
        code: 'J18.9',
        display: 'Pneumonia',
        encounters: 1,
      },
    ]);
    expect(await viaApiPlan('v_encounters_by_principal_diagnosis', 'code')).toEqual([
      { code: 'J18.9', encounters: 2 },
    ]);
  });

  it('given the analyst role, then the new fact tables are not readable, only their views', async () => {
    for (const t of ['observations', 'diagnoses'])
      await expect(asAnalyst(`select * from ${run.stable.analytics}.${t}`)).rejects.toMatchObject({
        code: '42501',
      });
  });
});
