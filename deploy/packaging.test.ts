// The packaging, checked offline (no Docker engine, no cluster, no download at test time):
// deploy/compose.yaml and the Kubernetes manifests under deploy/k8s are parsed; every
// service the README lists must be in both with its health checks; every variable must be
// one its service reads; every Kubernetes object is validated against the Kubernetes API
// schemas (kubernetes-models, generated from the API's OpenAPI) and Strimzi's CRD schemas
// (@kubernetes-models/strimzi-kafka-operator, generated from Strimzi 0.49's CRDs); topics and
// users must match the catalog and the local secure profile's ACL plan.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8sApps from 'kubernetes-models/apps/v1';
import * as k8sBatch from 'kubernetes-models/batch/v1';
import * as k8sPolicy from 'kubernetes-models/policy/v1';
import * as k8sCore from 'kubernetes-models/v1';
import * as strimzi from '@kubernetes-models/strimzi-kafka-operator/kafka.strimzi.io/v1';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { auditTrailEnv } from '../libs/audit/key.js';
import { authEnv } from '../libs/auth/env.js';
import { databaseEnv } from '../libs/config/index.js';
import { resolveTopics } from '../libs/kafka/admin.js';
import { serviceEnv } from '../libs/service/index.js';
import { siteEnv } from '../libs/service/site.js';
import { parseSiteConfig } from '../libs/site-config/index.js';
import { aclPlan, CLIENT_PRINCIPALS, secureTopicDefinitions } from '../libs/stack/secure.js';
import { SERVICES } from '../libs/stack/services.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const K8S = join(ROOT, 'deploy', 'k8s');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const obj = (v: unknown): Obj => (isObj(v) ? v : {});
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');
/** A nested field, or undefined. */
const at = (v: unknown, ...path: (string | number)[]): unknown =>
  path.reduce<unknown>((o, k) => (typeof k === 'number' ? list(o)[k] : obj(o)[k]), v);

// ---------------------------------------------------------------- what the services read

