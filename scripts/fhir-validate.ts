// Validates FHIR JSON files with the independent HAPI validator (tools/fhir-validator):
//   tsx scripts/fhir-validate.ts [--json] PATH...   (files, or directories of *.json)
// Prints the error and warning patterns (most frequent first) and exits 1 on any error.
// .ci/run runs it over the responses the end-to-end suite captured (HUB_FHIR_CAPTURE_DIR).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findingPatterns, validateFhir, type FindingPattern } from '../libs/stack/fhir-validator.js';

const repoDir = join(dirname(fileURLToPath(import.meta.url)), '..');

function describe(kind: string, patterns: FindingPattern[]): string[] {
  return patterns.map(
    (p) =>
      `  ${kind} x${p.count} ${p.location} [${p.messageId}] in ${p.files.length} file(s): ${p.example.slice(0, 240)}`,
  );
}

async function main(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  const paths = argv.filter((a) => a !== '--json');
  if (paths.length === 0) {
    process.stderr.write('usage: fhir-validate [--json] PATH... (JSON files or directories)\n');
    return 2;
  }
  const present = paths.filter((p) => existsSync(p));
  if (present.length === 0) {
    // Nothing was captured (no FHIR answer in the run): nothing to hold against the spec.
    process.stdout.write(`fhir-validate: nothing to validate (${paths.join(', ')} absent)\n`);
    return 0;
  }
  const report = await validateFhir(present, {
    repoDir,
    log: (m) => process.stderr.write(`${m}\n`),
  });
  if (json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else {
    const lines = [
      `fhir-validate: ${report.fileCount} file(s), ${report.errorCount} error(s), ${report.warningCount} warning(s) ` +
        `(JVM start-up ${report.startupMs} ms, validation ${report.validationMs} ms, wall ${report.wallMs} ms)`,
      ...describe('error', findingPatterns(report, 'errors')),
      ...describe('warning', findingPatterns(report, 'warnings')),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  return report.errorCount > 0 ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
