// The Kafka and Apicurio Registry jars, fetched from Maven Central with mvn into
// a per-user cache once, and shared by every stack on the machine after that.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { HubError } from '../errors/index.js';
import type { Log, StackConfig } from './config.js';
import { commandNotFound, javaBin, noop, run, secs } from './process.js';

/** The pom that pins Kafka's runtime dependency tree (the broker is not one Maven artifact). */
export const kafkaPom = (repoDir: string) => join(repoDir, 'deploy', 'local', 'kafka-deps.pom.xml');

/** The broker's own jar, whose presence shows the dependency copy worked. */
export const kafkaJarName = (version: string) => `kafka_2.13-${version}.jar`;

export function kafkaMvnArgs(pom: string, version: string, outDir: string): string[] {
  return [
    '-q',
    '-B',
    '-f',
    pom,
    'dependency:copy-dependencies',
    '-DincludeScope=runtime',
    `-Dkafka.version=${version}`,
    `-DoutputDirectory=${outDir}`,
  ];
}

/** The registry ships as one zip holding a Quarkus runner jar and its lib/ folder. */
export const apicurioCoordinate = (version: string) => `io.apicurio:apicurio-registry-app:${version}:zip:all`;
export const apicurioZipName = (version: string) => `apicurio-registry-app-${version}-all.zip`;

export function apicurioMvnArgs(version: string, outDir: string): string[] {
  return [
    '-q',
    '-B',
    'dependency:copy',
    `-Dartifact=${apicurioCoordinate(version)}`,
    `-DoutputDirectory=${outDir}`,
  ];
}

/**
 * Fills finalDir through a temp dir and a rename, marked complete last, so that an
 * interrupted or concurrent fetch never leaves a half-filled cache entry behind.
 */
export async function fetchAtomically(
  finalDir: string,
  cacheDir: string,
  fill: (tmpDir: string) => Promise<void>,
): Promise<void> {
  const marker = join(finalDir, '.complete');
  if (existsSync(marker)) return;
  await mkdir(cacheDir, { recursive: true });
  // A directory without the marker is a leftover of an interrupted or hand-made fetch.
  // (Re-checked right here: a concurrent fetch may have just completed it.)
  if (existsSync(finalDir) && !existsSync(marker)) await rm(finalDir, { recursive: true, force: true });
  const tmp = join(cacheDir, `.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(tmp, { recursive: true });
  try {
    await fill(tmp);
    await writeFile(join(tmp, '.complete'), `${new Date().toISOString()}\n`);
    try {
      await rename(tmp, finalDir);
    } catch (err) {
      // A concurrent fetch may have won the rename; its result is as good as ours.
      if (!existsSync(marker)) throw err;
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** mvn, with the hint an operator without Maven needs. */
async function mvn(cfg: StackConfig, args: string[], cwd?: string): Promise<void> {
  await run('mvn', args, cwd ? { cwd } : {}).catch((err: unknown) => {
    throw new HubError(
      'HUB_INFRA_FAILED',
      `${(err as Error).message}\n(artifacts come from Maven Central via mvn; install Maven or ` +
        `pre-populate ${cfg.cacheDir})`,
      { cause: err },
    );
  });
}

async function fetchKafka(cfg: StackConfig, kafkaDir: string): Promise<void> {
  await fetchAtomically(kafkaDir, cfg.cacheDir, async (tmp) => {
    await mvn(cfg, kafkaMvnArgs(kafkaPom(cfg.repoDir), cfg.kafka.version, join(tmp, 'libs')));
    const jar = join(tmp, 'libs', kafkaJarName(cfg.kafka.version));
    if (!existsSync(jar))
      throw new HubError('HUB_INFRA_FAILED', `artifacts: mvn finished but ${jar} is missing`);
  });
}

async function fetchApicurio(cfg: StackConfig, apicurioDir: string): Promise<void> {
  const v = cfg.registry.version;
  await fetchAtomically(apicurioDir, cfg.cacheDir, async (tmp) => {
    // Run from the temp dir: dependency:copy must not pick up a project pom from the cwd.
    await mvn(cfg, apicurioMvnArgs(v, tmp), tmp);
    const zip = join(tmp, apicurioZipName(v));
    const dist = join(tmp, 'dist');
    await mkdir(dist);
    try {
      await run('unzip', ['-q', zip, '-d', dist]);
    } catch (err) {
      if (!commandNotFound(err)) throw err;
      // The JDK's jar tool is always there when java is.
      await run(join(dirname(javaBin()), 'jar'), ['xf', zip], { cwd: dist });
    }
    await rm(zip, { force: true });
    const jar = join(dist, basename(cfg.registry.jar));
    if (!existsSync(jar))
      throw new HubError('HUB_INFRA_FAILED', `artifacts: ${jar} missing after unpacking ${zip}`);
  });
}

export async function ensureArtifacts(cfg: StackConfig, log: Log = noop): Promise<void> {
  const kafkaDir = dirname(cfg.kafka.libsDir);
  const apicurioDir = dirname(cfg.registry.distDir);

  if (!existsSync(join(kafkaDir, '.complete'))) {
    const t0 = Date.now();
    log(`artifacts: fetching Kafka ${cfg.kafka.version} jars into ${kafkaDir}`);
    await fetchKafka(cfg, kafkaDir);
    log(`artifacts: Kafka ready in ${secs(Date.now() - t0)}`);
  }

  if (!existsSync(join(apicurioDir, '.complete'))) {
    const t0 = Date.now();
    log(`artifacts: fetching Apicurio Registry ${cfg.registry.version} into ${apicurioDir}`);
    await fetchApicurio(cfg, apicurioDir);
    log(`artifacts: Apicurio ready in ${secs(Date.now() - t0)}`);
  }
}
