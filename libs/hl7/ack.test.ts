import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HubError } from '../errors/index.js';
import {
  ackCodesFor,
  ackErrorFor,
  buildAck,
  charsetOf,
  encodeAck,
  hl7Escape,
  mshEnd,
  sniffMsh,
  sniffMshWithin,
} from './ack.js';

const NOW = Date.UTC(2026, 0, 2, 3, 4, 5);
const adt =
  'MSH|^~\\&|EHR^1.2.3^ISO|GENHOSP|HUB|HUBFAC|20260101120000||ADT^A01^ADT_A01|CTRL-1|P|2.5.1\rEVN|A01\rPID|1||123^^^HOSP^MR';

describe('sniffMsh', () => {
  it('given a message with CR, LF or CRLF terminators, when sniffed, then reads the MSH fields', () => {
    for (const term of ['\r', '\n', '\r\n']) {
      const m = sniffMsh(Buffer.from(adt.replaceAll('\r', term)));
      expect(m).toMatchObject({
        sendingApplication: 'EHR^1.2.3^ISO',
        sendingFacility: 'GENHOSP',
        receivingApplication: 'HUB',
        controlId: 'CTRL-1',
        messageCode: 'ADT',
        triggerEvent: 'A01',
        processingId: 'P',
        version: '2.5.1',
        charset: 'utf8',
      });
    }
  });

  it('given MSH-18 8859/1, when sniffed, then the charset is latin1', () => {
    const m = sniffMsh(Buffer.from(`MSH|^~\\&|A|B|C|D|x||ADT^A08|9|P|2.3||||||8859/1\rPID|1`, 'latin1'));
    expect(m?.charset).toBe('latin1');
    expect(m?.declaredCharset).toBe('8859/1');
  });

  it('given no MSH or nonsense, when sniffed, then null (never a throw)', () => {
    expect(sniffMsh(Buffer.from('PID|1||x'))).toBeNull();
    expect(sniffMsh(Buffer.from(''))).toBeNull();
    expect(sniffMsh(Buffer.from('MSHA'))).toBeNull();
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (b) => void sniffMsh(Buffer.from(b))));
  });

  it('property: given any bytes, when sniffed from MSH alone, then the result equals sniffing the whole 8 KiB window', () => {
    // Bytes around an MSH: blanks, non-ASCII (UTF-8 and not), terminators, a BOM, MSH-18 values.
    const piece = fc.oneof(
      fc.constantFrom('MSH|^~\\&|', 'MSH', '|', '^', '~', '\r', '\n', ' ', '\t', 'é', '€', 'ÿ', '\u00a0'),
      fc.constantFrom('||||||UNICODE UTF-8', '||||||8859/1', '||||||ASCII', 'ADT^A01', 'C1|P|2.5.1'),
    );
    const text = fc.array(piece, { maxLength: 40 }).map((p) => p.join(''));
    const bytes = fc.oneof(
      fc
        .tuple(text, fc.constantFrom('utf8', 'latin1') as fc.Arbitrary<BufferEncoding>)
        .map(([t, enc]) => Buffer.from(t, enc)),
      fc
        .tuple(fc.uint8Array({ maxLength: 40 }), text)
        .map(([junk, t]) => Buffer.concat([junk, Buffer.from(t)])),
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
    );
    fc.assert(
      fc.property(bytes, (b) => {
        // The reading before this change: every sniff decoded up to 8 KiB, twice.
        expect(sniffMsh(b)).toEqual(sniffMshWithin(b, Math.min(b.length, 8192)));
      }),
      { numRuns: 2000 },
    );
  });

  it('given a UTF-8 sender name and no MSH-18, when sniffed, then it reads as UTF-8; an ASCII one as itself', () => {
    expect(sniffMsh(Buffer.from('MSH|^~\\&|Hôpital|Bâle|HUB|F|x||ADT^A01|C1|P|2.5.1\rPID|1'))).toMatchObject({
      sendingApplication: 'Hôpital',
      sendingFacility: 'Bâle',
      charset: 'utf8',
    });
    expect(sniffMsh(Buffer.from('MSH|^~\\&|EHR|GEN|HUB|F|x||ADT^A01|C1|P|2.5.1'))?.sendingApplication).toBe(
      'EHR',
    );
  });

  it('given an MSH segment longer than the window, when sniffed, then it reads the window as before', () => {
    // Given an MSH-3 of 9,000 bytes of 2-byte characters and no terminator within 8 KiB
    const b = Buffer.from(`MSH|^~\\&|${'é'.repeat(4500)}|F\rPID|1`);
    // When the end is found, then it is the window, and the sniff equals the whole-window one
    expect(mshEnd(b)).toBe(8192);
    expect(sniffMsh(b)).toEqual(sniffMshWithin(b, 8192));
  });

  it('knows the charsets the hub reads', () => {
    expect(charsetOf('UNICODE UTF-8')).toBe('utf8');
    expect(charsetOf('ASCII')).toBe('ascii');
    expect(charsetOf('')).toBe('utf8');
    expect(charsetOf('ISO IR87')).toBeNull();
  });
});