/** The services the README's Services table lists (its first column). */
function readmeServices(): string[] {
  const section =
    read('README.md')
      .split(/^## Services$/m)[1]
      ?.split(/^## /m)[0] ?? '';
  const names = [...section.matchAll(/^\| ([a-z][a-z0-9-]+) +\|/gm)].map((m) => m[1]!);
  return names.filter((n) => n !== 'service'); // the header row
}

const SHARED_SHAPES: Record<string, Obj> = {
  databaseEnv,
  siteEnv,
  auditTrailEnv,
  authEnv: authEnv(),
};

/**
 * The environment variables a service's zod schema reads: the shared service kit's, the
 * shared groups its main.ts (or the projector kit) spreads in, and its own keys.
 */
function serviceVariables(name: string): Set<string> {
  const main = read(`services/${name}/main.ts`);
  const sources = main.includes('runProjectorMain') ? [main, read('libs/projections/main.ts')] : [main];
  const vars = new Set([...Object.keys(serviceEnv), 'HTTP_PORT']);
  for (const src of sources) {
    for (const m of src.matchAll(/^\s+([A-Z][A-Z0-9_]+): /gm)) vars.add(m[1]!);
    for (const [shape, keys] of Object.entries(SHARED_SHAPES)) {
      if (src.includes(`...${shape}`)) Object.keys(keys).forEach((k) => vars.add(k));
    }
  }
  return vars;
}

/** Variables of the runtime, not of the hub's schemas. */
const RUNTIME_VARIABLES = new Set(['NODE_ENV', 'NODE_OPTIONS']);

function unknownVariables(names: Iterable<string>, known: Set<string>): string[] {
  return [...names].filter((n) => !known.has(n) && !RUNTIME_VARIABLES.has(n));
}

// ---------------------------------------------------------------- compose

function loadCompose(file: string): Obj {
  // merge: the files use YAML merge keys (<<) for what every hub service shares.
  return obj(parse(read(`deploy/${file}`), { merge: true }));
}

function composeProblems(compose: Obj, name: string, httpPort: number): string[] {
  const svc = obj(obj(compose['services'])[name]);
  if (!Object.keys(svc).length) return [`${name}: not in compose`];
  const problems: string[] = [];
  const test = list(at(svc, 'healthcheck', 'test')).join(' ');
  if (!test.includes('/ready')) problems.push(`${name}: no health check on /ready`);
  const env = obj(svc['environment']);
  if (String(env['HTTP_PORT']) !== String(httpPort)) problems.push(`${name}: HTTP_PORT is not ${httpPort}`);
  const unknown = unknownVariables(Object.keys(env), serviceVariables(name));
  if (unknown.length) problems.push(`${name}: variables its schema does not read: ${unknown.join(', ')}`);
  if (!list(svc['command']).includes(`dist/services/${name}/main.js`)) problems.push(`${name}: command`);
  for (const [dep, cond] of Object.entries(obj(svc['depends_on']))) {
    const wanted = dep === 'hub-init' ? 'service_completed_successfully' : 'service_healthy';
    if (at(cond, 'condition') !== wanted) problems.push(`${name}: depends_on ${dep} is not ${wanted}`);
    if (wanted === 'service_healthy' && !at(compose, 'services', dep, 'healthcheck'))
      problems.push(`${name}: depends on ${dep}, which has no health check`);
  }
  return problems;
}

// ---------------------------------------------------------------- Kubernetes

interface Validatable {
  validate(): void;
}
type ModelClass = new (data: never) => Validatable;

/** apiVersion/kind -> the generated model with the API's (or the CRD's) schema. */
const MODELS = new Map<string, ModelClass>();
for (const [group, mod] of [
  ['v1', k8sCore],
  ['apps/v1', k8sApps],
  ['batch/v1', k8sBatch],
  ['policy/v1', k8sPolicy],
  ['kafka.strimzi.io/v1', strimzi],
] as const) {
  const exported: [string, unknown][] = Object.entries(mod);
  for (const [kind, cls] of exported) {
    if (typeof cls === 'function') MODELS.set(`${group}/${kind}`, cls as ModelClass);
  }
}

/** The schema's complaints about one object, or that its kind is unknown here. */
function schemaProblems(doc: Obj): string[] {
  const model = MODELS.get(`${str(doc['apiVersion'])}/${str(doc['kind'])}`);
  if (!model) return [`${str(doc['apiVersion'])}/${str(doc['kind'])}: no schema for this kind`];
  try {
    new model(doc as never).validate();
    return [];
  } catch (err) {
    return [(err as Error).message];
  }
}

interface Manifest {
  file: string;
  doc: Obj;
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? yamlFiles(join(dir, e.name)) : e.name.endsWith('.yaml') ? [join(dir, e.name)] : [],
  );
}

/** Every Kubernetes object under deploy/k8s (kustomizations and generator inputs apart). */
function loadManifests(): Manifest[] {
  return yamlFiles(K8S)
    .filter((f) => !f.endsWith('kustomization.yaml') && !f.includes(`${join('base', 'config')}`))
    .flatMap((f) =>
      parseAllDocuments(readFileSync(f, 'utf8')).map((d) => {
        if (d.errors.length) throw new Error(`${f}: ${d.errors[0]!.message}`);
        return { file: relative(ROOT, f), doc: obj(d.toJS()) };
      }),
    );
}

const named = (ms: Manifest[], kind: string, name: string) =>
  ms.find((m) => m.doc['kind'] === kind && at(m.doc, 'metadata', 'name') === name)?.doc;

const WORKLOAD_KINDS = ['Deployment', 'StatefulSet'];
const workloadOf = (ms: Manifest[], name: string) =>
  ms.find((m) => WORKLOAD_KINDS.includes(str(m.doc['kind'])) && at(m.doc, 'metadata', 'name') === name)?.doc;

function probeProblems(c: Obj, name: string): string[] {
  const ports = new Set(list(c['ports']).map((p) => at(p, 'name')));
  const problems: string[] = [];
  for (const [probe, path] of [
    ['readinessProbe', '/ready'],
    ['livenessProbe', '/health'],
  ] as const) {
    if (at(c, probe, 'httpGet', 'path') !== path) problems.push(`${name}: ${probe} is not GET ${path}`);
    else if (!ports.has(at(c, probe, 'httpGet', 'port'))) problems.push(`${name}: ${probe} names no port`);
  }
  return problems;
}

/** What a hub workload must have besides a valid schema. */
function workloadProblems(w: Obj, name: string, httpPort: number): string[] {
  const pod = obj(at(w, 'spec', 'template', 'spec'));
  const c = obj(list(pod['containers'])[0]);
  const problems = probeProblems(c, name);
  for (const kind of ['requests', 'limits'])
    for (const r of ['cpu', 'memory'])
      if (!at(c, 'resources', kind, r)) problems.push(`${name}: no ${kind}.${r}`);
  if (at(pod, 'securityContext', 'runAsNonRoot') !== true) problems.push(`${name}: may run as root`);
  if (at(c, 'securityContext', 'readOnlyRootFilesystem') !== true) problems.push(`${name}: writable root fs`);
  if (at(c, 'securityContext', 'allowPrivilegeEscalation') !== false) problems.push(`${name}: escalation`);
  if (!list(pod['topologySpreadConstraints']).length) problems.push(`${name}: no topology spread`);
  if (!list(c['args']).includes(`dist/services/${name}/main.js`)) problems.push(`${name}: args`);
  const env = list(c['env']).map((e) => str(at(e, 'name')));
  const unknown = unknownVariables(env, serviceVariables(name));
  if (unknown.length) problems.push(`${name}: variables its schema does not read: ${unknown.join(', ')}`);
  const port = list(c['env']).find((e) => at(e, 'name') === 'HTTP_PORT');
  if (at(port, 'value') !== String(httpPort)) problems.push(`${name}: HTTP_PORT is not ${httpPort}`);
  return problems;
}

const selects = (doc: Obj | undefined, name: string) =>
  at(doc, 'spec', 'selector', 'app.kubernetes.io/name') === name ||
  at(doc, 'spec', 'selector', 'matchLabels', 'app.kubernetes.io/name') === name;

interface Kustomization {
  dir: string;
  doc: Obj;
}

function kustomizations(): Kustomization[] {
  return yamlFiles(K8S)
    .filter((f) => f.endsWith('kustomization.yaml'))
    .map((f) => ({ dir: dirname(f), doc: obj(parse(readFileSync(f, 'utf8'))) }));
}

/** Files a kustomization names that do not exist (resources, generator inputs). */
function missingFiles(k: Kustomization): string[] {
  const generatorFiles = list(k.doc['configMapGenerator']).flatMap((g) => [
    ...list(at(g, 'envs')).map(str),
    ...list(at(g, 'files')).map((f) => str(f).replace(/^[^=]*=/, '')),
  ]);
  return [...list(k.doc['resources']).map(str), ...generatorFiles].filter((p) => !existsSync(join(k.dir, p)));
}

/** KEY=VALUE lines of a kustomize env file (comments and blank lines apart). */
function envFileKeys(path: string): string[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() && !l.trimStart().startsWith('#'))
    .map((l) => l.split('=')[0]!.trim());
}

