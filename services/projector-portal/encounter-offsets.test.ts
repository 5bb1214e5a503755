import { describe, expect, it } from 'vitest';
import type { ClinicalEvent, SourceTime } from '../../libs/events/index.js';
import { evolveAll } from '../../libs/projections/testing.js';
import { admitted, discharged, dischargeCancelled } from '../../test/support/hospital-day.js';
import { evolve, type PortalTables } from './domain.js';

const run = (...events: ClinicalEvent[]) => evolveAll<PortalTables>(evolve, events);

/** The event with these source times recorded, as the HL7 mapper writes them. */
function sentAs(e: ClinicalEvent, ...times: SourceTime[]): ClinicalEvent {
  return { ...e, data: { ...e.data, meta: { ...e.data.meta, sourceTimes: times } } } as ClinicalEvent;
}
const zoned = (field: string, offsetMinutes: number): SourceTime => ({
  field,
  precision: 'minute',
  offsetMinutes,
  zoned: true,
});

const T8 = Date.UTC(2026, 0, 15, 13, 0); // 08:00 in New York
const T17 = Date.UTC(2026, 0, 16, 22, 0); // 17:00 in New York the next day

describe('portal: encounter period offsets', () => {
  it('given an admission sent at 08:00 New York time, then the row keeps UTC in the resource and -300 beside it', () => {
    const d = run(sentAs(admitted('P1', 'E1', 'inpatient', '4W', 'a1', T8), zoned('admittedAt', -300)));
    expect(d.get('encounters', 'E1')).toMatchObject({
      start_offset_minutes: -300,
      end_offset_minutes: null,
      resource: { period: { start: '2026-01-15T13:00:00.000Z' } },
    });
  });

  it('given a discharge sent in the same zone, then the end offset is kept; a cancelled discharge drops it', () => {
    const adm = sentAs(admitted('P1', 'E1', 'inpatient', '4W', 'a1', T8), zoned('admittedAt', -300));
    const dis = sentAs(discharged('P1', 'E1', 'a2', T17), zoned('endedAt', -300));
    expect(run(adm, dis).get('encounters', 'E1')).toMatchObject({
      start_offset_minutes: -300,
      end_offset_minutes: -300,
    });
    const undone = run(adm, dis, dischargeCancelled('P1', 'E1', 'a3', T17 + 60_000));
    expect(undone.get('encounters', 'E1')?.end_offset_minutes).toBeNull();
    expect(undone.get('encounters', 'E1')?.start_offset_minutes).toBe(-300);
  });

  it('given events without source times (recorded before offsets were kept), then no offsets: served as UTC', () => {
    const d = run(admitted('P1', 'E1', 'inpatient', '4W', 'a1', T8), discharged('P1', 'E1', 'a2', T17));
    expect(d.get('encounters', 'E1')).toMatchObject({ start_offset_minutes: null, end_offset_minutes: null });
  });

  it('given an admission without admittedAt, then the start offset is that of meta.occurredAt', () => {
    const e = admitted('P1', 'E1', 'inpatient', '4W', 'a1', T8);
    const noAdmit = { ...e, data: { ...e.data, admittedAt: null } } as ClinicalEvent;
    const d = run(sentAs(noAdmit, zoned('meta.occurredAt', 60)));
    expect(d.get('encounters', 'E1')?.start_offset_minutes).toBe(60);
  });
});
