import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Demographics } from '../../events/generated.js';
import { NO_DEMOGRAPHICS } from '../../../test/support/population.js';
import {
  DEFAULT_WEIGHTS,
  blockingKeys,
  compare,
  decide,
  estimateWeights,
  levelShares,
  levelWeight,
  matchOne,
  withU,
  toMatchRecord,
  type MatchRecord,
  type MatchWeights,
} from './index.js';

const MRN_A = 'urn:oid:2.16.840.1.113883.19.1';
const MRN_B = 'urn:oid:2.16.840.1.113883.19.2';

function demographics(over: Partial<Demographics> = {}): Demographics {
  return {
    ...NO_DEMOGRAPHICS,
    identifiers: [{ system: MRN_A, value: 'A0000001', type: 'MR' }],
    names: [{ family: 'Lindqvist', given: ['Margaret', 'Ann'], prefix: null, suffix: null, use: 'official' }],
    birthDate: '1961-04-09',
    administrativeGender: 'female',
    addresses: [
      {
        lines: ['12 Birch Street'],
        city: 'Springfield',
        state: 'IL',
        postalCode: '62704',
        country: 'US',
        use: 'home',
        type: null,
      },
    ],
    telecom: [
      { system: 'phone', value: '(217) 555-0142', use: 'home', part: null },
      { system: 'email', value: 'm.lindqvist@example.org', use: null, part: null },
    ],
    ...over,
  };
}

const base = (): MatchRecord => toMatchRecord('p1', demographics());
const other = (over: Partial<MatchRecord>): MatchRecord => ({ ...base(), patientId: 'p2', ...over });

describe('toMatchRecord', () => {
  it('given accents, case, street words and phone formatting, when normalised, then they are folded away', () => {
    const r = toMatchRecord(
      'p',
      demographics({
        names: [{ family: 'LINDQVÍST', given: ['Márgarét'], prefix: null, suffix: null, use: 'official' }],
        addresses: [
          {
            lines: ['12 BIRCH ST.'],
            city: null,
            state: null,
            postalCode: '62704-1234',
            country: null,
            use: 'home',
            type: null,
          },
        ],
        telecom: [{ system: 'phone', value: '+1 217-555-0142', use: 'home', part: null }],
      }),
    );
    expect(r).toMatchObject({
      given: ['margaret'],
      family: 'lindqvist',
      addressLine: '12 birch st',
      postalCode: '62704',
      phones: ['2175550142'],
      email: null,
    });
    expect(base().addressLine).toBe('12 birch st');
  });

  it('given an unknown gender and a malformed birth date, when normalised, then both are missing', () => {
    const r = toMatchRecord('p', demographics({ administrativeGender: 'unknown', birthDate: '09/04/1961' }));
    expect(r.sex).toBeNull();
    expect(r.birthDate).toBeNull();
  });
});

describe('blockingKeys', () => {
  it('given a record, when keyed, then the keys are opaque 16-hex strings without PHI', () => {
    const keys = blockingKeys(base());
    expect(keys.length).toBeGreaterThanOrEqual(6);
    for (const k of keys) expect(k).toMatch(/^[0-9a-f]{16}$/);
  });

  it('given a record with given and family swapped, when keyed, then it shares a key with the original', () => {
    const swapped = other({
      given: ['lindqvist'],
      family: 'margaret',
      birthDate: '1962-01-01',
      phones: [],
      postalCode: null,
      email: null,
      identifiers: [],
    });
    expect(blockingKeys(swapped).some((k) => blockingKeys(base()).includes(k))).toBe(true);
  });

  it('given a hyphenated new surname, when keyed, then it shares the old surname key', () => {
    const married = other({
      family: 'lindqvist-okafor',
      birthDate: '1961-09-04',
      phones: [],
      postalCode: null,
      email: null,
      identifiers: [],
    });
    expect(blockingKeys(married).some((k) => blockingKeys(base()).includes(k))).toBe(true);
  });
});

