// The independent FHIR R4 validator (HAPI's, tools/fhir-validator): built once with
// mvn into .hub/ and run as one JVM over many files, since its start-up and the
// loading of the R4 definitions cost tens of seconds and each further file little.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { HubError } from '../errors/index.js';
import { fetchAtomically } from './artifacts.js';
import type { Log } from './config.js';
import { javaBin, noop, run, secs } from './process.js';

export const FHIR_VALIDATOR_DIR = join('tools', 'fhir-validator');
const JAR = 'fhir-validator-1.0.0.jar';

export interface FhirFinding {
  location: string;
  message: string;
  messageId: string;
}

export interface FhirFileReport {
  file: string;
  errors: FhirFinding[];
  warnings: FhirFinding[];
}

/** What tools/fhir-validator prints, plus the wall time of the whole run. */
export interface FhirValidationReport {
  fileCount: number;
  errorCount: number;
  warningCount: number;
  /** Inside the JVM: building the validator, then validating every file. */
  startupMs: number;
  validationMs: number;
  wallMs: number;
  files: FhirFileReport[];
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else out.push(p);
  }
  return out;
}

/** The build is keyed by its sources, so an edited pom or Main.java builds anew. */
async function sourceKey(toolDir: string): Promise<string> {
  const files = [join(toolDir, 'pom.xml'), ...(await filesUnder(join(toolDir, 'src')))].sort();
  const h = createHash('sha256');
  for (const f of files)
    h.update(relative(toolDir, f))
      .update('\0')
      .update(await readFile(f))
      .update('\0');
  return h.digest('hex').slice(0, 16);
}

/** Builds the validator jar (its dependencies in lib/ beside it) unless built already; returns the jar's path. */
export async function ensureFhirValidator(repoDir: string, log: Log = noop): Promise<string> {
  const toolDir = join(repoDir, FHIR_VALIDATOR_DIR);
  const cacheDir = join(repoDir, '.hub', 'fhir-validator');
  const finalDir = join(cacheDir, await sourceKey(toolDir));
  const jar = join(finalDir, JAR);
  if (existsSync(join(finalDir, '.complete'))) return jar;
  const t0 = Date.now();
  log(`fhir-validator: building ${FHIR_VALIDATOR_DIR} with mvn into ${finalDir}`);
  await fetchAtomically(finalDir, cacheDir, async (tmp) => {
    await run('mvn', ['-q', '-B', '-f', join(toolDir, 'pom.xml'), 'package', `-Dvalidator.buildDir=${tmp}`], {
      timeoutMs: 900_000,
    }).catch((err: unknown) => {
      throw new HubError(
        'HUB_INFRA_FAILED',
        `${(err as Error).message}\n(the HAPI validator comes from Maven Central via mvn; install Maven)`,
        { cause: err },
      );
    });
    if (!existsSync(join(tmp, JAR)))
      throw new HubError('HUB_INFRA_FAILED', `fhir-validator: mvn finished but ${JAR} is missing`);
  });
  log(`fhir-validator: built in ${secs(Date.now() - t0)}`);
  // Builds of older sources are 145 MB each and never used again.
  for (const e of await readdir(cacheDir, { withFileTypes: true }))
    if (e.isDirectory() && join(cacheDir, e.name) !== finalDir && !e.name.startsWith('.tmp-'))
      await rm(join(cacheDir, e.name), { recursive: true, force: true });
  return jar;
}

/** Runs a command and returns its exit code with its output, whatever the code. */
function runToExit(cmd: string, args: string[], timeoutMs: number) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new HubError('HUB_INFRA_FAILED', `${cmd} could not start: ${e.message}`, { cause: e }));
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
  });
}

/**
 * Validates every *.json under the given files and directories in one JVM.
 * Resolves with the report whether or not it found errors (the caller asserts);
 * rejects only when the validator could not run.
 */
export async function validateFhir(
  paths: readonly string[],
  opts: { repoDir: string; log?: Log; timeoutMs?: number },
): Promise<FhirValidationReport> {
  const jar = await ensureFhirValidator(opts.repoDir, opts.log);
  const t0 = Date.now();
  const r = await runToExit(javaBin(), ['-jar', jar, ...paths], opts.timeoutMs ?? 900_000);
  if (r.code !== 0 && r.code !== 1)
    throw new HubError('HUB_INFRA_FAILED', `fhir-validator exited ${r.code}:\n${r.stderr.slice(-2000)}`);
  const report = JSON.parse(r.stdout) as Omit<FhirValidationReport, 'wallMs'>;
  return { ...report, wallMs: Date.now() - t0 };
}

/** One kind of finding: its message id and location with list indexes dropped, with a count and one example. */
export interface FindingPattern {
  messageId: string;
  location: string;
  count: number;
  example: string;
  files: string[];
}

/**
 * Groups findings into patterns (same message id at the same element path), most
 * frequent first: 50 errors are usually three mistakes, and a report should say which.
 */
export function findingPatterns(
  report: Pick<FhirValidationReport, 'files'>,
  which: 'errors' | 'warnings',
): FindingPattern[] {
  const byKey = new Map<string, FindingPattern>();
  for (const f of report.files) {
    for (const x of f[which]) {
      // Bundle entries are located as `resource/*Type/id*/`: keep the type, drop the id.
      const location = x.location.replace(/\/\*([A-Za-z]+)\/[^*]*\*\//g, '($1)').replace(/\[\d+\]/g, '[]');
      const messageId = x.messageId || x.message.replace(/'[^']*'|\([^)]*\)/g, '…');
      const key = `${messageId}\u0000${location}`;
      const p = byKey.get(key) ?? { messageId, location, count: 0, example: x.message, files: [] };
      p.count += 1;
      if (!p.files.includes(f.file)) p.files.push(f.file);
      byKey.set(key, p);
    }
  }
  return [...byKey.values()].sort((a, b) => b.count - a.count || a.location.localeCompare(b.location));
}
