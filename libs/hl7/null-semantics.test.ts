import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ClinicalEvent, Demographics } from '../events/index.js';
import { DEFAULT_IDENTITY_POLICY } from '../identity/index.js';
import { mapHl7Message } from './map.js';
import type { MapContext } from './types.js';

const ctx: MapContext = {
  recordedAt: 1_710_000_000_000,
  policy: DEFAULT_IDENTITY_POLICY,
  rawMessageRef: null,
  timeZone: 'UTC',
};

const MSH = (type: string, id: string) =>
  `MSH|^~\\&|EHR|GENHOSP|HUB|HUB|20240304090000+0000||${type}|${id}|P|2.5.1`;
const EVN = (trigger: string) => `EVN|${trigger}|20240304090000+0000`;

/** A segment from its fields by number (the rest empty). */
function seg(name: string, fields: Record<number, string>): string {
  const n = Math.max(...Object.keys(fields).map(Number));
  const f: string[] = Array.from({ length: n + 1 }, () => '');
  f[0] = name;
  for (const [k, v] of Object.entries(fields)) f[Number(k)] = v;
  return f.join('|');
}

/** PID with a patient id and name unless overridden. */
const pid = (fields: Record<number, string>) =>
  seg('PID', { 1: '1', 3: 'MRN20001^^^HOSP^MR', 5: 'Nullson^Nora', ...fields });

const OBR = seg('OBR', {
  1: '1',
  2: 'P1^EHR',
  3: 'F1^LAB',
  4: '718-7^Hemoglobin^LN',
  7: '20240304080000+0000',
  16: '1234^Welby',
  22: '20240304090000+0000',
  24: 'LAB',
  25: 'F',
});
const obx = (n: number, type: string, code: string, value: string) =>
  seg('OBX', { 1: String(n), 2: type, 3: code, 5: value, 6: 'g/dL', 7: '1-2', 8: 'N', 11: 'F' });
const PV1_FULL = seg('PV1', {
  1: '1',
  2: 'I',
  3: 'WARD4^401^B^GENHOSP',
  6: 'WARD3',
  7: '1234^Welby^Marcus',
  10: 'MED',
  19: 'V1^^^HOSP^VN',
});

function map(segments: string[]): ClinicalEvent[] {
  const out = mapHl7Message(Buffer.from(segments.join('\r')), ctx);
  if (out.kind !== 'mapped')
    throw new Error(`refused ${out.refusal.hl7ErrorCode} ${out.refusal.error.message}`);
  return out.events;
}

function demographicsOf(trigger: 'A08' | 'A04', pidFields: Record<number, string>): Demographics {
  const type = trigger === 'A08' ? 'ADT^A08^ADT_A01' : 'ADT^A04^ADT_A01';
  const e = map([
    MSH(type, `N${trigger}`),
    EVN(trigger),
    pid(pidFields),
    seg('PV1', { 1: '1', 2: 'O', 3: 'CLINIC^^^GENHOSP', 19: 'V20002^^^HOSP^VN' }),
  ]).find((x) => x.type === 'PatientUpdated' || x.type === 'PatientRegistered');
  if (!e || (e.type !== 'PatientUpdated' && e.type !== 'PatientRegistered'))
    throw new Error('no patient event');
  return e.data.demographics;
}

const ALL = [
  'names',
  'birthDate',
  'administrativeGender',
  'addresses',
  'telecom.home',
  'telecom.work',
  'language',
  'maritalStatus',
  'deceased',
  'deceasedAt',
  'race',
  'ethnicity',
  'religion',
  'contacts',
  'primaryCareProvider',
];

