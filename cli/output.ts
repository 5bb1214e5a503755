/**
 * How every `hub` command prints: an aligned table for people, JSON with
 * `--json` for scripts. A leaf module (it imports nothing of the CLI) so that
 * command modules share it without importing the entry point, cli/hub.ts.
 */
import type { Command } from 'commander';

/** Rows as an aligned text table under upper-case headers; `(none)` when empty. Pure. */
export function formatTable(rows: Record<string, unknown>[]): string {
  const [first] = rows;
  if (!first) return '(none)';
  const cell = (v: unknown): string => {
    if (v === null || v === undefined) return '';
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return v.toString();
    return JSON.stringify(v);
  };
  // The first row's keys are the columns; each as wide as its header or its widest cell.
  const cols = Object.keys(first).map((name) => ({
    name,
    width: Math.max(name.length, ...rows.map((r) => cell(r[name]).length)),
  }));
  const line = (text: (col: string) => string) =>
    cols
      .map((c) => text(c.name).padEnd(c.width))
      .join('  ')
      .trimEnd();
  return [line((c) => c.toUpperCase()), ...rows.map((r) => line((c) => cell(r[c])))].join('\n');
}

/** Indented JSON in which bigints (offsets, lags) are decimal strings. Pure. */
export function toJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x), 2);
}

/** Whether the global `--json` option is set. */
export function isJsonOutput(program: Command): boolean {
  return Boolean(program.opts()['json']);
}

/** JSON with `--json`, else the table text; hub.ts waits for stdout to drain before it exits. */
export function print(json: boolean, value: unknown, table: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${table()}\n`);
}

/** Resolves once written: hub.ts exits right after the action, which would cut a piped write short. */
export function writeOut(text: string): Promise<void> {
  return new Promise((resolve, reject) =>
    process.stdout.write(text, (err) => (err ? reject(err) : resolve())),
  );
}

/** Like print, but resolves once the output is written (for output that can be long). */
export function printAll(json: boolean, value: unknown, table: () => string): Promise<void> {
  return writeOut(json ? `${toJson(value)}\n` : `${table()}\n`);
}