describe('compare: given name levels', () => {
  it.each([
    ['margaret', 'exact'],
    ['peggy', 'nickname'],
    ['margaert', 'jw-high'],
    ['margit', 'jw-mid'],
    ['m', 'initial'],
    ['zoe', 'disagree'],
  ])('given %s vs margaret, when compared, then the level is %s', (given, level) => {
    expect(compare(base(), other({ given: [given] })).given).toBe(level);
  });

  it('given names that only sound alike, when compared, then the level is phonetic', () => {
    const a = other({ given: ['katherine'] });
    const b = other({ given: ['cathryn'], patientId: 'p3' });
    expect(compare(a, b).given).toBe('phonetic');
  });

  it('given no given name on one side, when compared, then the level is missing', () => {
    expect(compare(base(), other({ given: [] })).given).toBe('missing');
  });

  it('given given and family swapped, when compared, then given is swapped and family is implied', () => {
    const c = compare(base(), other({ given: ['lindqvist'], family: 'margaret' }));
    expect([c.given, c.family]).toEqual(['swapped', 'implied']);
  });
});

describe('compare: family name levels', () => {
  it.each([
    ['lindqvist', 'exact'],
    ['lindqvist-okafor', 'compound'],
    ['lindqvst', 'jw-high'],
    ['linqvust', 'jw-mid'],
    ['okafor', 'disagree'],
  ])('given %s vs lindqvist, when compared, then the level is %s', (family, level) => {
    expect(compare(base(), other({ family })).family).toBe(level);
  });

  it('given surnames that only sound alike, when compared, then the level is phonetic', () => {
    expect(compare(other({ family: 'schmidt' }), other({ family: 'smyth', patientId: 'p3' })).family).toBe(
      'phonetic',
    );
  });
});

describe('compare: birth date levels', () => {
  it.each([
    ['1961-04-09', 'exact'],
    ['1961-09-04', 'transposed'],
    ['1961-04-08', 'typo'],
    ['1961', 'year-only'],
    ['1961-11-23', 'year-only'],
    ['1975-04-09', 'disagree'],
  ])('given %s vs 1961-04-09, when compared, then the level is %s', (birthDate, level) => {
    expect(compare(base(), other({ birthDate })).birthDate).toBe(level);
  });
});

describe('compare: contact and identifier levels', () => {
  it('given the same address line, when compared, then postal code and a shared phone are implied by it', () => {
    const c = compare(base(), other({}));
    expect([c.address, c.postalCode, c.phone, c.email]).toEqual(['exact', 'implied', 'implied', 'exact']);
  });

  it('given a move in the same ZIP keeping the phone, when compared, then phone agrees and postal code is exact', () => {
    const c = compare(base(), other({ addressLine: '400 oak ave apt 3' }));
    expect([c.address, c.postalCode, c.phone]).toEqual(['disagree', 'exact', 'agree']);
  });

  it('given a phone with one digit changed, when compared, then the level is typo', () => {
    expect(compare(base(), other({ phones: ['2175550143'], addressLine: null })).phone).toBe('typo');
  });

  it('given the same MRN, a different MRN of one authority, or MRNs of two authorities, when compared, then agree / conflict / none', () => {
    const ids = (system: string, value: string) => [{ system, value, type: 'MR' }];
    expect(compare(base(), other({})).identifier).toBe('agree');
    expect(compare(base(), other({ identifiers: ids(MRN_A, 'A0000002') })).identifier).toBe('conflict');
    expect(compare(base(), other({ identifiers: ids(MRN_B, 'B0000001') })).identifier).toBe('none');
  });
});

