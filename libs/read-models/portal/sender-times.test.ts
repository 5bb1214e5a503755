import { describe, expect, it } from 'vitest';
import type { ClinicalEvent, SourceTime } from '../../events/index.js';
import { evolveAll } from '../../../test/support/read-model-testing.js';
import {
  admitted,
  demographicsUpdated,
  discharged,
  dischargeCancelled,
  obs,
  ordered,
  registered,
  resulted,
  transferred,
} from '../../../test/support/hospital-day.js';
import { evolve, type PortalTables } from './domain.js';

/**
 * The portal's resources show every time as the source sent it (offset and
 * precision from meta.sourceTimes); `date_at` keeps the instant for search.
 */
const run = (...events: ClinicalEvent[]) => evolveAll<PortalTables>(evolve, events);

/** The event with these source times recorded, as the HL7 mapper writes them. */
function sentAs(e: ClinicalEvent, ...times: SourceTime[]): ClinicalEvent {
  return { ...e, data: { ...e.data, meta: { ...e.data.meta, sourceTimes: times } } } as ClinicalEvent;
}
const ny = (field: string, precision = 'minute', offsetMinutes = -300): SourceTime => ({
  field,
  precision,
  offsetMinutes,
  zoned: true,
});

const T8 = Date.UTC(2026, 0, 15, 13, 0); // 08:00 in New York
const T11 = Date.UTC(2026, 0, 15, 16, 0); // 11:00
const T17 = Date.UTC(2026, 0, 16, 22, 0); // 17:00 the next day

describe('portal: encounter times', () => {
  it('given an admission at 08:00 New York time, then period.start and the location start are 08:00-05:00, date_at the instant', () => {
    const d = run(sentAs(admitted('P1', 'E1', 'inpatient', '4W', 'a1', T8), ny('admittedAt')));
    const row = d.get('encounters', 'E1');
    expect(row?.resource.period?.start).toBe('2026-01-15T08:00:00-05:00');
    expect(row?.resource.location?.[0]?.period?.start).toBe('2026-01-15T08:00:00-05:00');
    expect(row?.date_at).toBe(T8);
  });

  it('given a transfer and a discharge sent in the zone, then every period end and start in it; a cancelled discharge removes the end', () => {
    const adm = sentAs(admitted('P1', 'E1', 'inpatient', '4W', 'a1', T8), ny('admittedAt'));
    const xfer = sentAs(transferred('P1', 'E1', '4W', 'ICU', 'a2', T11), ny('transferredAt'));
    const dis = sentAs(discharged('P1', 'E1', 'a3', T17), ny('endedAt', 'second'));
    const enc = run(adm, xfer, dis).get('encounters', 'E1')!.resource;
    expect(enc.period).toEqual({ start: '2026-01-15T08:00:00-05:00', end: '2026-01-16T17:00:00-05:00' });
    expect(enc.location?.map((l) => l.period)).toEqual([
      { start: '2026-01-15T08:00:00-05:00', end: '2026-01-15T11:00:00-05:00' },
      { start: '2026-01-15T11:00:00-05:00', end: '2026-01-16T17:00:00-05:00' },
    ]);
    const undone = run(adm, dis, dischargeCancelled('P1', 'E1', 'a4', T17 + 60_000)).get('encounters', 'E1');
    expect(undone?.resource.period).toEqual({ start: '2026-01-15T08:00:00-05:00' });
  });

  it('given an admission sent to the day, then period.start is the date (a date-precision dateTime)', () => {
    const d = run(
      sentAs(
        admitted('P1', 'E1', 'inpatient', '4W', 'a1', Date.UTC(2026, 0, 15, 5)),
        ny('admittedAt', 'day'),
      ),
    );
    expect(d.get('encounters', 'E1')?.resource.period?.start).toBe('2026-01-15');
  });

  it('given an admission without admittedAt, then period.start is meta.occurredAt as sent', () => {
    const e = admitted('P1', 'E1', 'inpatient', '4W', 'a1', T8);
    const noAdmit = { ...e, data: { ...e.data, admittedAt: null } } as ClinicalEvent;
    const d = run(sentAs(noAdmit, ny('meta.occurredAt', 'second', 60)));
    expect(d.get('encounters', 'E1')?.resource.period?.start).toBe('2026-01-15T14:00:00+01:00');
  });

  it('given events without source times (recorded before they were kept), then UTC as before', () => {
    const d = run(admitted('P1', 'E1', 'inpatient', '4W', 'a1', T8), discharged('P1', 'E1', 'a2', T17));
    expect(d.get('encounters', 'E1')?.resource.period).toEqual({
      start: '2026-01-15T13:00:00.000Z',
      end: '2026-01-16T22:00:00.000Z',
    });
  });
});

