import { createHash } from 'node:crypto';

/**
 * The large payloads of the R5 cases, generated rather than stored (a 5 MB and
 * a 17 MiB message do not belong in git): deterministic, so their SHA-256 is
 * written down in cases.ts as part of the specification.
 *
 * The PDF is a valid one-page PDF 1.4 ("Made-up pathology report") padded with
 * an unreferenced stream object of pseudo-random bytes (SHA-256 in counter
 * mode), so every byte value 0x00-0xFF occurs, including the MLLP framing
 * bytes 0x0B, 0x1C and 0x0D, and the HL7 delimiters: only a byte-exact path
 * survives it.
 */
export function madeUpPdf(totalBytes: number, seed: string): Buffer {
  const text = 'BT /F1 14 Tf 72 720 Td (Made-up pathology report - conformance corpus, not a patient) Tj ET';
  const head = Buffer.from('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n', 'latin1');
  const objs: Buffer[] = [
    Buffer.from('1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n'),
    Buffer.from('2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n'),
    Buffer.from(
      '3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R ' +
        '/Resources << /Font << /F1 5 0 R >> >> >>\nendobj\n',
    ),
    Buffer.from(`4 0 obj\n<< /Length ${text.length} >>\nstream\n${text}\nendstream\nendobj\n`),
    Buffer.from('5 0 obj\n<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>\nendobj\n'),
  ];
  const tail = (offsets: number[], xrefAt: number) =>
    Buffer.from(
      `xref\n0 ${offsets.length + 1}\n0000000000 65535 f \n` +
        offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('') +
        `trailer\n<< /Size ${offsets.length + 1} /Root 1 0 R >>\nstartxref\n${xrefAt}\n%%EOF\n`,
    );
  // Size the filler so that the whole file is exactly totalBytes.
  const fixed = (fill: number) => {
    const open = Buffer.from(`6 0 obj\n<< /Length ${fill} >>\nstream\n`);
    const close = Buffer.from('\nendstream\nendobj\n');
    const offsets: number[] = [];
    let at = head.length;
    for (const o of objs) {
      offsets.push(at);
      at += o.length;
    }
    offsets.push(at);
    const xrefAt = at + open.length + fill + close.length;
    return { open, close, offsets, xrefAt, size: xrefAt + tail(offsets, xrefAt).length };
  };
  let fill = totalBytes - fixed(0).size;
  while (fixed(fill).size > totalBytes) fill--;
  while (fixed(fill).size < totalBytes) fill++;
  const f = fixed(fill);
  const filler = Buffer.alloc(fill);
  for (let i = 0, block = 0; i < fill; block++) {
    const h = createHash('sha256').update(`${seed}:${block}`).digest();
    i += h.copy(filler, i);
  }
  return Buffer.concat([head, ...objs, f.open, filler, f.close, tail(f.offsets, f.xrefAt)]);
}

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Fillers of the R5 message templates (`@@NAME@@` in the .hl7 file → base64 of the payload). */
export const PAYLOADS = {
  PDF_5MB: () => madeUpPdf(3_750_000, 'conformance-R5-01'),
  PDF_40KB: () => madeUpPdf(40_000, 'conformance-R5-02'),
  PDF_17MIB: () => madeUpPdf(13_500_000, 'conformance-R5-03'),
} as const;
export type PayloadName = keyof typeof PAYLOADS;