describe('decide: scores and thresholds', () => {
  it('given a second facility registering the same person with a typo, when decided, then it links', () => {
    const b = other({ given: ['margaert'], identifiers: [{ system: MRN_B, value: 'B1', type: 'MR' }] });
    const d = decide(base(), b, DEFAULT_WEIGHTS);
    expect(d.outcome).toBe('link');
    expect(d.rules).toEqual([]);
    expect(d.evidence.map((e) => e.field)).toContain('given');
  });

  it('given two strangers, when decided, then nothing is proposed', () => {
    const b = toMatchRecord(
      'p9',
      demographics({
        identifiers: [{ system: MRN_B, value: 'B9', type: 'MR' }],
        names: [{ family: 'Okafor', given: ['Daniel'], prefix: null, suffix: null, use: 'official' }],
        birthDate: '1990-12-01',
        administrativeGender: 'male',
        addresses: [],
        telecom: [],
      }),
    );
    expect(decide(base(), b, DEFAULT_WEIGHTS)).toMatchObject({ outcome: 'none', rules: [] });
  });

  it('given a score between the thresholds, when decided, then the outcome is review', () => {
    const w: MatchWeights = { ...DEFAULT_WEIGHTS, upper: 1000, lower: -1000 };
    expect(decide(base(), other({ identifiers: [] }), w).outcome).toBe('review');
  });
});

describe('decide: safety rules beat the score', () => {
  const sameOtherwise = { identifiers: [] as MatchRecord['identifiers'] };

  it('given the same authority with different MRNs, when decided, then identifier-conflict caps it at review', () => {
    const d = decide(
      base(),
      other({ identifiers: [{ system: MRN_A, value: 'A0000002', type: 'MR' }] }),
      DEFAULT_WEIGHTS,
    );
    expect(d).toMatchObject({ outcome: 'review', rules: ['identifier-conflict'] });
  });

  it('given different visit numbers of one authority (a weak type), when decided, then no identifier-conflict', () => {
    const visit = (v: string) => [{ system: 'urn:visits', value: v, type: 'VN' }];
    const d = decide(
      { ...base(), identifiers: visit('1') },
      other({ identifiers: visit('2') }),
      DEFAULT_WEIGHTS,
    );
    expect(d.rules).not.toContain('identifier-conflict');
  });

  it('given different known sex and otherwise the same data, when decided, then sex-conflict caps it at review', () => {
    const d = decide(base(), other({ ...sameOtherwise, sex: 'male' }), DEFAULT_WEIGHTS);
    expect(d.rules).toContain('sex-conflict');
    expect(d.outcome).not.toBe('link');
  });

  it('given twins (same birth date and address, different given names), when decided, then twins prevents a link', () => {
    const twin = other({ ...sameOtherwise, given: ['maren'], email: null });
    const w: MatchWeights = { ...DEFAULT_WEIGHTS, upper: -1000, lower: -1000 };
    expect(decide(base(), twin, w)).toMatchObject({ outcome: 'review', rules: ['twins'] });
  });

  it('given a one-letter typo of the given name at the same birth date and address, when decided, then twins does not fire', () => {
    const d = decide(base(), other({ ...sameOtherwise, given: ['margaert'] }), DEFAULT_WEIGHTS);
    expect(d.rules).toEqual([]);
  });

  it('given twins whose address line differs by a typo, when decided, then twins still prevents a link', () => {
    const twin = other({ ...sameOtherwise, given: ['maren'], email: null, addressLine: '12 birch stt' });
    const w: MatchWeights = { ...DEFAULT_WEIGHTS, upper: -1000, lower: -1000 };
    expect(decide(base(), twin, w).rules).toEqual(['twins']);
  });

  it('given a parent and child of one name at one address (birth years apart), when decided, then birthdate-conflict caps it at review', () => {
    const junior = other({ ...sameOtherwise, birthDate: '1988-07-30' });
    const w: MatchWeights = { ...DEFAULT_WEIGHTS, upper: -1000, lower: -1000 };
    expect(decide(base(), junior, w)).toMatchObject({ outcome: 'review', rules: ['birthdate-conflict'] });
  });

  it('given a nickname at the same birth date and address, when decided, then twins does not fire', () => {
    const d = decide(base(), other({ ...sameOtherwise, given: ['peggy'] }), DEFAULT_WEIGHTS);
    expect(d.rules).toEqual([]);
    expect(d.outcome).toBe('link');
  });
});