const partitionsOf = (topic: string) =>
  secureTopicDefinitions().find((t) => t.name === topic)?.partitions ?? 0;

// ---------------------------------------------------------------- tests

describe('packaging: every service, in compose and in Kubernetes', () => {
  const manifests = loadManifests();

  it('the README, `hub up` and services/ name the same services', () => {
    // given the README's Services table, libs/stack's list and the services' folders
    const inReadme = readmeServices().sort();
    const folders = readdirSync(join(ROOT, 'services'))
      .filter((d) => existsSync(join(ROOT, 'services', d, 'main.ts')))
      .sort();
    // then they agree
    expect(inReadme).toEqual(SERVICES.map((s) => s.name).sort());
    expect(folders).toEqual(inReadme);
  });

  it('compose runs every service with a /ready health check, the services’ own variable names and ordered start-up', () => {
    // given deploy/compose.yaml, alone and with the production file over it
    const compose = loadCompose('compose.yaml');
    const production = loadCompose('compose.production.yaml');
    // when each service is checked
    const problems = SERVICES.flatMap((s) => composeProblems(compose, s.name, s.httpPort));
    const overridden = SERVICES.flatMap((s) =>
      unknownVariables(
        Object.keys(obj(at(production, 'services', s.name, 'environment'))),
        serviceVariables(s.name),
      ).map((v) => `${s.name} (compose.production.yaml): ${v}`),
    );
    // then nothing is missing, and every infrastructure service has a health check too
    expect([...problems, ...overridden]).toEqual([]);
    for (const infra of ['kafka', 'postgres', 'registry'])
      expect(at(compose, 'services', infra, 'healthcheck'), infra).toBeTruthy();
  });

  it('compose uses pinned images that exist, the hub image built from the Dockerfile on Node 24', () => {
    // given compose.yaml's images and the Dockerfile
    const services = obj(loadCompose('compose.yaml')['services']);
    const images = new Set(Object.values(services).map((s) => str(at(s, 'image'))));
    const dockerfile = read('Dockerfile');
    // then the infrastructure images are the documented ones at the versions libs/stack runs
    expect(images).toEqual(
      new Set([
        'apache/kafka:4.1.1',
        'postgres:15',
        'apicurio/apicurio-registry:3.0.9',
        'clinical-hub:local',
      ]),
    );
    expect(at(services, 'hub-init', 'build', 'dockerfile')).toBe('Dockerfile');
    // and every stage of the one image runs the same Node major, non-root by a numeric user
    const bases = [...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]);
    expect(bases).toEqual(['node:24-bookworm-slim', 'node:24-bookworm-slim']);
    expect(dockerfile).toMatch(/^USER 1000:1000$/m);
    // and the files compose mounts are in the tree
    for (const c of Object.values(obj(loadCompose('compose.yaml')['configs'])).map((c) => at(c, 'file')))
      if (typeof c === 'string') expect(existsSync(join(ROOT, 'deploy', c)), c).toBe(true);
  });

  it('every Kubernetes object is valid against the Kubernetes API and Strimzi CRD schemas', () => {
    // when each object under deploy/k8s is validated
    const problems = manifests.flatMap((m) => schemaProblems(m.doc).map((p) => `${m.file}: ${p}`));
    // then none is refused, and there is something to validate
    expect(problems).toEqual([]);
    expect(manifests.length).toBeGreaterThan(30);
  });

  it('each service has a workload with /ready and /health probes, resources, a Service and a disruption budget', () => {
    // when each service's objects are checked
    const problems = SERVICES.flatMap((s) => {
      const w = workloadOf(manifests, s.name);
      if (!w) return [`${s.name}: no Deployment or StatefulSet`];
      const own = [...workloadProblems(w, s.name, s.httpPort)];
      if (!selects(named(manifests, 'Service', s.name), s.name)) own.push(`${s.name}: no Service`);
      if (!selects(named(manifests, 'PodDisruptionBudget', s.name), s.name)) own.push(`${s.name}: no PDB`);
      return own;
    });
    // then nothing is missing; the MLLP port is a TCP LoadBalancer keeping the sender's address
    expect(problems).toEqual([]);
    const mllp = named(manifests, 'Service', 'adapter-hl7-mllp');
    expect(at(mllp, 'spec', 'type')).toBe('LoadBalancer');
    expect(at(mllp, 'spec', 'externalTrafficPolicy')).toBe('Local');
    expect(at(mllp, 'spec', 'ports', 0)).toMatchObject({ port: 2575, protocol: 'TCP', targetPort: 'mllp' });
  });

  it('configuration and secrets the workloads name exist or are documented', () => {
    // given the generated ConfigMaps, the Secrets Strimzi creates and those the README asks for
    const base = kustomizations().find((k) => relative(K8S, k.dir) === 'base')!;
    const generated = new Set(list(base.doc['configMapGenerator']).map((g) => str(at(g, 'name'))));
    const readme = readFileSync(join(K8S, 'README.md'), 'utf8');
    const fromStrimzi = new Set([...CLIENT_PRINCIPALS, 'hub-cluster-ca-cert']);
    // when every reference is collected
    const pods = manifests.map((m) => at(m.doc, 'spec', 'template', 'spec')).filter(isObj);
    const volumes = pods.flatMap((p) => list(p['volumes']));
    const configMaps = [
      ...volumes.map((v) => str(at(v, 'configMap', 'name'))),
      ...pods
        .flatMap((p) => list(p['containers']).flatMap((c) => list(at(c, 'envFrom'))))
        .map((e) => str(at(e, 'configMapRef', 'name'))),
    ].filter(Boolean);
    const secrets = volumes.map((v) => str(at(v, 'secret', 'secretName'))).filter(Boolean);
    // then each is generated, made by Strimzi, or documented for the operator to create
    expect(configMaps.filter((c) => !generated.has(c))).toEqual([]);
    expect(secrets.filter((s) => !fromStrimzi.has(s) && !readme.includes(`\`${s}\``))).toEqual([]);
    // and the shared variables are ones some service reads
    const known = new Set(SERVICES.flatMap((s) => [...serviceVariables(s.name)]));
    expect(unknownVariables(envFileKeys(join(K8S, 'base', 'config', 'hub.env')), known)).toEqual([]);
    // and the example site configuration is one the services accept
    expect(() =>
      parseSiteConfig(readFileSync(join(K8S, 'base', 'config', 'site.yaml'), 'utf8')),
    ).not.toThrow();
  });

  it('the kustomizations name files that exist; production scales projectors up to the partition count', () => {
    // given every kustomization.yaml
    const ks = kustomizations();
    // then every file they name exists
    expect(ks.flatMap((k) => missingFiles(k).map((f) => `${relative(ROOT, k.dir)}: ${f}`))).toEqual([]);
    // and the production replicas name workloads; projectors never exceed the partitions they share
    const production = ks.find((k) => relative(K8S, k.dir) === join('overlays', 'production'))!;
    const maxProjectors = partitionsOf('clinical.patient.v1');
    for (const r of list(production.doc['replicas'])) {
      const name = str(at(r, 'name'));
      expect(workloadOf(manifests, name), name).toBeDefined();
      const count = Number(at(r, 'count'));
      expect(count, name).toBeGreaterThanOrEqual(2);
      if (name.startsWith('projector-') || name === 'patient-directory')
        expect(count, name).toBeLessThanOrEqual(maxProjectors);
    }
  });
});

