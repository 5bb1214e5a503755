import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  IDENTIFIER_PROBLEMS,
  checkIdentifier,
  isHighlyRestrictive,
  isWellFormedText,
  normaliseText,
  type IdentifierProblem,
} from './hygiene.js';

const refused = (v: string): IdentifierProblem | 'ok' => {
  const r = checkIdentifier(v);
  return r.ok ? 'ok' : r.problem;
};

describe('checkIdentifier: what is refused', () => {
  it.each<[string, string, IdentifierProblem]>([
    ['a zero-width space inside an MRN', 'MRN\u200b10001', 'invisible'],
    ['a zero-width joiner', 'MRN1\u200d0001', 'invisible'],
    ['a BOM inside the value', 'MRN\ufeff10001', 'invisible'],
    ['a soft hyphen', 'MRN\u00ad10001', 'invisible'],
    ['a variation selector', 'MRN1\ufe0f0001', 'invisible'],
    ['a right-to-left override (RLO)', 'MRN\u202e10001', 'bidi-control'],
    ['a left-to-right mark', '\u200eMRN10001', 'bidi-control'],
    ['an isolate (FSI)', 'MRN\u206810001', 'bidi-control'],
    ['full-width digits', 'MRN\uff11\uff10\uff10\uff10\uff11', 'compatibility'],
    ['full-width letters', '\uff2d\uff32\uff2e10001', 'compatibility'],
    ['mathematical bold digits', 'MRN\u{1d7cf}\u{1d7ce}', 'compatibility'],
    ['a non-breaking space', 'MRN\u00a010001', 'compatibility'],
    ['a ligature', '\ufb01le-1', 'compatibility'],
    ["a Cyrillic 'А' in a Latin MRN", '\u0410BC10001', 'mixed-scripts'],
    ['a Greek omicron among Latin letters', 'M\u039fN10001', 'mixed-scripts'],
    ['Latin with Greek capital letters that look Latin', '\u039c\u03a1\u039dx', 'mixed-scripts'],
    ['Latin with Hangul and Hiragana (not one UTS #39 combination)', 'A\ud55c\u3072', 'mixed-scripts'],
    ['ASCII digits with an Arabic-Indic digit', '12\u0663', 'mixed-numbers'],
    ['Devanagari and Bengali digits', '\u0967\u09e8', 'mixed-numbers'],
    ['a lone high surrogate', 'MRN\ud800', 'lone-surrogate'],
    ['a lone low surrogate', '\udc00MRN', 'lone-surrogate'],
    ['a tab inside', 'MRN\t1', 'control'],
    ['a NUL', 'MRN\u00001', 'control'],
    ['a C1 control', 'MRN\u00851', 'control'],
    ['a line separator inside', 'MRN\u20281', 'control'],
    ['a private-use character', 'MRN\ue0001', 'private-use'],
    ['an unassigned code point', 'MRN\u03781', 'unassigned'],
    ['a noncharacter', 'MRN\ufdd01', 'unassigned'],
    ['only white space', ' \t ', 'empty'],
  ])('given %s, it is refused as %s', (_what, value, expected) => {
    expect(refused(value)).toBe(expected);
  });

  it('names the problem without quoting the value', () => {
    const r = checkIdentifier('SECRET\u200bMRN');
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.message).toBe(IDENTIFIER_PROBLEMS.invisible);
      expect(r.message).not.toContain('SECRET');
    }
  });
});

describe('checkIdentifier: what is accepted, and in which form', () => {
  it.each<[string, string, string]>([
    ['a plain MRN', 'MRN10001', 'MRN10001'],
    ['surrounding white space', '  MRN10001 ', 'MRN10001'],
    ['punctuation and digits', 'A-12/34.5_6', 'A-12/34.5_6'],
    ['Latin with diacritics', 'Ä-123', 'Ä-123'],
    ['a decomposed (NFD) value', 'Jose\u0301-1', 'José-1'],
    ['all Cyrillic (one script)', 'МРН-123', 'МРН-123'],
    ['all Greek with ASCII digits', 'Ελλάδα123', 'Ελλάδα123'],
    ['Latin + Han + Hiragana + Katakana', 'ID山田ひらカタ1', 'ID山田ひらカタ1'],
    ['Latin + Han + Bopomofo', 'ID中ㄅ1', 'ID中ㄅ1'],
    ['Latin + Han + Hangul', 'ID한國1', 'ID한國1'],
    ['Arabic-Indic digits alone', '\u0660\u0661\u0662', '\u0660\u0661\u0662'],
  ])('given %s, it is accepted', (_what, value, expected) => {
    expect(checkIdentifier(value)).toEqual({ ok: true, value: expected });
  });

  it('gives NFC and NFD of the same value one stored form', () => {
    const nfc = 'Müller-Ångström'.normalize('NFC');
    const nfd = nfc.normalize('NFD');
    expect(nfd).not.toBe(nfc);
    expect(checkIdentifier(nfd)).toEqual(checkIdentifier(nfc));
    expect(normaliseText(nfd)).toBe(normaliseText(nfc));
  });
});