describe('matchOne', () => {
  it('given a source returning the record itself, duplicates and a stranger, when matched, then each match once and never itself', async () => {
    const me = base();
    const dup = other({ identifiers: [] });
    const stranger = other({
      patientId: 'p3',
      given: ['zoe'],
      family: 'okafor',
      birthDate: '1999-01-01',
      phones: [],
      addressLine: null,
      postalCode: null,
      email: null,
      identifiers: [],
    });
    const out = await matchOne(me, { candidates: () => [me, dup, dup, stranger] }, DEFAULT_WEIGHTS);
    expect(out.map((x) => x.candidate.patientId)).toEqual(['p2']);
  });
});

describe('estimateWeights', () => {
  it('given pairs of two clear kinds, when estimated by EM, then agreement weighs for and disagreement against a match', () => {
    const agree = compare(base(), other({}));
    const disagree = compare(
      base(),
      other({
        given: ['zoe'],
        family: 'okafor',
        birthDate: '1990-01-01',
        addressLine: 'x',
        phones: ['1'],
        email: 'z@example.com',
      }),
    );
    const pairs = [...Array<typeof agree>(100).fill(agree), ...Array<typeof disagree>(900).fill(disagree)];
    const fit = estimateWeights(pairs);
    const given = fit.fields.given;
    expect(Math.log2((given?.exact?.m ?? 0) / (given?.exact?.u ?? 1))).toBeGreaterThan(3);
    expect(Math.log2((given?.disagree?.m ?? 0) / (given?.disagree?.u ?? 1))).toBeLessThan(-3);
    expect(fit.matchShare).toBeCloseTo(0.1, 2);
  });

  it('given random-pair level shares, when they replace u, then m is kept, u is floored and neutral levels weigh 0', () => {
    const fit = estimateWeights([compare(base(), other({})), compare(base(), other({ given: ['zoe'] }))]);
    const u = levelShares([compare(base(), other({ given: ['zoe'], family: 'okafor' }))]);
    expect(u.pairs).toBe(1);
    const fields = withU(fit.fields, u.shares);
    expect(fields.given?.exact?.m).toBe(fit.fields.given?.exact?.m);
    expect(fields.given?.exact?.u).toBeCloseTo(u.shares.given?.exact ?? 0, 6);
    expect(fields.email?.disagree?.u).toBeGreaterThanOrEqual(1e-4);
    expect(fields.phone?.implied).toEqual(fit.fields.phone?.implied);
  });

  it('given the committed weights, when loaded, then they carry a version and ordered thresholds', () => {
    expect(DEFAULT_WEIGHTS.version).toMatch(/^fs-\d{4}-\d{2}-\d{2}\.\d+$/);
    expect(DEFAULT_WEIGHTS.lower).toBeLessThanOrEqual(DEFAULT_WEIGHTS.upper);
  });
});

describe('regressions', () => {
  it('regression: an exact birth date weighed less than a transposed one (u estimated on blocked pairs)', () => {
    const w = DEFAULT_WEIGHTS;
    const exact = levelWeight(w, 'birthDate', 'exact');
    const transposed = levelWeight(w, 'birthDate', 'transposed');
    expect(exact).toBeGreaterThan(transposed);
    expect(transposed).toBeGreaterThan(0);
    const marta: MatchRecord = {
      patientId: 'm1',
      identifiers: [],
      given: ['marta'],
      family: 'kowalski',
      birthDate: '1984-03-12',
      sex: 'female',
      phones: ['2175550142'],
      postalCode: '62704',
      addressLine: '12 birch st',
      email: null,
    };
    const moved = {
      patientId: 'm2',
      family: 'kowalsky',
      phones: [],
      postalCode: '10001',
      addressLine: '5 elm ave',
    };
    const sameDob = decide(marta, { ...marta, ...moved }, w);
    const swappedDob = decide(marta, { ...marta, ...moved, birthDate: '1984-12-03' }, w);
    expect(sameDob.score).toBeGreaterThan(swappedDob.score);
  });
});