describe('packaging: the Strimzi cluster, topics and users', () => {
  const manifests = loadManifests();
  const ofKind = (kind: string) => manifests.filter((m) => m.doc['kind'] === kind).map((m) => m.doc);

  it('a 3-node KRaft cluster keeps 3 copies, acknowledges at 2, never elects an unclean leader, on a TLS+SCRAM listener', () => {
    // given the Kafka and its node pool
    const [kafka] = ofKind('Kafka');
    const [pool] = ofKind('KafkaNodePool');
    // then
    expect(at(pool, 'spec', 'replicas')).toBe(3);
    expect(list(at(pool, 'spec', 'roles')).sort()).toEqual(['broker', 'controller']);
    expect(at(kafka, 'spec', 'kafka', 'config')).toMatchObject({
      'default.replication.factor': 3,
      'min.insync.replicas': 2,
      'unclean.leader.election.enable': false,
      'auto.create.topics.enable': false,
    });
    expect(at(kafka, 'spec', 'kafka', 'listeners', 0)).toMatchObject({
      tls: true,
      authentication: { type: 'scram-sha-512' },
    });
    expect(at(kafka, 'spec', 'kafka', 'authorization', 'type')).toBe('simple');
  });

  it('the KafkaTopics are the catalog’s topics with its production settings', () => {
    // given the topics the hub uses, resolved for the production environment
    const expected = resolveTopics('production', secureTopicDefinitions()).map((t) => ({
      name: t.name,
      partitions: t.partitions,
      replicas: t.replicationFactor,
      config: {
        'retention.ms': t.retentionMs,
        'cleanup.policy': t.cleanupPolicy ?? 'delete',
        'min.insync.replicas': t.minInsyncReplicas,
        'unclean.leader.election.enable': t.uncleanLeaderElection,
        ...(t.maxMessageBytes === undefined ? {} : { 'max.message.bytes': t.maxMessageBytes }),
      },
    }));
    // when the KafkaTopics are read
    const actual = ofKind('KafkaTopic').map((t) => ({ name: at(t, 'metadata', 'name'), ...obj(t['spec']) }));
    // then they are the same, in the same order
    expect(actual).toEqual(expected);
  });

  it('the KafkaUsers carry exactly the ACLs of the local secure profile', () => {
    // given the ACL plan of libs/stack/secure.ts in Strimzi's terms
    const ops: Record<string, string> = {
      read: 'Read',
      write: 'Write',
      create: 'Create',
      delete: 'Delete',
      describe: 'Describe',
      'describe-configs': 'DescribeConfigs',
      'alter-configs': 'AlterConfigs',
    };
    const type = (r: string) => (r === 'transactional-id' ? 'transactionalId' : r);
    const expected = aclPlan().map((g) => ({
      user: g.principal,
      resource:
        g.resource === 'cluster'
          ? { type: 'cluster' }
          : {
              type: type(g.resource),
              name: g.name,
              patternType: g.pattern === 'prefixed' ? 'prefix' : 'literal',
            },
      operations: g.operations.map((o) => ops[o]),
    }));
    // when the KafkaUsers are read
    const users = ofKind('KafkaUser');
    const actual = users.flatMap((u) =>
      list(at(u, 'spec', 'authorization', 'acls')).map((a) => ({
        user: at(u, 'metadata', 'name'),
        ...obj(a),
      })),
    );
    // then the same grants, each user authenticated by SCRAM
    expect(actual).toEqual(expected);
    expect(users.map((u) => at(u, 'metadata', 'name'))).toEqual([...CLIENT_PRINCIPALS]);
    for (const u of users) expect(at(u, 'spec', 'authentication', 'type')).toBe('scram-sha-512');
  });
});