describe('buildAck', () => {
  const msh = sniffMsh(Buffer.from(adt));

  it('given an accepted message, when acknowledged, then MSH swaps sender and receiver and MSA echoes MSH-10', () => {
    expect(buildAck(msh, { code: 'AA', ackControlId: 'ACK-1', now: NOW })).toBe(
      'MSH|^~\\&|HUB|HUBFAC|EHR^1.2.3^ISO|GENHOSP|20260102030405+0000||ACK^A01^ACK|ACK-1|P|2.5.1\r' +
        'MSA|AA|CTRL-1',
    );
  });

  it('given a content error, when acknowledged, then ERR carries location, code and severity', () => {
    const ack = buildAck(msh, {
      code: 'AE',
      ackControlId: 'ACK-2',
      now: NOW,
      error: {
        hl7ErrorCode: '101',
        location: { segment: 'PID', segmentSequence: 1, field: 3 },
        severity: 'E',
      },
    });
    expect(ack.split('\r')).toEqual([
      'MSH|^~\\&|HUB|HUBFAC|EHR^1.2.3^ISO|GENHOSP|20260102030405+0000||ACK^A01^ACK|ACK-2|P|2.5.1',
      'MSA|AE|CTRL-1',
      'ERR||PID^1^3|101^Required field missing^HL70357|E',
    ]);
  });

  it('given a v2.3 message, when refused, then ERR-1 carries the location and code too', () => {
    const old = sniffMsh(Buffer.from('MSH|^~\\&|LAB|L|HUB|H|x||ORU^R01|7|P|2.3\r'));
    const ack = buildAck(old, {
      code: 'AE',
      ackControlId: 'A',
      now: NOW,
      error: { hl7ErrorCode: '102', location: { segment: 'OBX', segmentSequence: 2, field: 5 } },
    });
    expect(ack.split('\r')[2]).toBe(
      'ERR|OBX^2^5^102&Data type error&HL70357|OBX^2^5|102^Data type error^HL70357|E',
    );
  });

  it('given unusual delimiters, when acknowledged, then the ACK uses them', () => {
    const m = sniffMsh(Buffer.from('MSH#$~\\&#APP#FAC#HUB#H#x##ADT$A08#ID9#T#2.4\r'));
    expect(buildAck(m, { code: 'AA', ackControlId: 'Z', now: NOW })).toBe(
      'MSH#$~\\&#HUB#H#APP#FAC#20260102030405+0000##ACK$A08$ACK#Z#T#2.4\rMSA#AA#ID9',
    );
  });

  it('given no MSH at all, when refused, then a generic AR with an empty MSA-2', () => {
    expect(buildAck(null, { code: 'AR', ackControlId: 'Q', now: NOW, error: { hl7ErrorCode: '207' } })).toBe(
      'MSH|^~\\&|||||20260102030405+0000||ACK^^ACK|Q|P|2.5.1\rMSA|AR|\rERR|||207^Application internal error^HL70357|E',
    );
  });

  it('escapes delimiters in text', () => {
    expect(hl7Escape('a|b^c~d\\e&f', '|', '^~\\&')).toBe('a\\F\\b\\S\\c\\R\\d\\E\\e\\T\\f');
  });

  it('encodes in the declared charset', () => {
    expect(encodeAck('é', 'latin1')).toEqual(Buffer.from([0xe9]));
    expect(encodeAck('é', 'utf8')).toEqual(Buffer.from([0xc3, 0xa9]));
  });
});

