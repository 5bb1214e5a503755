import type { TestProject } from 'vitest/node';
import { startStack, stackConfig, type StackHandle } from '../../libs/stack/index.js';

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBrokers: string[];
    registryUrl: string;
    databaseUrl: string;
  }
}

/**
 * Real servers for the integration tier, once per run. Endpoints given in the
 * environment (KAFKA_BROKERS, SCHEMA_REGISTRY_URL, DATABASE_URL, all three)
 * are used as they are; where a Docker engine answers, testcontainers starts
 * the same servers (deploy/local/containers.ts); otherwise the project's own
 * scripts start the test profile (separate ports and data from the dev stack) and stop it after the
 * run if this run started it.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const e = process.env;
  if (e['KAFKA_BROKERS'] && e['SCHEMA_REGISTRY_URL'] && e['DATABASE_URL']) {
    project.provide('kafkaBrokers', e['KAFKA_BROKERS'].split(','));
    project.provide('registryUrl', e['SCHEMA_REGISTRY_URL']);
    project.provide('databaseUrl', e['DATABASE_URL']);
    return () => Promise.resolve();
  }
  const t0 = Date.now();
  // Dynamic import: testcontainers is loaded only where a Docker engine may be.
  const containers = await import('../../deploy/local/containers.js');
  if (await containers.dockerEngineAvailable()) {
    const c = await containers.startContainerStack();
    process.stderr.write(`[infra] container stack ready in ${((Date.now() - t0) / 1000).toFixed(1)}s\n`);
    project.provide('kafkaBrokers', c.brokers);
    project.provide('registryUrl', c.registryUrl);
    project.provide('databaseUrl', c.databaseUrl);
    return () => c.stop();
  }
  const stack: StackHandle = await startStack(stackConfig('test'), {
    log: (m) => process.stderr.write(`[infra] ${m}\n`),
  });
  process.stderr.write(
    `[infra] test stack ready in ${((Date.now() - t0) / 1000).toFixed(1)}s (started: ${stack.started.join(', ') || 'none, reused'})\n`,
  );
  project.provide('kafkaBrokers', stack.kafka.brokers);
  project.provide('registryUrl', stack.registryUrl);
  project.provide('databaseUrl', stack.databaseUrl);
  return () => stack.stop();
}
