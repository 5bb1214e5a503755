/**
 * Generated ORU content for property tests (mapper and API round trips): OBX lines with LOINC
 * and local codings, UCUM or local units, sub-ids, abnormal flags, NTE notes and times at every
 * HL7 precision, and the message that carries them.
 */
import fc from 'fast-check';

/** Text that needs no HL7 escaping and survives trimming: starts and ends with a letter or digit. */
export const word = fc.stringMatching(/^[A-Za-z0-9](?:[A-Za-z0-9 ./-]{0,10}[A-Za-z0-9])?$/);
export const code = fc.stringMatching(/^[A-Z0-9][A-Z0-9-]{0,7}$/);
/** An HL7 DTM at a random precision, with or without a UTC offset. */
export const dtm = fc
  .record({
    at: fc.date({
      min: new Date('1990-01-01T00:00:00Z'),
      max: new Date('2090-12-31T23:59:59Z'),
      noInvalidDate: true,
    }),
    digits: fc.constantFrom(8, 10, 12, 14),
    offset: fc.constantFrom('', '+0000', '-0500', '+0130'),
  })
  .map(({ at, digits, offset }) => {
    const iso = at.toISOString();
    const all = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}`;
    return {
      text: `${all.slice(0, digits)}${offset}`,
      precision: ({ 8: 'day', 10: 'hour', 12: 'minute', 14: 'second' } as const)[digits],
      zoned: offset === '',
    };
  });
export const oruLine = fc.record({
  loinc: code,
  display: word,
  local: fc.option(fc.record({ code, display: word }), { nil: undefined }),
  subId: fc.option(fc.stringMatching(/^[0-9]{1,3}(?:\.[0-9])?$/), { nil: undefined }),
  value: fc.integer({ min: -100000, max: 100000 }),
  unit: fc.record({ code: word, text: fc.option(word, { nil: undefined }), ucum: fc.boolean() }),
  flags: fc.array(fc.constantFrom('H', 'L', 'HH', 'LL', 'A', 'N'), { maxLength: 3 }),
  notes: fc.array(
    fc.record({
      lines: fc.array(word, { minLength: 1, maxLength: 3 }),
      at: fc.option(dtm, { nil: undefined }),
    }),
    {
      maxLength: 2,
    },
  ),
  observedAt: fc.option(dtm, { nil: undefined }),
});

export type OruLine = typeof oruLine extends fc.Arbitrary<infer T> ? T : never;

/** An ORU^R01 (v2.6) carrying the lines, each followed by its NTEs. */
export function oruSegments(lines: readonly OruLine[]): string[] {
  const segs = [
    'MSH|^~\\&|LIS|LAB|HUB|HUB|20240101120000||ORU^R01^ORU_R01|P1|P|2.6',
    'PID|1||M1^^^HOSP^MR||Doe^Jo',
    'OBR|1|PO1^CPOE|F1^LIS|24323-8^Panel^LN||||||||||||||||||||F',
  ];
  lines.forEach((l, i) => {
    const obx3 = `${l.loinc}^${l.display}^LN${l.local ? `^${l.local.code}^${l.local.display}^99LAB` : ''}`;
    const obx6 = `${l.unit.code}^${l.unit.text ?? ''}^${l.unit.ucum ? 'UCUM' : ''}`;
    segs.push(
      `OBX|${i + 1}|NM|${obx3}|${l.subId ?? ''}|${l.value}|${obx6}||${l.flags.join('~')}|||F|||${l.observedAt?.text ?? ''}`,
    );
    for (const n of l.notes) segs.push(`NTE|1|L|${n.lines.join('~')}|||${n.at?.text ?? ''}`);
  });
  return segs;
}
