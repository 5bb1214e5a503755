import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import avsc from 'avsc';
import { HubError } from '../errors/index.js';
import {
  registryHttpClient,
  registrySecurityFromEnv,
  type RegistrySecurity,
  type RegistrySecurityEnv,
} from './registry-security.js';

export { registrySecurityFromEnv, type RegistrySecurity } from './registry-security.js';

/**
 * Talks to a Confluent-compatible schema registry (Apicurio's ccompat API
 * here). Schema-id lookups are cached by the client library, so after
 * warm-up the codec makes no registry call per message.
 */
export interface RegistryClient {
  readonly url: string;
  /** Registers a schema under a subject with the given compatibility; idempotent (same schema, same id). */
  register(subject: string, schema: object, compatibility: string): Promise<number>;
  /** The id of exactly this schema under the subject (not "latest"). */
  idOf(subject: string, schema: object): Promise<number>;
  /** The writer schema for an id, parsed. */
  typeOf(id: number): Promise<avsc.Type>;
  versions(subject: string): Promise<number[]>;
  schemaAt(subject: string, version: number): Promise<object>;
  setCompatibility(subject: string | null, level: string): Promise<void>;
  getCompatibility(subject: string): Promise<string | undefined>;
  /** The registry's own verdict on a candidate against every version the subject's rule covers. */
  isCompatible(subject: string, schema: object): Promise<boolean>;
  subjects(): Promise<string[]>;
  deleteSubject(subject: string): Promise<void>;
}

function registryMessage(err: unknown): string {
  if (err && typeof err === 'object') {
    const e = err as { message?: unknown; status?: unknown };
    if (typeof e.message === 'string') return e.message;
  }
  return String(err);
}

function statusOf(err: unknown): number | undefined {
  if (err && typeof err === 'object' && 'status' in err && typeof err.status === 'number') return err.status;
  return undefined;
}

/** A failure of the schema library, in the hub's terms: only a 5xx or no answer is "registry down" (retriable). */
function mapRegistryError(err: unknown, subject: string): HubError {
  const status = statusOf(err);
  const msg = registryMessage(err);
  if (status === 409 || /incompatible/i.test(msg)) {
    return new HubError('HUB_SCHEMA_INCOMPATIBLE', `registry refused ${subject}: ${msg}`, {
      cause: err,
      details: { subject },
    });
  }
  if (status === 404) {
    return new HubError('HUB_SCHEMA_NOT_REGISTERED', `no schema registered for ${subject}`, { cause: err });
  }
  if (status === undefined || status >= 500) {
    return new HubError('HUB_REGISTRY_UNAVAILABLE', `registry error for ${subject}: ${msg}`, {
      cause: err,
    });
  }
  return new HubError('HUB_SCHEMA_INVALID', `registry rejected ${subject}: ${msg}`, { cause: err });
}

/**
 * The calls made over plain REST: reading versions and writer schemas,
 * compatibility rules and checks, listing and deleting subjects. Writer
 * schemas are parsed once per id.
 */
function restCalls(
  http: (method: string, path: string, body?: unknown) => Promise<{ status: number; json: unknown }>,
): Omit<RegistryClient, 'url' | 'register' | 'idOf'> {
  const parsed = new Map<number, avsc.Type>();
  return {
    async typeOf(id) {
      const hit = parsed.get(id);
      if (hit) return hit;
      const r = await http('GET', `/schemas/ids/${id}`);
      if (r.status === 404) {
        throw new HubError('HUB_EVENT_UNDECODABLE', `schema id ${id} is not known to the registry`);
      }
      if (r.status !== 200)
        throw new HubError('HUB_REGISTRY_UNAVAILABLE', `registry answered ${r.status} for id ${id}`);
      const body = r.json as { schema: string };
      const t = avsc.Type.forSchema(JSON.parse(body.schema) as avsc.Schema);
      parsed.set(id, t);
      return t;
    },
    async versions(subject) {
      const r = await http('GET', `/subjects/${encodeURIComponent(subject)}/versions`);
      if (r.status === 404) return [];
      if (r.status !== 200) throw new HubError('HUB_REGISTRY_UNAVAILABLE', `registry answered ${r.status}`);
      return r.json as number[];
    },
    async schemaAt(subject, version) {
      const r = await http('GET', `/subjects/${encodeURIComponent(subject)}/versions/${version}`);
      if (r.status !== 200)
        throw new HubError('HUB_SCHEMA_NOT_REGISTERED', `${subject} v${version} not found`);
      return JSON.parse((r.json as { schema: string }).schema) as object;
    },
    async setCompatibility(subject, level) {
      const path = subject === null ? '/config' : `/config/${encodeURIComponent(subject)}`;
      const r = await http('PUT', path, { compatibility: level });
      if (r.status !== 200) {
        throw new HubError('HUB_REGISTRY_UNAVAILABLE', `could not set compatibility ${level} (${r.status})`);
      }
    },
    async getCompatibility(subject) {
      const r = await http('GET', `/config/${encodeURIComponent(subject)}`);
      if (r.status !== 200) return undefined;
      return (r.json as { compatibilityLevel?: string }).compatibilityLevel;
    },
    async isCompatible(subject, schema) {
      const r = await http('POST', `/compatibility/subjects/${encodeURIComponent(subject)}/versions/latest`, {
        schema: JSON.stringify(schema),
      });
      if (r.status === 404) return true;
      if (r.status !== 200) throw new HubError('HUB_REGISTRY_UNAVAILABLE', `registry answered ${r.status}`);
      return (r.json as { is_compatible: boolean }).is_compatible;
    },
    async subjects() {
      const r = await http('GET', '/subjects');
      // A 401/403 is not an empty registry.
      if (r.status !== 200) throw new HubError('HUB_REGISTRY_UNAVAILABLE', `registry answered ${r.status}`);
      return r.json as string[];
    },
    async deleteSubject(subject) {
      await http('DELETE', `/subjects/${encodeURIComponent(subject)}`);
      await http('DELETE', `/subjects/${encodeURIComponent(subject)}?permanent=true`);
    },
  };
}

