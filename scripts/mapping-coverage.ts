/**
 * How much of what our own corpora send is mapped: every HL7 v2 field that
 * carries a value in test/conformance/messages and test/fixtures/hl7, and
 * every FHIR element present in test/fixtures/fhir, looked up in the mapping
 * tables (libs/hl7/mapping.md, libs/fhir/mapping.md). A field is "mapped" when
 * a table row names it, "deliberately not" when that row says it is not mapped
 * (and why), and "unlisted" when no row names it: the tables are the contract,
 * so an unlisted field is a gap in the documentation or in the mapping.
 *
 *   tsx scripts/mapping-coverage.ts            print the counts and the unlisted fields
 *   tsx scripts/mapping-coverage.ts --check    exit 1 when any field is unlisted
 *   tsx scripts/mapping-coverage.ts --json     the full classification as JSON
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

export type Verdict = 'mapped' | 'deliberately not' | 'unlisted';

/** Words a mapping-table row uses when it documents a field that is deliberately not mapped. */
const NOT_MAPPED =
  /\b(not mapped|deliberately not|not read|ignored|dropped|not carried|not kept|out of scope)\b/i;

function files(dir: string, ext: RegExp): string[] {
  try {
    return readdirSync(join(root, dir))
      .filter((f) => ext.test(f))
      .map((f) => join(root, dir, f));
  } catch {
    return [];
  }
}

/** Field ids (e.g. `OBX-4`, `MSH-9`) that hold a value in one HL7 v2 message. */
export function hl7FieldsIn(text: string): Set<string> {
  const out = new Set<string>();
  const stripped = text.replace(/^\uFEFF/, '');
  // A leading MLLP start byte (VT) left in a captured file is framing, not content.
  const body = stripped.startsWith('\u000b') ? stripped.slice(1) : stripped;
  const fieldSep = body.startsWith('MSH') ? body.charAt(3) : '|';
  for (const seg of body.split(/\r\n|\r|\n/)) {
    const name = seg.slice(0, 3);
    if (!/^[A-Z][A-Z0-9]{2}$/.test(name) || name.startsWith('Z')) continue;
    const fields = seg.split(fieldSep);
    fields.forEach((v, i) => {
      if (i === 0 || v === '') return;
      // MSH-1 is the field separator itself, so MSH positions are one higher than the split index.
      out.add(`${name}-${name === 'MSH' ? i + 1 : i}`);
    });
    if (name === 'MSH') out.add('MSH-1');
  }
  return out;
}

/** Element paths (`Observation.referenceRange`, `Patient.contact`) present in FHIR JSON, down to the second level. */
export function fhirElementsIn(value: unknown, out = new Set<string>()): Set<string> {
  const visit = (node: unknown, path: string | null, depth: number): void => {
    if (Array.isArray(node)) {
      for (const n of node) visit(n, path, depth);
      return;
    }
    if (node === null || typeof node !== 'object') return;
    const obj = node as Record<string, unknown>;
    const rt = obj['resourceType'];
    const type = typeof rt === 'string' ? rt : null;
    const base = type ?? path;
    for (const [k, v] of Object.entries(obj)) {
      if (k === 'resourceType' || k === 'id' || k === 'meta' || k === 'text' || base === null) continue;
      const p = `${base}.${k}`;
      if (type === 'Bundle' && k === 'entry') {
        for (const e of Array.isArray(v) ? v : []) {
          const r = (e as Record<string, unknown>)['resource'];
          if (r) visit(r, null, 0);
        }
        continue;
      }
      if (k === 'contained' || k === 'resource') {
        visit(v, null, 0);
        continue;
      }
      const d = type ? 1 : depth + 1;
      if (d <= 2) out.add(p);
      if (d < 2) visit(v, p, d);
    }
  };
  visit(value, null, 0);
  return out;
}

/** Table rows of a mapping document, lower-cased words kept as they are. */
function tableRows(md: string): string[] {
  return md.split('\n').filter((l) => l.trimStart().startsWith('|'));
}

/**
 * Field numbers in a coverage cell such as `1 (set id); 2, 4, 19 (why); 10–12`: numbers that start the
 * cell or follow `,` / `;`, ranges expanded; numbers inside the explanations are not field numbers.
 */