describe('portal: order and result times', () => {
  const hgb = { ...obs('718-7', 'Hemoglobin', 9, 'g/dL', 'L', 'final'), observedAt: T8 };
  const report = (...times: SourceTime[]) =>
    sentAs(resulted('P1', 'R1', 'O1', null, 'cbc', 'final', 'm1', T11, [hgb]), ...times);

  it('given an order sent at 08:00 New York time, then authoredOn is 08:00-05:00 and date_at the instant', () => {
    const d = run(sentAs(ordered('P1', 'O1', null, 'cbc', 'routine', 'o1', T8), ny('orderedAt', 'second')));
    expect(d.get('service_requests', 'O1')).toMatchObject({
      resource: { authoredOn: '2026-01-15T08:00:00-05:00' },
      date_at: T8,
    });
  });

  it('given a report with collection time, issue time and observation time as sent, then each rendered so', () => {
    const d = run(
      report(ny('effectiveAt'), ny('issuedAt', 'second'), ny('observations[0].observedAt', 'millisecond')),
    );
    const r = d.get('reports', 'R1');
    expect(r?.resource.effectiveDateTime).toBe('2026-01-15T10:50:00-05:00');
    expect(r?.resource.issued).toBe('2026-01-15T11:00:00-05:00');
    expect(r?.date_at).toBe(T11 - 600_000);
    const o = d.get('observations', 'R1-1');
    expect(o?.resource.effectiveDateTime).toBe('2026-01-15T08:00:00.000-05:00');
    expect(o?.date_at).toBe(T8);
  });

  it('given a collection date and an issue date sent to the day, then effectiveDateTime is the date and issued (an instant) stays full', () => {
    const d = run(report(ny('effectiveAt', 'day'), ny('issuedAt', 'day')));
    const r = d.get('reports', 'R1')!.resource;
    expect(r.effectiveDateTime).toBe('2026-01-15');
    expect(r.issued).toBe('2026-01-15T11:00:00-05:00');
  });

  it('given a report without source times, then UTC as before', () => {
    const r = run(report()).get('reports', 'R1')!.resource;
    expect(r.effectiveDateTime).toBe('2026-01-15T15:50:00.000Z');
    expect(r.issued).toBe('2026-01-15T16:00:00.000Z');
  });
});

describe('portal: Patient.deceasedDateTime', () => {
  const died = Date.UTC(2026, 0, 15, 5); // the day 2026-01-15 in New York
  const death = (msg: string, ...times: SourceTime[]) =>
    sentAs(demographicsUpdated('P1', msg, T11, { deceased: true, deceasedAt: died }), ...times);

  it('given a death date sent to the day, then deceasedDateTime is that date', () => {
    const d = run(
      registered('P1', 'Doe', 'Ann', 'r1', T8),
      death('u1', ny('demographics.deceasedAt', 'day')),
    );
    expect(d.get('patients', 'P1')?.resource.deceasedDateTime).toBe('2026-01-15');
  });

  it('given a later update that does not send PID-29, then the rendering sent before is kept', () => {
    const later = demographicsUpdated('P1', 'u2', T17, {
      deceased: true,
      deceasedAt: null,
      notSent: ['deceasedAt'],
    });
    const d = run(
      registered('P1', 'Doe', 'Ann', 'r1', T8),
      death('u1', ny('demographics.deceasedAt', 'day')),
      later,
    );
    expect(d.get('patients', 'P1')?.resource.deceasedDateTime).toBe('2026-01-15');
  });
});
