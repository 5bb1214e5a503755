import { readFileSync, writeFileSync } from 'node:fs';

/**
 * The two modes of every generator whose output is committed: write the file,
 * or (`--check`, run by `npm run check`) exit 1 when the committed file differs
 * from what the sources give, naming the command that fixes it.
 */
export function writeOrCheck(
  target: string,
  fresh: string,
  o: { what: string; from: string; command: string },
): void {
  if (!process.argv.includes('--check')) {
    writeFileSync(target, fresh);
    console.log(`wrote ${target}`);
    return;
  }
  let current = '';
  try {
    current = readFileSync(target, 'utf8');
  } catch {
    current = '';
  }
  if (current !== fresh) {
    console.error(`${o.what} is out of date with ${o.from}: run \`${o.command}\` and commit it.`);
    process.exit(1);
  }
  console.log(`${o.what} matches ${o.from}`);
}