describe('HL7 null semantics: not sent, "" (delete), sent', () => {
  it('given an A08 with only PID-3 and PID-5, when mapped, then every other field is listed as not sent', () => {
    const d = demographicsOf('A08', {});
    expect(d.notSent.sort()).toEqual(ALL.filter((f) => f !== 'names').sort());
    expect(d.cleared).toEqual([]);
    expect(d.names).toMatchObject([{ family: 'Nullson', given: ['Nora'] }]);
    expect(d.telecom).toEqual([]);
  });

  it('given "" in PID-11 and PID-13, when mapped, then addresses and telecom.home are cleared, never stored as text', () => {
    const d = demographicsOf('A08', { 11: '""', 13: '""', 14: '^WPN^PH^^1^217^5559876' });
    expect(d.cleared.sort()).toEqual(['addresses', 'telecom.home']);
    expect(d.notSent).not.toContain('telecom.work');
    expect(d.addresses).toEqual([]);
    expect(d.telecom).toEqual([{ system: 'phone', value: '+1 217 5559876', use: 'work', part: 'work' }]);
    expect(JSON.stringify(d)).not.toContain('\\"\\"');
  });

  it('given "" in every scalar field, when mapped, then each is cleared and null', () => {
    const d = demographicsOf('A08', { 7: '""', 8: '""', 15: '""', 16: '""', 29: '""', 30: '""' });
    expect(d.cleared.sort()).toEqual(
      ['birthDate', 'administrativeGender', 'language', 'maritalStatus', 'deceasedAt', 'deceased'].sort(),
    );
    expect(d).toMatchObject({
      birthDate: null,
      administrativeGender: null,
      language: null,
      maritalStatus: null,
      deceased: null,
      deceasedAt: null,
    });
  });

  it('given two PID-13 repetitions, when mapped, then telecom.home is sent with exactly those two', () => {
    const d = demographicsOf('A08', { 13: '^PRN^PH^^1^217^5550001~^PRN^CP^^1^217^5550002' });
    expect(d.notSent).not.toContain('telecom.home');
    expect(d.notSent).toContain('telecom.work');
    expect(d.telecom.map((t) => [t.value, t.use, t.part])).toEqual([
      ['+1 217 5550001', 'home', 'home'],
      ['+1 217 5550002', 'mobile', 'home'],
    ]);
  });

  it('given "" as a component, subcomponent or repetition, when mapped, then it reads as no value', () => {
    const d = demographicsOf('A08', {
      5: 'Nullson^""^""',
      11: '""^""^Springfield^""^62701',
      13: '""~^PRN^PH^^1^217^5550001',
      16: 'M^""^HL70002',
    });
    expect(d.names).toEqual([{ family: 'Nullson', given: [], prefix: null, suffix: null, use: null }]);
    expect(d.addresses).toEqual([
      {
        lines: [],
        city: 'Springfield',
        state: null,
        postalCode: '62701',
        country: null,
        use: null,
        type: null,
      },
    ]);
    expect(d.telecom.map((t) => t.value)).toEqual(['+1 217 5550001']);
    expect(d.maritalStatus).toMatchObject({ code: 'M', display: null });
    expect(d.cleared).toEqual([]);
  });

  it('given PID-30 N and no PID-29, when mapped, then deceased is false and a stored death time is deleted', () => {
    const d = demographicsOf('A08', { 30: 'N' });
    expect(d.deceased).toBe(false);
    expect(d.cleared).toContain('deceasedAt');
  });

  it('given PID-29 without PID-30, when mapped, then deceased is true (sent) and the time is sent', () => {
    const d = demographicsOf('A08', { 29: '20240301120000+0000' });
    expect(d.deceased).toBe(true);
    expect(d.deceasedAt).toBe(Date.parse('2024-03-01T12:00:00Z'));
    expect(d.notSent).not.toContain('deceased');
    expect(d.notSent).not.toContain('deceasedAt');
  });

  it('given an A04 registration, when mapped, then the same rules apply (empty fields are not sent)', () => {
    const d = demographicsOf('A04', { 13: '^PRN^PH^^1^217^5550001' });
    expect(d.notSent).toContain('addresses');
    expect(d.telecom).toHaveLength(1);
  });

  it('given an OBX-5 of "", when mapped, then the observation has no value (no literal "")', () => {
    const events = map([
      MSH('ORU^R01^ORU_R01', 'NORU'),
      pid({}),
      OBR,
      obx(1, 'NM', '718-7^Hemoglobin^LN', '""'),
      obx(2, 'ST', '8251-1^Comment^LN', '""'),
      obx(3, 'CE', '883-9^ABO^LN', '""'),
    ]);
    const obs = events.flatMap((e) => (e.type === 'ResultReported' ? e.data.observations : []));
    expect(obs.map((o) => [o.valueNumber, o.valueString, o.valueCode])).toEqual([
      [null, null, null],
      [null, null, null],
      [null, null, null],
    ]);
  });
});

// Fields of PID, PV1, ORC, OBR and OBX the mappers read, each sent as "" somewhere in a message.
const NULLABLE = {
  PID: [5, 7, 8, 11, 13, 14, 15, 16, 18, 29, 30],
  PV1: [3, 6, 7, 10, 36, 44, 45],
  OBR: [2, 6, 7, 16, 22, 24, 27, 32],
  OBX: [6, 7, 8, 14],
} as const;

/** Sends the picked fields as "" (or, with `component`, their second component as ""). */
function withNulls(
  segment: string,
  fields: readonly number[],
  pick: readonly boolean[],
  component: boolean,
): string {
  const parts = segment.split('|');
  fields.forEach((f, i) => {
    if (!pick[i]) return;
    while (parts.length <= f) parts.push('');
    // A required field sent as "" is a missing field (AE 101), so PID-5 gets a "" component instead.
    const required = parts[0] === 'PID' && f === 5;
    parts[f] = (component || required) && parts[f] ? `${parts[f].split('^')[0]}^""` : '""';
  });
  return parts.join('|');
}