/**
 * Registering and looking up a schema's id go through the Confluent library,
 * whose id cache keeps the codec off the registry per message; the rest is
 * plain REST (restCalls).
 */
export function createRegistryClient(url: string, security?: RegistrySecurity): RegistryClient {
  const base = url.replace(/\/+$/, '');
  const http = registryHttpClient(base, security);
  const lib = new SchemaRegistry({ host: base, retry: { retries: 3 }, ...http.libraryOptions });
  return {
    url: base,
    async register(subject, schema, compatibility) {
      // Set the subject's rule before the first version so that the rule is
      // already in force for the second one.
      const current = await this.getCompatibility(subject);
      if (current !== compatibility) await this.setCompatibility(subject, compatibility);
      try {
        const { id } = await lib.register(
          { type: SchemaType.AVRO, schema: JSON.stringify(schema) },
          { subject, compatibility: compatibility as never, updateConfig: false },
        );
        return id;
      } catch (err) {
        throw mapRegistryError(err, subject);
      }
    },
    async idOf(subject, schema) {
      try {
        return await lib.getRegistryIdBySchema(subject, {
          type: SchemaType.AVRO,
          schema: JSON.stringify(schema),
        });
      } catch (err) {
        // The library answers a 404 here with its bare base error and drops
        // the status; without this, "not registered" read as "registry down"
        // (retriable) and a service would retry a missing schema forever.
        if (err instanceof Error && err.name === 'ConfluentSchemaRegistryError') {
          throw new HubError(
            'HUB_SCHEMA_NOT_REGISTERED',
            `no schema registered for ${subject} (run \`hub schemas register\`)`,
            { cause: err },
          );
        }
        throw mapRegistryError(err, subject);
      }
    },
    ...restCalls(http.call),
  };
}

/** The registry at SCHEMA_REGISTRY_URL with its authentication and CA from the shared variables. */
export function createRegistryClientFromEnv(
  env: RegistrySecurityEnv & { SCHEMA_REGISTRY_URL: string },
): RegistryClient {
  return createRegistryClient(env.SCHEMA_REGISTRY_URL, registrySecurityFromEnv(env));
}

/**
 * Explains, in Avro terms, why a candidate schema is not FULL compatible with
 * an earlier version: the registry itself only says yes/no on a dry-run
 * check. A replayable log needs both directions: new consumers read old
 * events (backward) and consumers not yet upgraded read new events (forward).
 * Returns undefined when both directions resolve.
 */
export function explainIncompatibility(candidate: object, previous: object): string | undefined {
  const next = avsc.Type.forSchema(candidate as avsc.Schema);
  const prev = avsc.Type.forSchema(previous as avsc.Schema);
  const problems: string[] = [];
  try {
    next.createResolver(prev);
  } catch (err) {
    problems.push(`new readers cannot read old events (${(err as Error).message})`);
  }
  try {
    prev.createResolver(next);
  } catch (err) {
    problems.push(`old readers cannot read new events (${(err as Error).message})`);
  }
  return problems.length ? problems.join('; ') : undefined;
}
