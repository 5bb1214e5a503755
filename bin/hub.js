#!/usr/bin/env node
// Runs the TypeScript CLI through tsx (a runtime dependency), so `hub` always
// matches the source tree; services in production run from `npm run build` output.
import { register } from 'tsx/esm/api';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

register();
const entry = join(dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'hub.ts');
await import(pathToFileURL(entry).href);