describe('ackCodesFor', () => {
  const withModes = (a: string, b: string) =>
    sniffMsh(Buffer.from(`MSH|^~\\&|A|B|C|D|x||ADT^A01|1|P|2.5|||${a}|${b}\r`));

  it('original mode: AA / AE / AR, and AR when Kafka is unavailable', () => {
    const m = withModes('', '');
    expect(ackCodesFor(m, 'accepted')).toEqual(['AA']);
    expect(ackCodesFor(m, 'content-error')).toEqual(['AE']);
    expect(ackCodesFor(m, 'rejected')).toEqual(['AR']);
    expect(ackCodesFor(m, 'unavailable')).toEqual(['AR']);
  });

  it('enhanced mode: accept ACK then application ACK as MSH-15/16 ask', () => {
    expect(ackCodesFor(withModes('AL', 'AL'), 'accepted')).toEqual(['CA', 'AA']);
    expect(ackCodesFor(withModes('AL', 'ER'), 'accepted')).toEqual(['CA']);
    expect(ackCodesFor(withModes('NE', 'AL'), 'content-error')).toEqual(['AE']);
    expect(ackCodesFor(withModes('ER', 'NE'), 'accepted')).toEqual([]);
    expect(ackCodesFor(withModes('AL', 'AL'), 'rejected')).toEqual(['CR']);
    expect(ackCodesFor(withModes('SU', 'AL'), 'unavailable')).toEqual([]);
    expect(ackCodesFor(withModes('AL', 'AL'), 'unavailable')).toEqual(['CE']);
  });
});

describe('sniffMsh delimiters', () => {
  it('given repeated or alphanumeric delimiters, when sniffed, then null', () => {
    expect(sniffMsh(Buffer.from('MSH^||||'))).toBeNull();
    expect(sniffMsh(Buffer.from('MSH|^^\\&|A'))).toBeNull();
    expect(sniffMsh(Buffer.from('MSH|^A\\&|A'))).toBeNull();
  });
});

describe('ackErrorFor (the HL7 edge of ERROR_CODES)', () => {
  it('given a broker that did not acknowledge, when answered, then AR 207 with the text given', () => {
    expect(
      ackErrorFor(new HubError('HUB_KAFKA_UNAVAILABLE', 'x'), 'Message not stored, resend later'),
    ).toEqual({
      ack: 'AR',
      error: { hl7ErrorCode: '207', severity: 'E', text: 'Message not stored, resend later' },
    });
  });

  it("given invalid content, when answered, then AE, keeping a refusal's own table 0357 code", () => {
    expect(ackErrorFor(new HubError('HUB_INPUT_INVALID', 'PID-7 is not a date'))).toEqual({
      ack: 'AE',
      error: { hl7ErrorCode: '102', severity: 'E' },
    });
    const refused = new HubError('HUB_INPUT_INVALID', 'x', { details: { hl7ErrorCode: '101' } });
    expect(ackErrorFor(refused).error.hl7ErrorCode).toBe('101');
    const odd = new HubError('HUB_INPUT_INVALID', 'x', { details: { hl7ErrorCode: 'toString' } });
    expect(ackErrorFor(odd).error.hl7ErrorCode).toBe('102');
  });

  it("given an unknown throw or a code no sender causes, when answered, then AR 207 (our bug, not the sender's)", () => {
    expect(ackErrorFor(new Error('boom'))).toEqual({
      ack: 'AR',
      error: { hl7ErrorCode: '207', severity: 'E' },
    });
    expect(ackErrorFor(new HubError('HUB_FORBIDDEN', 'x'))).toMatchObject({
      ack: 'AR',
      error: { hl7ErrorCode: '207' },
    });
  });

  it('given the ERR it makes, when built into an ACK, then ERR-3 carries the code and the table wording', () => {
    const { error } = ackErrorFor(new HubError('HUB_DB_ERROR', 'x'));
    const ack = buildAck(sniffMsh(Buffer.from(adt)), { code: 'AR', ackControlId: 'A1', now: NOW, error });
    expect(ack.split('\r')).toContain('ERR|||207^Application internal error^HL70357|E');
  });
});
