/**
 * `hub fhir ...`: bulk FHIR import from the command line: options in, a summary
 * out. The file import (config, connections, progress, checkpoints) is
 * libs/fhir/import/file.ts; the import itself libs/fhir/import/import.ts,
 * shared with adapter-fhir's POST /$import.
 */
import type { Command } from 'commander';
import { HubError } from '../libs/errors/index.js';
import { importFile } from '../libs/fhir/import/file.js';

export function registerFhirCommands(program: Command): void {
  const fhir = program.command('fhir').description('FHIR R4 ingest');
  fhir
    .command('import')
    .description(
      'import NDJSON (one resource per line, as from $export) or a Bundle document; streamed, resumable (checkpoint per file hash), invalid lines to the dead-letter topic',
    )
    .argument('<file>', 'NDJSON (.ndjson) or Bundle (.json) file')
    .option('--format <format>', 'ndjson | bundle (default: by extension)')
    .option('--chunk-size <n>', 'resources per Kafka/Postgres round', (v) => Number.parseInt(v, 10))
    .option('--no-progress', 'no progress bar')
    .option('--restart', 'ignore an earlier checkpoint of this file and start at line 1')
    .option('--workers <n>', 'validation threads (0 = none; default: one per core, at most 4)', (v) =>
      Number.parseInt(v, 10),
    )
    .action(
      async (
        file: string,
        o: { format?: string; chunkSize?: number; progress: boolean; restart?: boolean; workers?: number },
      ) => {
        if (o.format !== undefined && o.format !== 'ndjson' && o.format !== 'bundle') {
          throw new HubError('HUB_INPUT_INVALID', '--format must be ndjson or bundle');
        }
        if (o.chunkSize !== undefined && (!Number.isInteger(o.chunkSize) || o.chunkSize < 1)) {
          throw new HubError('HUB_INPUT_INVALID', '--chunk-size must be a positive integer');
        }
        if (o.workers !== undefined && (!Number.isInteger(o.workers) || o.workers < 0 || o.workers > 16)) {
          throw new HubError('HUB_INPUT_INVALID', '--workers must be an integer from 0 to 16');
        }
        const r = await importFile({
          file,
          ...(o.workers !== undefined ? { workers: o.workers } : {}),
          ...(o.format ? { format: o.format } : {}),
          ...(o.chunkSize ? { chunkSize: o.chunkSize } : {}),
          progress: o.progress,
          ...(o.restart ? { restart: true } : {}),
        });
        const json = Boolean(program.opts()['json']);
        const out = {
          file: r.file,
          importKey: r.importKey,
          resumedAfterLine: r.resumedAfterLine,
          lastLine: r.lastLine,
          ...r.counts,
          events: r.events,
          deadLetters: r.deadLetters,
          seconds: Number(r.seconds.toFixed(2)),
          resourcesPerSecond: Math.round(r.resourcesPerSecond),
        };
        process.stdout.write(
          json
            ? `${JSON.stringify(out, null, 2)}\n`
            : `${Object.entries(out)
                .map(([k, v]) => `${k.padEnd(18)} ${String(v)}`)
                .join('\n')}\n`,
        );
      },
    );
}
