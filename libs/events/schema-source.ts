import avsc from 'avsc';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { HubError } from '../errors/index.js';

/**
 * Reads `schemas/` (the contract) and composes one self-contained Avro schema
 * per event type. Shared records (EventMeta, Code, ...) live in their own
 * files and are referenced by full name; the registry and independent
 * consumers (kcat, python) get every named type inlined at its first use, so
 * no registry schema references are needed to decode an event.
 */

export type AvroSchema = string | AvroSchema[] | { [key: string]: unknown };

export interface TopicSpec {
  name: string;
  aggregate: string;
  key: string;
  retentionMs: number;
  /** Topic max.message.bytes when the broker default (1 MiB) is too small (raw messages, attachments). */
  maxMessageBytes?: number;
  events: string[];
  owner: string;
  description: string;
  partitions?: number;
  /** This topic's own settings in an environment, over the catalog's `environments` (e.g. more partitions in production). */
  environments?: Record<string, Partial<EnvironmentSettings> & { partitions?: number }>;
}

/** How a topic is replicated in one environment (catalog `environments`). */
export interface EnvironmentSettings {
  replicationFactor: number;
  minInsyncReplicas: number;
  uncleanLeaderElection: boolean;
}

export interface Catalog {
  /** `replicationFactor` only in catalogs before #19 (read by the git-history check). */
  defaults: { partitions: number; compatibility: string; replicationFactor?: number };
  /** Absent before #19; `$comment` is documentation. */
  environments?: Record<string, EnvironmentSettings | string>;
  topics: TopicSpec[];
}

export interface ComposedEvent {
  /** Short record name, e.g. PatientRegistered. */
  type: string;
  /** Avro full name, e.g. clinical.patient.PatientRegistered. */
  fullName: string;
  topic: string;
  /** Registry subject under TopicRecordNameStrategy. */
  subject: string;
  schema: Record<string, unknown>;
  file: string;
}

export interface SchemaFile {
  file: string;
  json: Record<string, unknown>;
}

const PRIMITIVES = new Set(['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string']);

export function readSchemaDir(dir: string): { files: SchemaFile[]; catalog: Catalog } {
  const files: SchemaFile[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.avsc')) {
        const rel = relative(dir, p);
        let json: unknown;
        try {
          json = JSON.parse(readFileSync(p, 'utf8'));
        } catch (cause) {
          throw new HubError('HUB_SCHEMA_INVALID', `${rel}: not valid JSON`, { cause });
        }
        if (typeof json !== 'object' || json === null || Array.isArray(json)) {
          throw new HubError('HUB_SCHEMA_INVALID', `${rel}: top level must be a named type object`);
        }
        files.push({ file: rel, json: json as Record<string, unknown> });
      }
    }
  };
  walk(dir);
  const catalog = JSON.parse(readFileSync(join(dir, 'catalog.json'), 'utf8')) as Catalog;
  return { files, catalog };
}

const positiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1;

/** Problems of one settings object: wrong types, min.insync.replicas above the replication factor. */
function settingsProblems(
  where: string,
  v: Partial<EnvironmentSettings> & { partitions?: number },
): string[] {
  const out: string[] = [];
  for (const k of ['replicationFactor', 'minInsyncReplicas', 'partitions'] as const) {
    if (v[k] !== undefined && !positiveInt(v[k])) out.push(`${where}.${k} must be an integer >= 1`);
  }
  if (v.uncleanLeaderElection !== undefined && typeof v.uncleanLeaderElection !== 'boolean') {
    out.push(`${where}.uncleanLeaderElection must be true or false`);
  }
  const known = new Set(['replicationFactor', 'minInsyncReplicas', 'uncleanLeaderElection', 'partitions']);
  for (const k of Object.keys(v)) if (!known.has(k)) out.push(`${where}.${k} is not a topic setting`);
  return out;
}

/**
 * The catalog's replication per environment, checked: every environment the
 * hub knows (`names`, KAFKA_TOPIC_ENV's values) is defined with all three
 * settings, min.insync.replicas never exceeds the replication factor (a
 * topic nobody could write to with acks=all), and topics override only
 * known environments. Separate from readSchemaDir because catalogs of
 * earlier revisions, read by the git-history check, have no environments.
 */
