// The Apicurio schema registry: one Quarkus JVM keeping its schemas in its own
// PostgreSQL database, serving the Confluent-compatible API the hub's clients use.
import type { Log, StackConfig } from './config.js';
import type { ComponentSpec } from './components.js';
import { ensureSecureMaterial, writeRegistrySecurity } from './secure.js';
import { launch, type Spawned } from './supervisor.js';

/** The registry's settings, which Apicurio reads from its environment. */
export function registryEnv(cfg: StackConfig, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const r = cfg.registry;
  return {
    ...base,
    APICURIO_STORAGE_KIND: 'sql',
    APICURIO_STORAGE_SQL_KIND: 'postgresql',
    APICURIO_DATASOURCE_URL: `jdbc:postgresql://${cfg.postgres.host}:${cfg.postgres.port}/${r.database}`,
    APICURIO_DATASOURCE_USERNAME: cfg.postgres.user,
    APICURIO_DATASOURCE_PASSWORD: cfg.postgres.password,
    // Confluent's registry allows DELETE of subjects/versions; Apicurio 3 refuses unless enabled.
    APICURIO_REST_DELETION_ARTIFACT_ENABLED: 'true',
    APICURIO_REST_DELETION_ARTIFACT_VERSION_ENABLED: 'true',
    APICURIO_REST_DELETION_GROUP_ENABLED: 'true',
    QUARKUS_HTTP_PORT: String(r.port),
    QUARKUS_HTTP_HOST: r.host,
  };
}

/**
 * The secure profile's registry also reads its users and permissions from a
 * file (secure.ts registrySecurityProperties): basic authentication on every
 * API, deletes for the operator only. A file, not the command line or the
 * environment, so that the password digests stay owner-only.
 */
async function secureRegistryEnv(cfg: StackConfig): Promise<NodeJS.ProcessEnv> {
  const dir = cfg.kafka.secureDir;
  if (!dir) return {};
  const file = await writeRegistrySecurity(await ensureSecureMaterial(dir));
  return { SMALLRYE_CONFIG_LOCATIONS: file };
}

export async function startRegistry(cfg: StackConfig, spec: ComponentSpec, log: Log): Promise<Spawned> {
  log(`registry: starting on ${cfg.registry.host}:${cfg.registry.port}`);
  const env = { ...registryEnv(cfg), ...(await secureRegistryEnv(cfg)) };
  return launch(cfg, spec, { args: ['-Xmx512m', '-jar', cfg.registry.jar], env }, log);
}
