import { describe, expect, it } from 'vitest';
import { outcomeOfAck, parseAck } from './mllp.js';

const ack = (msa: string, ...rest: string[]) =>
  Buffer.from(
    [`MSH|^~\\&|RX|RXF|HUB|HUBFAC|20260102080000||ACK^A28^ACK|a1|P|2.5.1`, msa, ...rest].join('\r'),
  );

describe('MLLP ACK → outcome', () => {
  it('given AA or CA for the control id, then delivered', () => {
    for (const code of ['AA', 'CA']) {
      const a = parseAck(ack(`MSA|${code}|ctl-1`));
      expect(a?.controlId).toBe('ctl-1');
      expect(outcomeOfAck(a ?? { code: '', controlId: '', text: '', errors: [] })).toEqual({
        kind: 'delivered',
        status: 'AA',
      });
    }
  });

  it('given AE, AR, CE or CR, then rejected with MSA-3 and every ERR as received', () => {
    for (const code of ['AE', 'AR', 'CE', 'CR']) {
      const a = parseAck(
        ack(`MSA|${code}|ctl-2|Bad \\F\\ thing`, 'ERR||PID^1^3|101^Missing^HL70357|E', 'ERR||PV1^1^2|101|W'),
      );
      expect(a && outcomeOfAck(a)).toEqual({
        kind: 'rejected',
        reason: `hl7-${code}`,
        detail: 'MSA-3: Bad \\F\\ thing\nERR||PID^1^3|101^Missing^HL70357|E\nERR||PV1^1^2|101|W',
      });
    }
  });

  it('given an unknown MSA-1, then unreachable (retried on a fresh connection); given no MSA, then no ACK', () => {
    const a = parseAck(ack('MSA|ZZ|ctl-3'));
    expect(a && outcomeOfAck(a)).toEqual({ kind: 'unreachable', reason: 'invalid-ack' });
    expect(parseAck(Buffer.from('MSH|^~\\&|RX\rPID|1'))).toBeNull();
    expect(parseAck(Buffer.from('hello'))).toBeNull();
  });

  it('reads an ACK written with other delimiters', () => {
    const a = parseAck(Buffer.from('MSH#$%*@#RX\rMSA#AE$x#ctl-4#oops\rERR###207'));
    expect(a).toEqual({ code: 'AE', controlId: 'ctl-4', text: 'oops', errors: ['ERR###207'] });
  });
});