export function catalogEnvironments(
  catalog: Catalog,
  names: readonly string[],
): Record<string, EnvironmentSettings> {
  const problems: string[] = [];
  const out: Record<string, EnvironmentSettings> = {};
  const envs = catalog.environments ?? {};
  for (const name of names) {
    const v = envs[name];
    if (typeof v !== 'object') {
      problems.push(`environments.${name} is missing`);
      continue;
    }
    problems.push(...settingsProblems(`environments.${name}`, v));
    if (!positiveInt(v.replicationFactor) || !positiveInt(v.minInsyncReplicas)) {
      problems.push(`environments.${name} needs replicationFactor and minInsyncReplicas`);
    } else if (v.minInsyncReplicas > v.replicationFactor) {
      problems.push(`environments.${name}: minInsyncReplicas above replicationFactor`);
    }
    if (typeof v.uncleanLeaderElection !== 'boolean') {
      problems.push(`environments.${name}.uncleanLeaderElection must be true or false`);
    }
    out[name] = v;
  }
  for (const name of Object.keys(envs)) {
    if (name !== '$comment' && !names.includes(name))
      problems.push(`environments.${name} is not a known environment`);
  }
  for (const t of catalog.topics) {
    for (const [name, v] of Object.entries(t.environments ?? {})) {
      if (!names.includes(name)) problems.push(`${t.name}.environments.${name} is not a known environment`);
      else problems.push(...settingsProblems(`${t.name}.environments.${name}`, v));
    }
  }
  if (problems.length > 0) throw new HubError('HUB_SCHEMA_INVALID', `catalog.json: ${problems.join('; ')}`);
  return out;
}

export function subjectFor(topic: string, fullName: string): string {
  return `${topic}-${fullName}`;
}

function fullNameOf(def: Record<string, unknown>, enclosingNs: string | undefined): string {
  const name = def['name'];
  if (typeof name !== 'string') throw new HubError('HUB_SCHEMA_INVALID', 'named type without a name');
  if (name.includes('.')) return name;
  const ns = typeof def['namespace'] === 'string' ? def['namespace'] : enclosingNs;
  return ns ? `${ns}.${name}` : name;
}

function namespaceOf(fullName: string): string | undefined {
  const i = fullName.lastIndexOf('.');
  return i < 0 ? undefined : fullName.slice(0, i);
}

function shortName(fullName: string): string {
  return fullName.slice(fullName.lastIndexOf('.') + 1);
}

/** Collects every named type (record, enum, fixed) defined anywhere in the files. */
function collectNamed(files: SchemaFile[]): Map<string, { def: Record<string, unknown>; file: string }> {
  const named = new Map<string, { def: Record<string, unknown>; file: string }>();
  const visit = (node: unknown, ns: string | undefined, file: string): void => {
    if (Array.isArray(node)) {
      for (const n of node) visit(n, ns, file);
      return;
    }
    if (typeof node !== 'object' || node === null) return;
    const def = node as Record<string, unknown>;
    const t = def['type'];
    if (t === 'record' || t === 'error' || t === 'enum' || t === 'fixed') {
      const fn = fullNameOf(def, ns);
      const prev = named.get(fn);
      if (prev && prev.file !== file) {
        throw new HubError('HUB_SCHEMA_INVALID', `${fn} is defined in both ${prev.file} and ${file}`);
      }
      named.set(fn, { def, file });
      const innerNs = namespaceOf(fn);
      if (Array.isArray(def['fields'])) {
        for (const f of def['fields'] as Record<string, unknown>[]) visit(f['type'], innerNs, file);
      }
      return;
    }
    if (t === 'array') visit(def['items'], ns, file);
    else if (t === 'map') visit(def['values'], ns, file);
    else if (typeof t === 'object') visit(t, ns, file);
  };
  for (const f of files) visit(f.json, undefined, f.file);
  return named;
}

/**
 * Produces a self-contained copy of a named type: each referenced named type
 * is inlined once (at its first use, as Avro requires) and referred to by
 * full name afterwards. Attributes such as logicalType, doc and default are
 * kept, because the registry's compatibility check and consumers rely on them.
 */
