import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CR, DEFAULT_MAX_MESSAGE_BYTES, FS, MllpFramer, VT, mllpFrame, type FrameEvent } from './mllp.js';

const msg = (id: string) =>
  `MSH|^~\\&|EHR|HOSP|HUB|HUB|20260101120000||ADT^A01^ADT_A01|${id}|P|2.5.1\rPID|1||123^^^HOSP^MR`;

function frames(events: FrameEvent[]): string[] {
  return events.flatMap((e) => (e.kind === 'frame' ? [e.bytes.toString('utf8')] : []));
}

function feed(framer: MllpFramer, chunks: Buffer[]): FrameEvent[] {
  return chunks.flatMap((c) => framer.push(c));
}

describe('MllpFramer', () => {
  it('given one whole frame in one read, when pushed, then yields the body', () => {
    const f = new MllpFramer({ maxMessageBytes: 10_000 });
    expect(frames(f.push(mllpFrame(msg('1'))))).toEqual([msg('1')]);
    expect(f.midFrame).toBe(false);
  });

  it('given a frame split at every possible byte, when pushed in two reads, then yields it once', () => {
    const whole = mllpFrame(msg('2'));
    for (let cut = 1; cut < whole.length; cut++) {
      const f = new MllpFramer({ maxMessageBytes: 10_000 });
      const out = feed(f, [whole.subarray(0, cut), whole.subarray(cut)]);
      expect(frames(out)).toEqual([msg('2')]);
    }
  });

  it('given two frames in one read, when pushed, then yields both in order', () => {
    const f = new MllpFramer({ maxMessageBytes: 10_000 });
    const out = f.push(Buffer.concat([mllpFrame(msg('a')), mllpFrame(msg('b'))]));
    expect(frames(out)).toEqual([msg('a'), msg('b')]);
  });

  it('given bytes before the start block, when pushed, then reports junk and still yields the frame', () => {
    const f = new MllpFramer({ maxMessageBytes: 10_000 });
    const out = f.push(Buffer.concat([Buffer.from('\r\nGARBAGE'), mllpFrame(msg('c'))]));
    expect(out[0]).toEqual({ kind: 'junk', length: 9, blank: false });
    expect(frames(out)).toEqual([msg('c')]);
  });

  it('given only CR/LF/space/tab between frames, when pushed, then the junk is reported as blank', () => {
    const f = new MllpFramer({ maxMessageBytes: 10_000 });
    const out = f.push(Buffer.concat([mllpFrame(msg('a')), Buffer.from('\n \t\r\n'), mllpFrame(msg('b'))]));
    expect(out.filter((e) => e.kind === 'junk')).toEqual([{ kind: 'junk', length: 5, blank: true }]);
    expect(frames(out)).toEqual([msg('a'), msg('b')]);
  });

  it('given an HTTP request line or a TLS ClientHello where a frame should start, when pushed, then the junk is not blank', () => {
    for (const first of [Buffer.from('POST / HTTP/1.1\r\n'), Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00])]) {
      const f = new MllpFramer({ maxMessageBytes: 10_000 });
      // The non-blank byte may come in a later read than the blank ones before it.
      expect(f.push(Buffer.from('\r\n'))).toEqual([{ kind: 'junk', length: 2, blank: true }]);
      expect(f.push(first)).toEqual([{ kind: 'junk', length: first.length, blank: false }]);
    }
  });

  it('given a lone FS inside the body, when pushed, then it is data, not an end block', () => {
    const f = new MllpFramer({ maxMessageBytes: 10_000 });
    const body = Buffer.from(`A${String.fromCharCode(FS)}B`);
    expect(f.push(Buffer.concat([Buffer.from([VT]), body, Buffer.from([FS])]))).toEqual([]);
    expect(frames(f.push(Buffer.from([CR])))).toEqual([body.toString()]);
  });

  it('given a frame over the maximum, when pushed, then reports oversize with a prefix and recovers for the next frame', () => {
    const f = new MllpFramer({ maxMessageBytes: 100, keepPrefixBytes: 20 });
    const big = `MSH|^~\\&|X|Y|||||ADT^A01|BIG|P|2.5\r${'Z'.repeat(500)}`;
    const out = feed(f, [mllpFrame(big).subarray(0, 60), mllpFrame(big).subarray(60), mllpFrame(msg('d'))]);
    const over = out.find((e) => e.kind === 'oversize');
    expect(over).toMatchObject({ kind: 'oversize', length: Buffer.byteLength(big) });
    expect(over?.kind === 'oversize' && over.prefix.toString()).toBe(big.slice(0, 20));
    expect(frames(out)).toEqual([msg('d')]);
  });

  it('given a start block inside an unfinished frame, when pushed, then the partial is reported and the new frame kept apart', () => {
    const f = new MllpFramer({ maxMessageBytes: 10_000 });
    const out = f.push(Buffer.concat([Buffer.from([VT]), Buffer.from('MSH|partial'), mllpFrame(msg('e'))]));
    expect(out[0]).toMatchObject({ kind: 'incomplete' });
    expect(out[0]?.kind === 'incomplete' && out[0].bytes.toString()).toBe('MSH|partial');
    expect(frames(out)).toEqual([msg('e')]);
  });

  it('given an unfinished frame, when abandoned (timeout), then returns what was held and starts clean', () => {
    const f = new MllpFramer({ maxMessageBytes: 10_000 });
    f.push(Buffer.concat([Buffer.from([VT]), Buffer.from('MSH|half')]));
    expect(f.midFrame).toBe(true);
    expect(f.abandon()?.toString()).toBe('MSH|half');
    expect(f.midFrame).toBe(false);
    expect(frames(f.push(mllpFrame(msg('f'))))).toEqual([msg('f')]);
  });

  it('property: any split of any sequence of frames yields exactly those frames', () => {
    const body = fc
      .uint8Array({ maxLength: 300 })
      .map((a) => Buffer.from(a.filter((b) => b !== VT && b !== FS)))
      .map((b) => b.toString('latin1'));
    fc.assert(
      fc.property(fc.array(body, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 10 }), (bodies, cuts) => {
        const stream = Buffer.concat(bodies.map((b) => mllpFrame(Buffer.from(b, 'latin1'))));
        const points = [...new Set(cuts.map((c) => (stream.length ? c % stream.length : 0)))].sort(
          (a, b) => a - b,
        );
        const chunks: Buffer[] = [];
        let prev = 0;
        for (const p of points) {
          chunks.push(stream.subarray(prev, p));
          prev = p;
        }
        chunks.push(stream.subarray(prev));
        const f = new MllpFramer({ maxMessageBytes: 10_000 });
        const got = feed(f, chunks).flatMap((e) => (e.kind === 'frame' ? [e.bytes.toString('latin1')] : []));
        expect(got).toEqual(bodies);
      }),
      { numRuns: 500 },
    );
  });

  it('property: given a socket that reuses its read buffer, when every read is overwritten after push, then frames (whole, partial, abandoned) are intact', () => {
    const body = fc
      .uint8Array({ maxLength: 200 })
      .map((a) => Buffer.from(a.filter((b) => b !== VT && b !== FS)).toString('latin1'));
    fc.assert(
      fc.property(
        fc.array(body, { minLength: 1, maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        fc.boolean(),
        (bodies, cuts, unfinished) => {
          // Given a stream of frames, optionally ending inside one more, cut into reads
          const tail = unfinished ? Buffer.from([VT, 0x41, 0x42]) : Buffer.alloc(0);
          const stream = Buffer.concat([...bodies.map((b) => mllpFrame(Buffer.from(b, 'latin1'))), tail]);
          const points = [...new Set(cuts.map((c) => c % stream.length))].sort((a, b) => a - b);
          const bounds = [0, ...points, stream.length];
          // When each read lands in the same buffer, overwritten once the framer has it
          const reused = Buffer.alloc(stream.length);
          const f = new MllpFramer({ maxMessageBytes: 10_000 });
          const got: Buffer[] = [];
          for (let k = 1; k < bounds.length; k++) {
            const [from, to] = [bounds[k - 1] ?? 0, bounds[k] ?? 0];
            stream.copy(reused, 0, from, to);
            for (const e of f.push(reused.subarray(0, to - from))) if (e.kind === 'frame') got.push(e.bytes);
            reused.fill(0x5a);
          }
          // Then every frame and the abandoned partial read as sent
          expect(got.map((b) => b.toString('latin1'))).toEqual(bodies);
          expect(f.abandon()?.toString('latin1') ?? null).toBe(unfinished ? 'AB' : null);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('given a frame in one read, when pushed, then the frame is a copy: changing the read afterwards does not change it', () => {
    const read = mllpFrame(msg('g'));
    const [ev] = new MllpFramer({ maxMessageBytes: 10_000 }).push(read);
    read.fill(0);
    expect(ev?.kind === 'frame' ? ev.bytes.toString() : null).toBe(msg('g'));
  });

  it('property: arbitrary bytes never throw, never hold more than the maximum, and a following frame still arrives', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 400 }), { maxLength: 12 }), (chunks) => {
        const f = new MllpFramer({ maxMessageBytes: 256, keepPrefixBytes: 64 });
        for (const c of chunks) {
          const out = f.push(Buffer.from(c));
          for (const e of out) {
            if (e.kind === 'frame') expect(e.bytes.length).toBeLessThanOrEqual(256);
            if (e.kind === 'oversize') expect(e.prefix.length).toBeLessThanOrEqual(64);
          }
          expect(f.bufferedBytes <= 256 || f.midFrame).toBe(true);
        }
        // Whatever came before, a timeout (abandon) plus one clean frame resynchronises.
        f.abandon();
        expect(frames(f.push(mllpFrame(msg('z'))))).toEqual([msg('z')]);
      }),
      { numRuns: 1000 },
    );
  });

  describe('the default limit (16 MiB: PDF reports as base64 ED)', () => {
    /** A body of exactly `size` bytes that starts like an HL7 message and holds no MLLP control byte. */
    const body = (size: number) => {
      const b = Buffer.alloc(size, 0x41);
      b.write(msg('big'), 0, 'latin1');
      return b;
    };
    const reads = (b: Buffer, size = 64 * 1024) => {
      const out: Buffer[] = [];
      for (let i = 0; i < b.length; i += size) out.push(b.subarray(i, i + size));
      return out;
    };

    it('is 16 MiB', () => {
      expect(DEFAULT_MAX_MESSAGE_BYTES).toBe(16_777_216);
    });

    it('given a frame of exactly 16 MiB in 64 KiB reads, when pushed, then it arrives whole, once, in linear time', () => {
      // given
      const b = body(DEFAULT_MAX_MESSAGE_BYTES);
      const f = new MllpFramer({ maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES });
      // when
      const t0 = performance.now();
      const out = feed(f, reads(mllpFrame(b)));
      const ms = performance.now() - t0;
      // then
      expect(out.map((e) => e.kind)).toEqual(['frame']);
      expect((out[0] as { bytes: Buffer }).bytes.equals(b)).toBe(true);
      // 257 reads: a re-concatenating framer would copy ~2 GiB here; this one copies 32 MiB.
      expect(ms).toBeLessThan(2_000);
    });

    it('given one byte more than 16 MiB, when pushed, then it is oversize with only the MSH prefix kept', () => {
      const f = new MllpFramer({ maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES });
      const out = feed(f, reads(mllpFrame(body(DEFAULT_MAX_MESSAGE_BYTES + 1))));
      expect(out).toHaveLength(1);
      const e = out[0]!;
      if (e.kind !== 'oversize') throw new Error(`expected oversize, got ${e.kind}`);
      expect(e.length).toBe(DEFAULT_MAX_MESSAGE_BYTES + 1);
      expect(e.prefix.length).toBe(4096);
      expect(e.prefix.toString('latin1').startsWith('MSH|')).toBe(true);
    });
  });
});