const nameArb = fc.string({
  unit: fc.constantFrom(...'abcdeéilmnorstuüz -'.split('')),
  minLength: 0,
  maxLength: 10,
});
const dateArb = fc.oneof(
  fc.constant(null),
  fc
    .date({ min: new Date('1920-01-01'), max: new Date('2025-12-31'), noInvalidDate: true })
    .map((d) => d.toISOString().slice(0, 10)),
  fc.integer({ min: 1920, max: 2025 }).map(String),
);
const recordArb = (id: string) =>
  fc
    .record({
      given: fc.array(nameArb, { maxLength: 2 }),
      family: nameArb,
      birthDate: dateArb,
      sex: fc.constantFrom('male', 'female', 'unknown', null),
      phone: fc.constantFrom('2175550142', '2175550143', '9995550100', ''),
      line: fc.constantFrom('12 Birch Street', '12 birch st', '400 Oak Ave', ''),
      mrn: fc.constantFrom('A1', 'A2', ''),
    })
    .map((x) =>
      toMatchRecord(
        id,
        demographics({
          identifiers: x.mrn ? [{ system: MRN_A, value: x.mrn, type: 'MR' }] : [],
          names: [{ family: x.family, given: x.given, prefix: null, suffix: null, use: 'official' }],
          birthDate: x.birthDate,
          administrativeGender: x.sex,
          addresses: x.line
            ? [
                {
                  lines: [x.line],
                  city: null,
                  state: null,
                  postalCode: '62704',
                  country: null,
                  use: 'home',
                  type: null,
                },
              ]
            : [],
          telecom: x.phone ? [{ system: 'phone', value: x.phone, use: null, part: null }] : [],
        }),
      ),
    );

describe('properties', () => {
  it('given any two records, when decided both ways, then score, outcome and rules are the same', () => {
    fc.assert(
      fc.property(recordArb('a'), recordArb('b'), (a, b) => {
        const ab = decide(a, b, DEFAULT_WEIGHTS);
        const ba = decide(b, a, DEFAULT_WEIGHTS);
        expect(ba.score).toBe(ab.score);
        expect(ba.outcome).toBe(ab.outcome);
        expect(ba.rules).toEqual(ab.rules);
        expect(compare(b, a)).toEqual(compare(a, b));
      }),
      { numRuns: 500 },
    );
  });

  it('given any record, when normalised twice, then folding is idempotent and keys are stable', () => {
    fc.assert(
      fc.property(recordArb('a'), (r) => {
        const again = toMatchRecord(
          'a',
          demographics({
            identifiers: r.identifiers.map((i) => ({ ...i })),
            names: [{ family: r.family, given: [...r.given], prefix: null, suffix: null, use: 'official' }],
            birthDate: r.birthDate,
            administrativeGender: r.sex,
            addresses: r.addressLine
              ? [
                  {
                    lines: [r.addressLine],
                    city: null,
                    state: null,
                    postalCode: r.postalCode,
                    country: null,
                    use: 'home',
                    type: null,
                  },
                ]
              : [],
            telecom: r.phones.map((p) => ({ system: 'phone', value: p, use: null, part: null })),
          }),
        );
        expect(again.given).toEqual(r.given);
        expect(again.family).toEqual(r.family);
        expect(again.addressLine).toEqual(r.addressLine);
        expect(blockingKeys(again)).toEqual(blockingKeys({ ...r, email: again.email }));
      }),
      { numRuns: 300 },
    );
  });

  it('given any record, when decided against itself under another id, then it never scores below a pair differing in given name', () => {
    fc.assert(
      fc.property(recordArb('a'), (r) => {
        const self = decide(r, { ...r, patientId: 'z' }, DEFAULT_WEIGHTS).score;
        const changed = decide(r, { ...r, patientId: 'z', given: ['qqqq'] }, DEFAULT_WEIGHTS).score;
        expect(self).toBeGreaterThanOrEqual(changed);
      }),
      { numRuns: 200 },
    );
  });
});
