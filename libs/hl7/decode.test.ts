import { describe, expect, it } from 'vitest';
import {
  charsetForMsh18,
  decodeEscapes,
  decodeHl7Bytes,
  DEFAULT_DELIMITERS,
  normaliseSegmentTerminators,
  sniffMsh18,
} from './decode.js';

const msh = (msh18: string) => `MSH|^~\\&|A|B|C|D|20240101||ADT^A28|1|P|2.5.1||||||${msh18}`;

describe('decodeHl7Bytes', () => {
  it('given MSH-18 8859/1 and latin1 bytes, when decoded, then the text is right and the charset is latin1', () => {
    const bytes = Buffer.concat([
      Buffer.from(`${msh('8859/1')}\rPID|1||X||M`, 'latin1'),
      Buffer.from([0xfc]),
      Buffer.from('ller\r'),
    ]);
    const d = decodeHl7Bytes(bytes);
    expect(d).toMatchObject({ charset: 'latin1', declared: '8859/1', supported: true });
    expect(d.text).toContain('PID|1||X||Müller');
  });

  it('given MSH-18 UNICODE UTF-8, when decoded, then multi-byte characters survive', () => {
    const d = decodeHl7Bytes(Buffer.from(`${msh('UNICODE UTF-8')}\rPID|1||X||Zoë^李`, 'utf8'));
    expect(d.charset).toBe('utf8');
    expect(d.text).toContain('Zoë^李');
  });

  it('given no MSH-18, when the bytes are valid UTF-8 they are UTF-8, otherwise latin1', () => {
    expect(decodeHl7Bytes(Buffer.from(`${msh('')}\rPID|Zoë`, 'utf8'))).toMatchObject({
      charset: 'utf8',
      declared: '',
    });
    const latin = decodeHl7Bytes(Buffer.from(`${msh('')}\rPID|Zoë`, 'latin1'));
    expect(latin.charset).toBe('latin1');
    expect(latin.text).toContain('Zoë');
  });

  it('given MSH-18 ASCII but 8-bit bytes, when decoded, then nothing is lost (UTF-8 if valid, else latin1)', () => {
    expect(decodeHl7Bytes(Buffer.from(`${msh('ASCII')}\rPID|Zoë`, 'utf8'))).toMatchObject({
      charset: 'utf8',
    });
    const latin = decodeHl7Bytes(Buffer.from(`${msh('ASCII')}\rPID|Zoë`, 'latin1'));
    expect(latin).toMatchObject({ charset: 'latin1', declared: 'ASCII' });
    expect(latin.text).toContain('Zoë');
    expect(decodeHl7Bytes(Buffer.from(`${msh('ASCII')}\rPID|Zoe`))).toMatchObject({ charset: 'ascii' });
  });

  it('given an unknown MSH-18, when decoded, then it is flagged unsupported (the mapper refuses it)', () => {
    expect(decodeHl7Bytes(Buffer.from(msh('EBCDIC')))).toMatchObject({
      supported: false,
      declared: 'EBCDIC',
    });
  });

  it('given a repeated MSH-18, when sniffed, then the first repetition counts', () => {
    expect(sniffMsh18(Buffer.from(msh('8859/1~ISO IR87')))).toBe('8859/1');
  });

  it('given \\r\\n and \\n terminators and MLLP frame bytes, when decoded, then segments end in \\r only', () => {
    const d = decodeHl7Bytes(Buffer.from(`\x0b${msh('ASCII')}\r\nEVN|A28\nPID|1\r\n\x1c\r`));
    expect(d.text).toBe(`${msh('ASCII')}\rEVN|A28\rPID|1`);
    expect(normaliseSegmentTerminators('a\r\nb\nc\rd')).toBe('a\rb\rc\rd');
  });

  it('knows the table 0211 names and common spellings', () => {
    expect(charsetForMsh18('ASCII')).toBe('ascii');
    expect(charsetForMsh18('iso-8859-1')).toBe('latin1');
    expect(charsetForMsh18('UTF-8')).toBe('utf8');
    expect(charsetForMsh18('UNICODE UTF-16')).toBeUndefined();
  });
});

describe('decodeEscapes', () => {
  it('given the standard escapes, when decoded, then they become the delimiters they stand for', () => {
    expect(decodeEscapes('a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f')).toBe('a|b^c&d~e\\f');
  });

  it('given \\.br\\, \\Xhh\\ and highlighting, when decoded, then newline, bytes and nothing', () => {
    expect(decodeEscapes('one\\.br\\two \\H\\bold\\N\\ \\X4142\\')).toBe('one\ntwo bold AB');
    expect(decodeEscapes('\\XC3A9\\', DEFAULT_DELIMITERS, 'utf8')).toBe('é');
    expect(decodeEscapes('\\XE9\\', DEFAULT_DELIMITERS, 'latin1')).toBe('é');
  });

  it('given other delimiters (MSH-2 "$*!%"), when decoded, then the escape character is honoured', () => {
    const d = { field: '#', component: '$', repetition: '*', escape: '!', subcomponent: '%' };
    expect(decodeEscapes('a!F!b!S!c!E!d', d)).toBe('a#b$c!d');
    expect(decodeEscapes('a\\F\\b', d)).toBe('a\\F\\b');
  });

  it('given an unterminated or unknown escape, when decoded, then the text is kept literally', () => {
    expect(decodeEscapes('50\\% off')).toBe('50\\% off');
    expect(decodeEscapes('a\\Q\\b')).toBe('a\\Q\\b');
  });
});
