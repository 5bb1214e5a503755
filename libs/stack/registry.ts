// The Apicurio schema registry: one Quarkus JVM keeping its schemas in its own
// PostgreSQL database, serving the Confluent-compatible API the hub's clients use.
import type { Log, StackConfig } from './config.js';
import type { ComponentSpec } from './components.js';
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

export async function startRegistry(cfg: StackConfig, spec: ComponentSpec, log: Log): Promise<Spawned> {
  log(`registry: starting on ${cfg.registry.host}:${cfg.registry.port}`);
  return launch(cfg, spec, { args: ['-Xmx512m', '-jar', cfg.registry.jar], env: registryEnv(cfg) }, log);
}
