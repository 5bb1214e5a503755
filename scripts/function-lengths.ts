/**
 * Lists the longest functions under the given folders (non-test .ts files),
 * by source lines, for the "no function past ~120 lines" rule of the layout.
 * A function's length counts its own lines, nested functions included.
 *
 *   npx tsx scripts/function-lengths.ts [--top N] [--max N] services cli
 *
 * With --max, exits 1 when a function is longer (used by `npm run check`).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

interface Fn {
  file: string;
  name: string;
  line: number;
  lines: number;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const p = join(dir, entry);
    if (statSync(p).isDirectory()) return entry === 'node_modules' ? [] : tsFiles(p);
    return p.endsWith('.ts') && !p.endsWith('.test.ts') && !p.endsWith('.d.ts') ? [p] : [];
  });
}

function nameOf(node: ts.Node, sf: ts.SourceFile): string {
  if ((ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node)) && node.name)
    return node.name.getText(sf);
  const parent = node.parent;
  if (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent)) return parent.name.getText(sf);
  if (ts.isCallExpression(parent)) return `callback of ${parent.expression.getText(sf).slice(0, 40)}`;
  return '(anonymous)';
}

function functionsOf(file: string): Fn[] {
  const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
  const out: Fn[] = [];
  const visit = (node: ts.Node): void => {
    if (
      ts.isFunctionDeclaration(node) ||
      ts.isFunctionExpression(node) ||
      ts.isArrowFunction(node) ||
      ts.isMethodDeclaration(node) ||
      ts.isConstructorDeclaration(node) ||
      ts.isGetAccessorDeclaration(node) ||
      ts.isSetAccessorDeclaration(node)
    ) {
      const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const end = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
      out.push({ file, name: nameOf(node, sf), line: start + 1, lines: end - start + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

const args = process.argv.slice(2);
const flag = (name: string): number | undefined => {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = Number(args[i + 1]);
  args.splice(i, 2);
  return v;
};
const top = flag('--top') ?? 10;
const max = flag('--max');
const roots = args.length > 0 ? args : ['services', 'cli'];
const all = roots
  .flatMap(tsFiles)
  .flatMap(functionsOf)
  .sort((a, b) => b.lines - a.lines);
for (const f of all.slice(0, top)) {
  console.log(`${String(f.lines).padStart(5)}  ${relative(process.cwd(), f.file)}:${f.line}  ${f.name}`);
}
if (max !== undefined) {
  const over = all.filter((f) => f.lines > max);
  if (over.length > 0) {
    console.error(`${over.length} function(s) longer than ${max} lines`);
    process.exit(1);
  }
}
