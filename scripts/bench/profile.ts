// Summarises a V8 CPU profile (node --cpu-prof): top functions by self time,
// and self time grouped by package/area, so the analysis in
// docs/benchmarks.md can say where the time goes.
//   npm run bench:profile -- <file.cpuprofile | dir> [top]
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

interface CpuNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface CpuProfile {
  nodes: CpuNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileRow {
  name: string;
  selfMs: number;
  share: number;
}

/** Where a script URL belongs: a package, a hub folder, or node internals. */
function areaOf(url: string): string {
  if (!url) return '(native/vm)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
  if (pkg) return pkg;
  if (url.startsWith('node:')) return url.replace(/\/.*/s, '');
  return /\/(libs\/[^/]+|services\/[^/]+|scripts\/[^/]+)/.exec(url)?.[1] ?? url;
}

export function summariseProfile(
  p: CpuProfile,
  top = 20,
): { total: number; functions: ProfileRow[]; areas: ProfileRow[] } {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (const [i, id] of p.samples.entries()) self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  const fn = new Map<string, number>();
  const area = new Map<string, number>();
  let total = 0;
  for (const [id, us] of self) {
    const n = byId.get(id);
    if (!n) continue;
    const f = n.callFrame;
    if (f.functionName === '(idle)' || f.functionName === '(program)') {
      const k = f.functionName;
      fn.set(k, (fn.get(k) ?? 0) + us);
      area.set(k, (area.get(k) ?? 0) + us);
      total += us;
      continue;
    }
    const file = f.url
      .replace(/^file:\/\//, '')
      .replace(/.*\/(node_modules\/)/, '$1')
      .replace(/.*\/work\/main\//, '');
    const key = `${f.functionName || '(anonymous)'} ${file}:${f.lineNumber + 1}`;
    fn.set(key, (fn.get(key) ?? 0) + us);
    const a = f.functionName === '(garbage collector)' ? '(gc)' : areaOf(f.url);
    area.set(a, (area.get(a) ?? 0) + us);
    total += us;
  }
  const rows = (m: Map<string, number>) =>
    [...m]
      .map(([name, us]) => ({ name, selfMs: us / 1000, share: us / total }))
      .sort((a, b) => b.selfMs - a.selfMs)
      .slice(0, top);
  return { total: total / 1000, functions: rows(fn), areas: rows(area) };
}

export async function summariseProfileFile(path: string, top = 20) {
  const s = await stat(path);
  let file = path;
  if (s.isDirectory()) {
    // With --import tsx there is one profile per thread (the loader hooks run in a
    // worker); the main thread's is by far the largest.
    const f = (await readdir(path)).filter((x) => x.endsWith('.cpuprofile'));
    const sized = await Promise.all(f.map(async (x) => ({ x, size: (await stat(join(path, x))).size })));
    const [largest] = sized.sort((a, b) => b.size - a.size);
    if (!largest) throw new Error(`no .cpuprofile in ${path}`);
    file = join(path, largest.x);
  }
  return { file, ...summariseProfile(JSON.parse(await readFile(file, 'utf8')) as CpuProfile, top) };
}

export function profileMarkdown(s: { total: number; functions: ProfileRow[]; areas: ProfileRow[] }): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const out = [
    `Total sampled: ${Math.round(s.total)} ms.`,
    '',
    '| area | self ms | share |',
    '| --- | ---: | ---: |',
  ];
  for (const r of s.areas) out.push(`| ${r.name} | ${Math.round(r.selfMs)} | ${pct(r.share)} |`);
  out.push('', '| function | self ms | share |', '| --- | ---: | ---: |');
  for (const r of s.functions) out.push(`| \`${r.name}\` | ${Math.round(r.selfMs)} | ${pct(r.share)} |`);
  return out.join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const path = process.argv[2];
  if (!path) {
    process.stderr.write('usage: npm run bench:profile -- <file.cpuprofile | dir> [top]\n');
    process.exit(2);
  }
  const s = await summariseProfileFile(path, Number(process.argv[3] ?? 25));
  process.stdout.write(`${s.file}\n\n${profileMarkdown(s)}\n`);
}