describe('packaging: the checks refuse broken manifests', () => {
  const manifests = loadManifests();
  const deployment = () => structuredClone(workloadOf(manifests, 'api')!);

  it('a wrong type, a missing required field or an unknown enum value fails the schema check', () => {
    // given three broken copies of the API's Deployment and a broken KafkaTopic
    const wrongType = deployment();
    obj(wrongType['spec'])['replicas'] = 'three';
    const noContainers = deployment();
    delete obj(at(noContainers, 'spec', 'template', 'spec'))['containers'];
    const badPolicy = deployment();
    obj(at(badPolicy, 'spec', 'template', 'spec'))['restartPolicy'] = 'Sometimes';
    const topic = structuredClone(manifests.find((m) => m.doc['kind'] === 'KafkaTopic')!.doc);
    obj(topic['spec'])['partitions'] = '6';
    // then each is refused, naming the field
    expect(schemaProblems(wrongType).join()).toMatch(/spec\/replicas must be integer/);
    expect(schemaProblems(noContainers).join()).toMatch(/must have required property '?containers/);
    expect(schemaProblems(badPolicy).join()).toMatch(/restartPolicy/);
    expect(schemaProblems(topic).join()).toMatch(/spec\/partitions must be integer/);
    expect(schemaProblems({ apiVersion: 'apps/v1', kind: 'Deploymnet' })).toEqual([
      'apps/v1/Deploymnet: no schema for this kind',
    ]);
  });

  it('a workload without its probes, limits or with a variable its service does not read fails', () => {
    // given the API's Deployment without a readiness probe, a memory limit, and with a typo'd variable
    const broken = deployment();
    const c = obj(list(at(broken, 'spec', 'template', 'spec', 'containers'))[0]);
    delete c['readinessProbe'];
    delete obj(at(c, 'resources', 'limits'))['memory'];
    list(c['env']).push({ name: 'DATABSE_URL', value: 'postgres://x' });
    // when it is checked
    const problems = workloadProblems(broken, 'api', 8098);
    // then each fault is named
    expect(problems).toEqual([
      'api: readinessProbe is not GET /ready',
      'api: no limits.memory',
      'api: variables its schema does not read: DATABSE_URL',
    ]);
  });
});
