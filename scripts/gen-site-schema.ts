/**
 * Writes deploy/site-config.schema.json, the published JSON Schema of the
 * site configuration, from its zod schema (libs/site-config).
 *
 *   tsx scripts/gen-site-schema.ts          write the file
 *   tsx scripts/gen-site-schema.ts --check  exit 1 if the committed file has drifted
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { siteConfigJsonSchemaText } from '../libs/site-config/index.js';

const target = join(dirname(fileURLToPath(import.meta.url)), '..', 'deploy', 'site-config.schema.json');
const fresh = siteConfigJsonSchemaText();
if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(target, 'utf8');
  } catch {
    current = '';
  }
  if (current !== fresh) {
    console.error(
      'deploy/site-config.schema.json is out of date with libs/site-config: run `npm run gen:site-schema` and commit it.',
    );
    process.exit(1);
  }
  console.log('site configuration JSON Schema matches libs/site-config');
} else {
  writeFileSync(target, fresh);
  console.log(`wrote ${target}`);
}