export function fieldNumbers(cell: string): number[] {
  const out: number[] = [];
  for (const m of cell.matchAll(/(?:^|[;,])\s*(\d+)(?:\s*[–-]\s*(\d+))?(?=\s*(?:[(,;]|$))/g)) {
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    for (let n = from; n <= to; n += 1) out.push(n);
  }
  return out;
}

/**
 * Verdicts from the per-segment coverage tables (`| PV1 | 2, 3, 4 | 1 (set id); 5 (why) |`): the
 * second cell lists mapped field numbers, the third the deliberately unmapped ones with their reasons.
 */
export function segmentCoverage(rows: readonly string[]): Map<string, Verdict> {
  const out = new Map<string, Verdict>();
  for (const row of rows) {
    const cells = row.split('|').map((c) => c.trim());
    const seg = cells[1] ?? '';
    if (!/^[A-Z][A-Z0-9]{2}$/.test(seg) || cells.length < 4) continue;
    for (const n of fieldNumbers(cells[3] ?? '')) out.set(`${seg}-${n}`, 'deliberately not');
    for (const n of fieldNumbers(cells[2] ?? '')) out.set(`${seg}-${n}`, 'mapped');
  }
  return out;
}

export function classify(id: string, rows: readonly string[], bySegment = segmentCoverage(rows)): Verdict {
  const listed = bySegment.get(id);
  if (listed) return listed;
  const escaped = id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  // `OBX-4` must not match `OBX-40`; `Patient.contact` must not match `Patient.contactPoint`.
  const re = new RegExp(`(^|[^A-Za-z0-9.-])${escaped}(?![0-9A-Za-z])`);
  const hits = rows.filter((r) => re.test(r));
  if (hits.length === 0) return 'unlisted';
  return hits.every((r) => NOT_MAPPED.test(r)) ? 'deliberately not' : 'mapped';
}

export function coverage(): { hl7: Map<string, Verdict>; fhir: Map<string, Verdict> } {
  const hl7Fields = new Set<string>();
  for (const f of [
    ...files('test/conformance/messages', /\.hl7$/),
    ...files('test/fixtures/hl7', /\.hl7$/),
  ]) {
    for (const id of hl7FieldsIn(readFileSync(f, 'latin1'))) hl7Fields.add(id);
  }
  const fhirElements = new Set<string>();
  for (const f of files('test/fixtures/fhir', /\.(json|ndjson)$/)) {
    const text = readFileSync(f, 'utf8');
    const docs = f.endsWith('.ndjson') ? text.split('\n').filter((l) => l.trim() !== '') : [text];
    for (const d of docs) {
      try {
        fhirElementsIn(JSON.parse(d), fhirElements);
      } catch {
        // An intentionally invalid fixture (e.g. invalid-patient.json) is not content a sender means.
      }
    }
  }
  const hl7Rows = tableRows(readFileSync(join(root, 'libs/hl7/mapping.md'), 'utf8'));
  const hl7Segments = segmentCoverage(hl7Rows);
  const fhirRows = tableRows(readFileSync(join(root, 'libs/fhir/mapping.md'), 'utf8'));
  const sortIds = (s: Set<string>) => [...s].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  return {
    hl7: new Map(sortIds(hl7Fields).map((id) => [id, classify(id, hl7Rows, hl7Segments)])),
    fhir: new Map(sortIds(fhirElements).map((id) => [id, classify(id, fhirRows)])),
  };
}

function counts(m: Map<string, Verdict>): Record<Verdict, number> {
  const c: Record<Verdict, number> = { mapped: 0, 'deliberately not': 0, unlisted: 0 };
  for (const v of m.values()) c[v] += 1;
  return c;
}

function main(): void {
  const args = new Set(process.argv.slice(2));
  const { hl7, fhir } = coverage();
  if (args.has('--json')) {
    console.log(JSON.stringify({ hl7: Object.fromEntries(hl7), fhir: Object.fromEntries(fhir) }, null, 2));
    return;
  }
  for (const [name, m] of [
    ['HL7 v2 fields with a value in the corpus', hl7],
    ['FHIR elements present in the fixtures', fhir],
  ] as const) {
    const c = counts(m);
    console.log(
      `${name}: ${m.size} — mapped ${c.mapped}, deliberately not ${c['deliberately not']}, unlisted ${c.unlisted}`,
    );
    const unlisted = [...m].filter(([, v]) => v === 'unlisted').map(([k]) => k);
    if (unlisted.length > 0) console.log(`  unlisted: ${unlisted.join(', ')}`);
  }
  if (args.has('--check') && [...hl7.values(), ...fhir.values()].includes('unlisted')) process.exitCode = 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