function inline(
  root: string,
  named: Map<string, { def: Record<string, unknown>; file: string }>,
): Record<string, unknown> {
  const defined = new Set<string>();
  const resolveRef = (ref: string, ns: string | undefined): string => {
    if (ref.includes('.')) return ref;
    const candidate = ns ? `${ns}.${ref}` : ref;
    return named.has(candidate) ? candidate : ref;
  };
  const expandNamed = (fn: string, path: string): Record<string, unknown> => {
    const entry = named.get(fn);
    if (!entry) throw new HubError('HUB_SCHEMA_INVALID', `${path}: unknown type ${fn}`);
    defined.add(fn);
    const def = entry.def;
    const out: Record<string, unknown> = {};
    const innerNs = namespaceOf(fn);
    for (const [k, v] of Object.entries(def)) {
      if (k === 'name') out['name'] = shortName(fn);
      else if (k === 'namespace') continue;
      else if (k === 'fields' && Array.isArray(v)) {
        out['fields'] = (v as Record<string, unknown>[]).map((f) => ({
          ...f,
          type: expand(f['type'], innerNs, `${path}.${String(f['name'])}`),
        }));
      } else out[k] = v;
    }
    // Namespace is written explicitly so that the inlined copy means the same
    // thing wherever it lands.
    const ordered: Record<string, unknown> = { type: out['type'], name: out['name'] };
    if (innerNs) ordered['namespace'] = innerNs;
    for (const [k, v] of Object.entries(out)) if (!(k in ordered)) ordered[k] = v;
    return ordered;
  };
  const expand = (node: unknown, ns: string | undefined, path: string): unknown => {
    if (typeof node === 'string') {
      if (PRIMITIVES.has(node)) return node;
      const fn = resolveRef(node, ns);
      if (defined.has(fn)) return fn;
      return expandNamed(fn, path);
    }
    if (Array.isArray(node)) return node.map((n) => expand(n, ns, path));
    if (typeof node === 'object' && node !== null) {
      const def = node as Record<string, unknown>;
      const t = def['type'];
      if (t === 'record' || t === 'error' || t === 'enum' || t === 'fixed') {
        return expandNamed(fullNameOf(def, ns), path);
      }
      if (t === 'array') return { ...def, items: expand(def['items'], ns, path) };
      if (t === 'map') return { ...def, values: expand(def['values'], ns, path) };
      if (typeof t === 'string' && PRIMITIVES.has(t)) return def;
      return { ...def, type: expand(t, ns, path) };
    }
    throw new HubError('HUB_SCHEMA_INVALID', `${path}: unsupported type node`);
  };
  return expandNamed(root, root);
}

export function composeEvents(files: SchemaFile[], catalog: Catalog): ComposedEvent[] {
  const named = collectNamed(files);
  const byShort = new Map<string, string>();
  for (const fn of named.keys()) {
    const s = shortName(fn);
    const prev = byShort.get(s);
    if (prev && prev !== fn) {
      // Generated TypeScript names are short names, so they must be unique.
      throw new HubError('HUB_SCHEMA_INVALID', `type name ${s} is used by both ${prev} and ${fn}`);
    }
    byShort.set(s, fn);
  }
  const out: ComposedEvent[] = [];
  const seen = new Set<string>();
  for (const topic of catalog.topics) {
    for (const type of topic.events) {
      if (seen.has(type)) throw new HubError('HUB_SCHEMA_INVALID', `${type} is listed on two topics`);
      seen.add(type);
      const fullName = byShort.get(type);
      if (!fullName)
        throw new HubError('HUB_SCHEMA_INVALID', `catalog names ${type} but no .avsc defines it`);
      const entry = named.get(fullName);
      if (!entry) throw new HubError('HUB_SCHEMA_INVALID', `no definition for ${fullName}`);
      const schema = inline(fullName, named);
      try {
        avsc.Type.forSchema(schema as avsc.Schema);
      } catch (cause) {
        throw new HubError('HUB_SCHEMA_INVALID', `${entry.file}: ${(cause as Error).message}`, { cause });
      }
      out.push({
        type,
        fullName,
        topic: topic.name,
        subject: subjectFor(topic.name, fullName),
        schema,
        file: entry.file,
      });
    }
  }
  return out;
}

/** Every named record reachable from the events, for type generation. */
export function namedTypes(files: SchemaFile[]): Map<string, Record<string, unknown>> {
  const m = new Map<string, Record<string, unknown>>();
  for (const [fn, { def }] of collectNamed(files)) m.set(fn, def);
  return m;
}

/** The commits that changed schemas/, newest first: every contract the log may hold events of. */
export function schemaRevisions(repoDir: string): string[] {
  return execFileSync('git', ['-C', repoDir, 'log', '--format=%H', '--', 'schemas'], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean);
}

/** Composes schemas/ as it was at a git revision (for `hub schemas check --git-history` and the evolution tests). */
export function composeAtRevision(repoDir: string, rev: string): ComposedEvent[] {
  const dir = mkdtempSync(join(tmpdir(), 'hub-schemas-'));
  try {
    const tar = execFileSync('git', ['-C', repoDir, 'archive', rev, 'schemas'], {
      maxBuffer: 64 * 1024 * 1024,
    });
    execFileSync('tar', ['-x', '-C', dir], { input: tar });
    const { files, catalog } = readSchemaDir(join(dir, 'schemas'));
    return composeEvents(files, catalog);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