describe('checkIdentifier: properties', () => {
  const anyText = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 24 }),
    fc.string({ unit: 'grapheme', maxLength: 12 }),
  );

  it('accepts every non-blank printable ASCII value, trimmed', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 40 }), (v) => {
        fc.pre(v.trim() !== '');
        expect(checkIdentifier(v)).toEqual({ ok: true, value: v.trim() });
      }),
      { numRuns: 2000 },
    );
  });

  it('is idempotent: an accepted value is accepted again unchanged', () => {
    fc.assert(
      fc.property(anyText, (v) => {
        const r = checkIdentifier(v);
        if (r.ok) expect(checkIdentifier(r.value)).toEqual(r);
      }),
      { numRuns: 3000 },
    );
  });

  it('decides the same for every Unicode-equivalent spelling (NFC, NFD)', () => {
    fc.assert(
      fc.property(anyText, (v) => {
        expect(checkIdentifier(v.normalize('NFD'))).toEqual(checkIdentifier(v.normalize('NFC')));
      }),
      { numRuns: 3000 },
    );
  });

  it('returns accepted values in NFC, trimmed, and well-formed', () => {
    fc.assert(
      fc.property(anyText, (v) => {
        const r = checkIdentifier(v);
        if (!r.ok) return;
        expect(r.value).toBe(r.value.normalize('NFC').trim());
        expect(r.value.normalize('NFKC')).toBe(r.value);
        expect(isWellFormedText(r.value)).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });

  it('refuses any value with an invisible or bidi character inserted', () => {
    const hidden = fc.constantFrom(
      '\u200b',
      '\u200c',
      '\u200d',
      '\u2060',
      '\ufeff',
      '\u202e',
      '\u2066',
      '\u200f',
    );
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme-ascii', minLength: 2, maxLength: 20 }),
        hidden,
        fc.nat(),
        (v, h, at) => {
          const t = v.trim();
          fc.pre(t.length >= 2);
          const i = 1 + (at % (t.length - 1));
          const r = checkIdentifier(t.slice(0, i) + h + t.slice(i));
          expect(r.ok).toBe(false);
          if (!r.ok) expect(['invisible', 'bidi-control']).toContain(r.problem);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('refuses any value holding a lone surrogate', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 10 }),
        fc.integer({ min: 0xd800, max: 0xdfff }),
        fc.string({ maxLength: 10 }),
        (a, s, b) => {
          // A high surrogate followed by a low one would pair up: keep b from starting with one.
          fc.pre(!/^[\udc00-\udfff]/.test(b) && !/[\ud800-\udbff]$/.test(a));
          expect(refused(a + String.fromCharCode(s) + b)).toBe('lone-surrogate');
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('never puts the value into the message', () => {
    fc.assert(
      fc.property(anyText, (v) => {
        const r = checkIdentifier(v);
        if (!r.ok) expect(Object.values(IDENTIFIER_PROBLEMS)).toContain(r.message);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('normaliseText', () => {
  it('equals NFC for any text (its fast path skips only text that is already NFC)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 30 }),
          fc.string({ unit: 'grapheme', maxLength: 10 }),
        ),
        (v) => {
          expect(normaliseText(v)).toBe(v.normalize('NFC'));
          expect(normaliseText(v.normalize('NFD'))).toBe(v.normalize('NFC'));
        },
      ),
      { numRuns: 3000 },
    );
  });
});

describe('isHighlyRestrictive', () => {
  it('treats Common and Inherited characters as going with any script', () => {
    expect(isHighlyRestrictive('12-34/56')).toBe(true);
    expect(isHighlyRestrictive('МРН-123')).toBe(true);
    expect(isHighlyRestrictive('MRN-\u0430')).toBe(false);
  });
});
