/**
 * Writes deploy/site-config.schema.json, the published JSON Schema of the
 * site configuration, from its zod schema (libs/site-config).
 *
 *   tsx scripts/gen-site-schema.ts          write the file
 *   tsx scripts/gen-site-schema.ts --check  exit 1 if the committed file has drifted
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { siteConfigJsonSchemaText } from '../libs/site-config/index.js';
import { writeOrCheck } from './generated-file.js';

const target = join(dirname(fileURLToPath(import.meta.url)), '..', 'deploy', 'site-config.schema.json');
writeOrCheck(target, siteConfigJsonSchemaText(), {
  what: 'deploy/site-config.schema.json',
  from: 'libs/site-config',
  command: 'npm run gen:site-schema',
});