describe('HL7 null semantics (property-based)', () => {
  const picks = (n: number) => fc.array(fc.boolean(), { minLength: n, maxLength: n });

  it('given any mix of "" fields and components, when mapped, then no event contains the text ""', () => {
    fc.assert(
      fc.property(
        picks(NULLABLE.PID.length),
        picks(NULLABLE.PV1.length),
        picks(NULLABLE.OBR.length),
        picks(NULLABLE.OBX.length),
        fc.boolean(),
        fc.constantFrom('ADT^A04^ADT_A01', 'ADT^A08^ADT_A01', 'ORU^R01^ORU_R01', 'ORM^O01^ORM_O01'),
        (pidP, pv1P, obrP, obxP, component, type) => {
          const full = pid({
            5: 'Nullson^Nora^^^Ms.',
            7: '19800215',
            8: 'F',
            11: '12 Elm^^Springfield^IL^62701',
            13: '^PRN^PH^^1^217^5550001',
            14: '^WPN^PH^^1^217^5550002',
            15: 'eng^English^ISO639',
            16: 'M^Married^HL70002',
            18: 'ACC1^^^HOSP^AN',
          });
          const segs = [
            MSH(type, 'NPROP'),
            ...(type.startsWith('ADT') ? [EVN(type.slice(4, 7))] : []),
            withNulls(full, NULLABLE.PID, pidP, component),
            withNulls(PV1_FULL, NULLABLE.PV1, pv1P, component),
            ...(type.startsWith('ORM') ? ['ORC|NW|P1^EHR'] : []),
            ...(type.startsWith('ADT')
              ? []
              : [
                  withNulls(OBR, NULLABLE.OBR, obrP, component),
                  withNulls(obx(1, 'ST', '8251-1^Comment^LN', '""'), NULLABLE.OBX, obxP, component),
                ]),
          ];
          const out = mapHl7Message(Buffer.from(segs.join('\r')), ctx);
          if (out.kind === 'mapped') {
            expect(out.events.length).toBeGreaterThan(0);
            expect(JSON.stringify(out.events)).not.toContain('\\"\\"');
          } else {
            throw new Error(`refused ${out.refusal.hl7ErrorCode}: ${out.refusal.error.message}`);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('given each PID field sent as "", when mapped, then it is named in cleared and not in notSent', () => {
    // PID-5 is required: "" there is a missing required field (AE 101), not a deletion.
    const names: Record<number, string[]> = {
      7: ['birthDate'],
      8: ['administrativeGender'],
      11: ['addresses'],
      13: ['telecom.home'],
      14: ['telecom.work'],
      10: ['race'],
      15: ['language'],
      16: ['maritalStatus'],
      17: ['religion'],
      22: ['ethnicity'],
      29: ['deceasedAt'],
      30: ['deceased'],
    };
    fc.assert(
      fc.property(fc.subarray(Object.keys(names).map(Number), { minLength: 1 }), (fields) => {
        const d = demographicsOf('A08', Object.fromEntries(fields.map((f) => [f, '""'])));
        const expected = fields.flatMap((f) => names[f]!);
        expect([...d.cleared].sort()).toEqual([...expected].sort());
        for (const n of expected) expect(d.notSent).not.toContain(n);
      }),
      { numRuns: 200 },
    );
  });

  const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/hl7');
  const corpus = readdirSync(FIXTURES)
    .filter((f) => f.endsWith('.hl7') && !f.startsWith('bad-'))
    .map((f) => readFileSync(join(FIXTURES, f), 'latin1'));

  it('given corpus messages with random fields or components replaced by "", when mapped, then no event contains ""', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: corpus.length - 1 }),
        fc.array(fc.record({ seg: fc.nat(), field: fc.integer({ min: 1, max: 40 }), comp: fc.boolean() }), {
          minLength: 1,
          maxLength: 12,
        }),
        (i, edits) => {
          const segs = corpus[i]!.split(/\r\n|\r|\n/).filter((x) => x !== '');
          for (const e of edits) {
            const at = 1 + (e.seg % Math.max(1, segs.length - 1)); // never MSH
            const parts = segs[at]?.split('|');
            if (!parts || parts.length <= 1) continue;
            const f = 1 + (e.field % (parts.length - 1));
            parts[f] = e.comp ? `${(parts[f] ?? '').split('^')[0]}^""` : '""';
            segs[at] = parts.join('|');
          }
          const out = mapHl7Message(Buffer.from(segs.join('\r'), 'latin1'), ctx);
          if (out.kind === 'mapped') expect(JSON.stringify(out.events)).not.toContain('\\"\\"');
        },
      ),
      { numRuns: 1000 },
    );
  }, 60_000);
});
