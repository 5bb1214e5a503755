import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  apicurioCoordinate,
  apicurioMvnArgs,
  apicurioZipName,
  ensureArtifacts,
  kafkaJarName,
  kafkaMvnArgs,
  kafkaPom,
} from './artifacts.js';
import { stackConfig } from './config.js';

describe('artifact coordinates', () => {
  it('copies the runtime dependencies of the Kafka pom for the configured version', () => {
    expect(kafkaMvnArgs('/repo/pom.xml', '4.1.1', '/tmp/x/libs')).toEqual([
      '-q',
      '-B',
      '-f',
      '/repo/pom.xml',
      'dependency:copy-dependencies',
      '-DincludeScope=runtime',
      '-Dkafka.version=4.1.1',
      '-DoutputDirectory=/tmp/x/libs',
    ]);
    expect(kafkaJarName('4.1.1')).toBe('kafka_2.13-4.1.1.jar');
    expect(kafkaPom('/repo')).toBe('/repo/deploy/local/kafka-deps.pom.xml');
  });

  it('copies the Apicurio app zip, whose runner jar is the one the config starts', () => {
    expect(apicurioCoordinate('3.0.9')).toBe('io.apicurio:apicurio-registry-app:3.0.9:zip:all');
    expect(apicurioMvnArgs('3.0.9', '/t')).toEqual([
      '-q',
      '-B',
      'dependency:copy',
      '-Dartifact=io.apicurio:apicurio-registry-app:3.0.9:zip:all',
      '-DoutputDirectory=/t',
    ]);
    expect(apicurioZipName('3.0.9')).toBe('apicurio-registry-app-3.0.9-all.zip');
    const cfg = stackConfig('dev', { HUB_CACHE_DIR: '/cache' });
    expect(basename(cfg.registry.jar)).toBe('apicurio-registry-app-3.0.9-runner.jar');
  });
});

describe('ensureArtifacts', () => {
  it('fetches nothing when both cache entries are marked complete', async () => {
    const cache = await mkdtemp(join(tmpdir(), 'hub-artifacts-'));
    try {
      const cfg = stackConfig('dev', { HUB_CACHE_DIR: cache });
      for (const dir of [dirname(cfg.kafka.libsDir), dirname(cfg.registry.distDir)]) {
        await mkdir(dir, { recursive: true });
        await writeFile(join(dir, '.complete'), 'x\n');
      }
      const said: string[] = [];
      await ensureArtifacts(cfg, (m) => said.push(m));
      expect(said).toEqual([]);
    } finally {
      await rm(cache, { recursive: true, force: true });
    }
  });
});
