// The secure local profile (`hub infra up --secure`): Kafka on SASL_SSL with
// SCRAM-SHA-512 users, one per service, and ACLs under the StandardAuthorizer,
// each principal allowed only what its role needs. This file holds the plan
// as data (principals, ACLs, topics created up front) and the material the
// broker and its clients need (CA, broker certificate, passwords, env files).
//
// Decisions, stated once:
//  - Topics are created up front by the operator principal (`hub`), never by
//    the services: no service holds CREATE. A service's ensureTopics at start
//    then finds its topics existing and only describes them.
//  - Names are matched by PREFIXED patterns where HUB_TOPIC_SUFFIX applies
//    (`clinical.patient.v1.<suffix>`), so a suffixed deployment or test run
//    needs no other ACLs. The prefixes are the catalog's names, so
//    `hub.audit.v1` also matches `hub.audit.v1<anything>`: acceptable on a
//    cluster whose topics only the operator creates.
//  - The FHIR adapter writes hub.audit.v1 too (coordinator's decision): its
//    authenticated reads and writes are audited on the same trail as the API's.
//    So does the delivery service: each delivery of a patient's data is audited.
//  - The controller listener is SSL with required client certificates on
//    loopback; the broker's certificate (CN kafka-broker) maps to the principal
//    User:kafka-broker, the only super user. Inter-broker traffic uses the
//    SASL_SSL listener as SCRAM user kafka-broker (KRaft cannot use SCRAM on the
//    controller listener: the credentials live in the metadata it serves).
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AUDIT_DLQ_CONSUMER, AUDIT_TOPIC, auditDlqTopic } from '../audit/topic.js';
import { catalogTopicDefinitions, INGEST_TOPICS } from '../events/contracts.js';
import { TOPIC_CATALOG } from '../events/index.js';
import kafkajs, { type AclEntry } from 'kafkajs';
import { ensureTopics, type TopicDefinition } from '../kafka/admin.js';
import { createKafkaClient } from '../kafka/client.js';
import { dlqTopicFor } from '../kafka/dlq.js';
import type { KafkaSecurity } from '../kafka/security.js';
import { createLogger } from '../telemetry/logger.js';
import { ensureCa, issueCertificate, type IssuedCertificate } from './certs.js';

/** The broker's own principal: controller certificate CN and inter-broker SCRAM user; the only super user. */
export const BROKER_PRINCIPAL = 'kafka-broker';
/** The operator (`hub` CLI): creates topics, describes everything, reads and redrives dead letters. */
export const OPERATOR_PRINCIPAL = 'hub';
export const SCRAM_MECHANISM = 'SCRAM-SHA-512';

/** One SCRAM user per service process `hub up` runs, named as the service. */
export const SERVICE_PRINCIPALS = [
  'adapter-hl7',
  'adapter-fhir',
  'projector-portal',
  'projector-billing',
  'projector-analytics',
  'patient-directory',
  'api',
  'delivery',
  'identity-matcher',
  'console',
] as const;
export type ServicePrincipal = (typeof SERVICE_PRINCIPALS)[number];
export type ClientPrincipal = ServicePrincipal | typeof OPERATOR_PRINCIPAL;
export const CLIENT_PRINCIPALS: readonly ClientPrincipal[] = [...SERVICE_PRINCIPALS, OPERATOR_PRINCIPAL];

export type AclResource = 'topic' | 'group' | 'transactional-id' | 'cluster';
export type AclOperation =
  'read' | 'write' | 'create' | 'delete' | 'describe' | 'describe-configs' | 'alter-configs';

/** One allow rule: `principal` may do `operations` on resources matching `name` (literal or prefix). */
export interface AclGrant {
  principal: ClientPrincipal;
  resource: AclResource;
  pattern: 'literal' | 'prefixed';
  name: string;
  operations: readonly AclOperation[];
  /** Why the role needs it (shown by `hub infra up --secure`, kept next to the rule). */
  why: string;
}

/** Every resource name starting with this is a clinical event topic (catalog, any suffix). */
const CLINICAL_PREFIX = 'clinical.';
/** The projectors' consumer groups: `hub.projection.<read model>.<version schema>` (libs/projections). */
const PROJECTION_GROUPS = 'hub.projection.';
/** The delivery service's groups: `hub.delivery.<subscription id>` and its redrive reads under it (libs/delivery/worker.ts). */
const DELIVERY_GROUPS = 'hub.delivery.';
/** The identity-matcher's group (`hub.identity-matcher`, and any per-deployment group under it). */
const IDENTITY_GROUPS = 'hub.identity-matcher';
/** Throwaway groups of `scanTopic` (libs/kafka/scan.ts): a topic read from its start, the group deleted after. */
const SCAN_GROUPS = 'hub-scan-';
/** The consumer groups whose lag the console shows: projectors, audit projector, deliveries, matcher. */
const LAG_GROUPS = [PROJECTION_GROUPS, 'hub.audit.projector.', DELIVERY_GROUPS, IDENTITY_GROUPS];
const TX_PREFIX = 'adapter-fhir-';
/**
 * The catalog topics the adapters write: every one but the master patient
 * index's decisions, which only the identity-matcher may publish (an adapter
 * that could write them could link two patients' records).
 */
const SOURCE_TOPICS = TOPIC_CATALOG.filter((t) => t.aggregate !== 'identity').map((t) => t.name);

type Grant = Omit<AclGrant, 'principal'>;
const topic = (name: string, operations: readonly AclOperation[], why: string): Grant => ({
  resource: 'topic',
  pattern: 'prefixed',
  name,
  operations,
  why,
});
const group = (name: string, operations: readonly AclOperation[], why: string): Grant => ({
  resource: 'group',
  pattern: 'prefixed',
  name,
  operations,
  why,
});

/** A projector: reads the clinical topics in its own groups and writes its own dead letters. */
function projectorGrants(service: ServicePrincipal, readModel: string): Grant[] {
  return [
    topic(CLINICAL_PREFIX, ['read', 'describe'], 'consumes the clinical event topics'),
    topic(dlqTopicFor(service), ['write', 'describe'], 'parks records it cannot apply'),
    group(
      `${PROJECTION_GROUPS}${readModel}.`,
      ['read', 'describe', 'delete'],
      "its consumer groups, one per read-model version (a replaced version's group is deleted)",
    ),
  ];
}

const ROLE_GRANTS: Record<ClientPrincipal, readonly Grant[]> = {
  'adapter-hl7': [
    ...SOURCE_TOPICS.map((t) => topic(t, ['write', 'describe'], 'publishes the clinical events it maps')),
    topic(INGEST_TOPICS.hl7Raw, ['write', 'describe', 'describe-configs'], 'keeps every inbound message'),
    topic(INGEST_TOPICS.hl7Dlq, ['write', 'describe', 'describe-configs'], 'parks messages it cannot map'),
    // ensureTopics checks max.message.bytes of the large-record topics it writes.
    topic('clinical.attachment.v1', ['describe-configs'], 'checks the attachment topic fits a frame'),
  ],
  'adapter-fhir': [
    ...SOURCE_TOPICS.map((t) =>
      topic(t, ['write', 'describe'], 'publishes the clinical events of FHIR writes'),
    ),
    topic(dlqTopicFor('adapter-fhir'), ['write', 'describe'], 'parks $import lines it cannot use'),
    topic(AUDIT_TOPIC, ['write', 'describe'], 'audits its authenticated reads and writes'),
    {
      resource: 'transactional-id',
      pattern: 'prefixed',
      name: TX_PREFIX,
      operations: ['write', 'describe'],
      why: 'its transactional producer (a Bundle is one transaction)',
    },
  ],
  'projector-portal': projectorGrants('projector-portal', 'portal'),
  'projector-billing': projectorGrants('projector-billing', 'billing'),
  'projector-analytics': [
    ...projectorGrants('projector-analytics', 'analytics'),
    topic('hub.dlq.', ['read', 'describe'], 'counts dead letters (headers only) for the quality views'),
    topic(INGEST_TOPICS.hl7Dlq, ['read', 'describe'], 'counts HL7 dead letters'),
    group(`${PROJECTION_GROUPS}analytics-dead-letters.`, ['read', 'describe'], 'its dead-letter counter'),
  ],
  'patient-directory': projectorGrants('patient-directory', 'patient-directory'),
  // Reads like a projector, but each subscription is its own group, and its
  // deliveries are audited: it writes the audit topic (never reads it).
  delivery: [
    topic(CLINICAL_PREFIX, ['read', 'describe'], 'consumes the clinical topics for its subscriptions'),
    group(
      DELIVERY_GROUPS,
      ['read', 'describe', 'delete'],
      "one consumer group per subscription (a deleted subscription's group is deleted)",
    ),
    topic(dlqTopicFor('delivery'), ['write', 'describe'], 'parks records it cannot decode'),
    topic(AUDIT_TOPIC, ['write', 'describe'], 'audits every delivery that carries patient data'),
  ],
  // The master patient index: reads patient events only, and is the one writer of link decisions.
  'identity-matcher': [
    topic('clinical.patient.v1', ['read', 'describe'], 'consumes the patient events it matches'),
    topic('clinical.identity.v1', ['write', 'describe'], 'publishes link decisions (matcher and stewards)'),
    group(IDENTITY_GROUPS, ['read', 'describe'], 'its consumer group'),
    topic(dlqTopicFor('identity-matcher'), ['write', 'describe'], 'parks records it cannot decode'),
  ],
  // The operations console: reads what `hub dlq`, `hub status` and the message search read, writes
  // the audit trail of what its users open, and redrives dead letters to their source topics.
  // Not clinical.identity.v1: a dead link decision is redriven by the operator (`hub dlq`), so the
  // matcher stays the only service that publishes link decisions.
  console: [
    topic(CLINICAL_PREFIX, ['read', 'describe'], 'shows topic rates and the events a message produced'),
    topic(INGEST_TOPICS.hl7Raw, ['read', 'describe'], 'message search: the raw message as received'),
    topic(INGEST_TOPICS.hl7Dlq, ['read', 'describe'], 'lists and opens HL7 dead letters'),
    topic('hub.dlq.', ['read', 'describe'], "lists and opens the consumers' dead letters"),
    ...SOURCE_TOPICS.map((t) => topic(t, ['write'], 'redrives dead letters to their source topic')),
    topic(AUDIT_TOPIC, ['write', 'describe'], 'audits every PHI view and every dead-letter action'),
    group(
      SCAN_GROUPS,
      ['read', 'describe', 'delete'],
      'scans a topic in a throwaway group, then deletes the group',
    ),
    ...LAG_GROUPS.map((g) => group(g, ['describe'], 'shows consumer lag and state on the flow page')),
  ],
  api: [
    topic(
      AUDIT_TOPIC,
      ['write', 'read', 'describe'],
      'writes the audit trail and projects it into its table',
    ),
    group('hub.audit.projector.', ['read', 'describe'], "the audit projector's group"),
    topic(auditDlqTopic(), ['write', 'describe'], 'parks audit records its table cannot store'),
    topic(CLINICAL_PREFIX, ['describe'], 'reports consumer lag on the clinical topics (admin routes)'),
    group(PROJECTION_GROUPS, ['describe'], "reports the projectors' consumer lag (admin routes)"),
  ],
  hub: [
    {
      resource: 'cluster',
      pattern: 'literal',
      name: 'kafka-cluster',
      operations: ['create', 'describe', 'describe-configs'],
      why: 'creates the topics up front, describes the cluster',
    },
    {
      resource: 'topic',
      pattern: 'literal',
      name: '*',
      operations: ['create', 'describe', 'describe-configs', 'alter-configs', 'read', 'write', 'delete'],
      why: 'operator: topics, dead letters (show, redrive), audit verification',
    },
    {
      resource: 'group',
      pattern: 'literal',
      name: '*',
      operations: ['read', 'describe', 'delete'],
      why: 'operator: lag, rebuilds, removing stale groups',
    },
  ],
};

/** The whole ACL plan: least privilege per principal, nothing for anyone else (no ACL means denied). */
export function aclPlan(): AclGrant[] {
  return CLIENT_PRINCIPALS.flatMap((principal) => ROLE_GRANTS[principal].map((g) => ({ principal, ...g })));
}

/** Every topic the hub uses, created up front by the operator (services hold no CREATE). */
export function secureTopicDefinitions(
  nameFor: (catalogName: string) => string = (n) => n,
): TopicDefinition[] {
  const single = (name: string): TopicDefinition => ({
    name: nameFor(name),
    partitions: 1,
    retentionMs: -1,
  });
  const dlqs = [
    'adapter-fhir',
    'projector-portal',
    'projector-billing',
    'projector-analytics',
    'patient-directory',
    'delivery',
    'identity-matcher',
    AUDIT_DLQ_CONSUMER,
  ];
  return [
    ...catalogTopicDefinitions(nameFor),
    single(AUDIT_TOPIC),
    ...dlqs.map((c) => single(dlqTopicFor(c))),
  ];
}

/** The CA, the broker's certificate and every principal's password, as files under the profile's secure dir. */
export interface SecureMaterial {
  dir: string;
  caFile: string;
  broker: IssuedCertificate;
  /** Key then certificate in one PEM file: Kafka's PEM keystore format. */
  brokerKeystore: string;
  passwords: Readonly<Record<ClientPrincipal | typeof BROKER_PRINCIPAL, string>>;
  /** `<dir>/credentials/<principal>.password`, mode 0600. */
  passwordFile(principal: ClientPrincipal): string;
}

async function ensurePassword(file: string): Promise<string> {
  if (existsSync(file)) return (await readFile(file, 'utf8')).trim();
  // Hex: safe inside StorageTool's [name=..,password=..] and a JAAS quoted string.
  const pw = randomBytes(24).toString('hex');
  await writeFile(file, `${pw}\n`, { mode: 0o600 });
  return pw;
}

/** Where the secure profile's CA certificate is, given its secure dir. */
export const secureCaFile = (dir: string): string => join(dir, 'ca', 'ca.crt');

/** Creates what is missing (an existing CA, certificate or password is kept: the broker was formatted with it). */
export async function ensureSecureMaterial(dir: string): Promise<SecureMaterial> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const ca = await ensureCa(join(dir, 'ca'));
  const certs = join(dir, 'certs');
  // Server (SASL_SSL and controller listeners) and client (the broker's own controller connection).
  const broker = await issueCertificate(ca, certs, BROKER_PRINCIPAL, {
    hosts: ['127.0.0.1', 'localhost'],
    usage: 'both',
  });
  const brokerKeystore = join(certs, `${BROKER_PRINCIPAL}.pem`);
  const pem = `${(await readFile(broker.keyFile, 'utf8')).trim()}\n${(await readFile(broker.certFile, 'utf8')).trim()}\n`;
  await writeFile(brokerKeystore, pem, { mode: 0o600 });
  await chmod(broker.keyFile, 0o600);
  const creds = join(dir, 'credentials');
  await mkdir(creds, { recursive: true, mode: 0o700 });
  const passwordFile = (p: string) => join(creds, `${p}.password`);
  const passwords: Record<string, string> = {};
  for (const p of [BROKER_PRINCIPAL, ...CLIENT_PRINCIPALS])
    passwords[p] = await ensurePassword(passwordFile(p));
  return {
    dir,
    caFile: ca.certFile,
    broker,
    brokerKeystore,
    passwords: passwords as SecureMaterial['passwords'],
    passwordFile,
  };
}

/** `kafka-storage format` arguments that bootstrap every SCRAM user (only at format time). */
export function scramFormatArgs(passwords: Readonly<Record<string, string>>): string[] {
  return Object.entries(passwords).flatMap(([name, password]) => [
    '--add-scram',
    `${SCRAM_MECHANISM}=[name=${name},password=${password}]`,
  ]);
}

/** The server.properties lines of the secure variant (listeners, TLS, SASL, authorizer). */
export function secureServerProperties(
  k: { host: string; port: number; controllerPort: number },
  m: Pick<SecureMaterial, 'caFile' | 'brokerKeystore' | 'passwords'>,
): string[] {
  const jaas =
    'org.apache.kafka.common.security.scram.ScramLoginModule required' +
    ` username="${BROKER_PRINCIPAL}" password="${m.passwords[BROKER_PRINCIPAL]}";`;
  return [
    `listeners=CLIENT://${k.host}:${k.port},CONTROLLER://${k.host}:${k.controllerPort}`,
    `advertised.listeners=CLIENT://${k.host}:${k.port}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=CLIENT',
    'listener.security.protocol.map=CLIENT:SASL_SSL,CONTROLLER:SSL',
    `sasl.enabled.mechanisms=${SCRAM_MECHANISM}`,
    `sasl.mechanism.inter.broker.protocol=${SCRAM_MECHANISM}`,
    `listener.name.client.scram-sha-512.sasl.jaas.config=${jaas}`,
    'ssl.keystore.type=PEM',
    `ssl.keystore.location=${m.brokerKeystore}`,
    'ssl.truststore.type=PEM',
    `ssl.truststore.location=${m.caFile}`,
    'ssl.enabled.protocols=TLSv1.3,TLSv1.2',
    // The controller listener admits only certificates of this CA; CN=kafka-broker → User:kafka-broker.
    'listener.name.controller.ssl.client.auth=required',
    'ssl.principal.mapping.rules=RULE:^CN=([A-Za-z0-9._-]+)$/$1/,DEFAULT',
    'authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer',
    'allow.everyone.if.no.acl.found=false',
    `super.users=User:${BROKER_PRINCIPAL}`,
  ];
}

/**
 * What a client of the secure broker is given, as the agreed variables
 * (libs/config kafkaEnv): SASL_SSL, SCRAM-SHA-512, the CA, and the password
 * as a file rather than a value.
 */
export function clientSecurityEnv(
  m: Pick<SecureMaterial, 'caFile' | 'passwordFile'>,
  principal: ClientPrincipal,
): Record<string, string> {
  return {
    KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
    KAFKA_SSL_CA_FILE: m.caFile,
    KAFKA_SASL_MECHANISM: 'scram-sha-512',
    KAFKA_SASL_USERNAME: principal,
    KAFKA_SASL_PASSWORD_FILE: m.passwordFile(principal),
    // The registry knows the same principals with the same passwords (registrySecurityProperties).
    SCHEMA_REGISTRY_USERNAME: principal,
    SCHEMA_REGISTRY_PASSWORD_FILE: m.passwordFile(principal),
  };
}

/** Registry roles of the secure profile: services read and register schemas; only the operator deletes. */
export const REGISTRY_ROLES = { writer: 'hub-registry-writer', admin: 'hub-registry-admin' } as const;

/**
 * Apicurio's own authentication needs an OIDC server; the secure profile uses
 * what its Quarkus runtime carries instead: the embedded users realm (each
 * client principal, its password stored as a salted-by-realm SHA-512 digest)
 * with HTTP basic authentication, and path/method permissions. Everything but
 * the health endpoints needs a user; reads any user; POST/PUT on the
 * Confluent-compatible API (register a schema, check compatibility) a writer;
 * anything else (DELETE, Apicurio's own API writes) the admin, the operator.
 */
export function registrySecurityProperties(passwords: Readonly<Record<ClientPrincipal, string>>): string[] {
  // Quarkus's default realm name: the registry's build fixes it (runtime cannot change it).
  const realm = 'Quarkus';
  const digest = (user: string, pw: string) =>
    createHash('sha512').update(`${user}:${realm}:${pw}`).digest('hex');
  const users = CLIENT_PRINCIPALS.flatMap((p) => [
    `quarkus.security.users.embedded.users.${p}=${digest(p, passwords[p])}`,
    `quarkus.security.users.embedded.roles.${p}=${p === OPERATOR_PRINCIPAL ? REGISTRY_ROLES.admin : REGISTRY_ROLES.writer}`,
  ]);
  const perm = (name: string, paths: string, policy: string, methods?: string) => [
    `quarkus.http.auth.permission.${name}.paths=${paths}`,
    `quarkus.http.auth.permission.${name}.policy=${policy}`,
    ...(methods ? [`quarkus.http.auth.permission.${name}.methods=${methods}`] : []),
  ];
  // Quarkus takes the longest matching path, then the rule naming the method, else the one naming none:
  // each path listed here therefore gets its own read and catch-all rules.
  return [
    'quarkus.security.users.embedded.enabled=true',
    'quarkus.security.users.embedded.plain-text=false',
    'quarkus.security.users.embedded.algorithm=digest-sha-512',
    'quarkus.http.auth.basic=true',
    ...users,
    `quarkus.http.auth.policy.writer.roles-allowed=${REGISTRY_ROLES.writer},${REGISTRY_ROLES.admin}`,
    `quarkus.http.auth.policy.admin.roles-allowed=${REGISTRY_ROLES.admin}`,
    ...perm('health', '/health,/health/*', 'permit', 'GET,HEAD'),
    ...perm('read', '/*,/apis/ccompat/*', 'authenticated', 'GET,HEAD,OPTIONS'),
    // The Confluent-compatible API the hub uses: register, check compatibility, set a subject's level.
    ...perm('register', '/apis/ccompat/*', 'writer', 'POST,PUT'),
    // Everything else (DELETE, PATCH, Apicurio's own v3 API and its admin writes): the operator.
    ...perm('other', '/*,/apis/ccompat/*', 'admin'),
  ];
}

/** Writes `<dir>/registry/security.properties` (mode 0600) for Apicurio (SMALLRYE_CONFIG_LOCATIONS); returns its path. */
export async function writeRegistrySecurity(m: Pick<SecureMaterial, 'dir' | 'passwords'>): Promise<string> {
  const dir = join(m.dir, 'registry');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, 'security.properties');
  await writeFile(file, `${registrySecurityProperties(m.passwords).join('\n')}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
  return file;
}

/** Writes `<dir>/credentials/<principal>.env` (mode 0600) for each client principal; returns their paths. */
export async function writeClientEnvFiles(
  m: SecureMaterial,
  common: Record<string, string>,
): Promise<Record<ClientPrincipal, string>> {
  const out: Partial<Record<ClientPrincipal, string>> = {};
  for (const p of CLIENT_PRINCIPALS) {
    const file = join(m.dir, 'credentials', `${p}.env`);
    const env = { ...common, ...clientSecurityEnv(m, p) };
    const text = Object.entries(env)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n');
    await writeFile(file, `${text}\n`, { mode: 0o600 });
    await chmod(file, 0o600);
    out[p] = file;
  }
  return out as Record<ClientPrincipal, string>;
}

/** A principal's client settings for the hub's Kafka client (libs/kafka/security.ts): password read from its file. */
export function clientSecurity(
  m: Pick<SecureMaterial, 'caFile' | 'passwordFile'>,
  principal: ClientPrincipal,
): KafkaSecurity {
  return {
    protocol: 'SASL_SSL',
    tls: { caFile: m.caFile },
    sasl: { mechanism: 'scram-sha-512', username: principal, password: { file: m.passwordFile(principal) } },
  };
}

// kafkajs is CommonJS: Node's ESM loader does not see these as named exports.
const { AclResourceTypes, AclOperationTypes, AclPermissionTypes, ResourcePatternTypes } = kafkajs;

const RESOURCE_TYPES: Record<AclResource, AclEntry['resourceType']> = {
  topic: AclResourceTypes.TOPIC,
  group: AclResourceTypes.GROUP,
  'transactional-id': AclResourceTypes.TRANSACTIONAL_ID,
  cluster: AclResourceTypes.CLUSTER,
};
const OPERATIONS: Record<AclOperation, AclEntry['operation']> = {
  read: AclOperationTypes.READ,
  write: AclOperationTypes.WRITE,
  create: AclOperationTypes.CREATE,
  delete: AclOperationTypes.DELETE,
  describe: AclOperationTypes.DESCRIBE,
  'describe-configs': AclOperationTypes.DESCRIBE_CONFIGS,
  'alter-configs': AclOperationTypes.ALTER_CONFIGS,
};

/** The plan as Kafka ACL bindings (allow, any host): one binding per operation. Pure. */
export function aclBindings(plan: readonly AclGrant[]): AclEntry[] {
  return plan.flatMap((g) =>
    g.operations.map((op) => ({
      resourceType: RESOURCE_TYPES[g.resource],
      resourceName: g.name,
      resourcePatternType:
        g.pattern === 'literal' ? ResourcePatternTypes.LITERAL : ResourcePatternTypes.PREFIXED,
      principal: `User:${g.principal}`,
      host: '*',
      operation: OPERATIONS[op],
      permissionType: AclPermissionTypes.ALLOW,
    })),
  );
}

/**
 * Brings a started secure broker to the plan: the ACLs (as the broker's own
 * principal, the only one allowed to change them), then every topic (as the
 * operator). Idempotent, run on every start: a grant added to the plan
 * reaches an existing install; one removed from it stays until an operator
 * deletes it (`kafka-acls --remove`), never silently.
 */
export async function bootstrapSecureKafka(
  brokers: string[],
  m: SecureMaterial,
  log: (msg: string) => void,
  o: { topicsFor?: (catalogName: string) => string; timeoutMs?: number } = {},
): Promise<{ acls: number; topics: number }> {
  const logger = createLogger({ name: 'hub-stack', level: 'silent' });
  const asBroker = createKafkaClient({
    brokers,
    clientId: 'hub-stack-acls',
    logger,
    security: brokerSecurity(m),
  });
  const admin = asBroker.admin();
  await admin.connect();
  const acl = aclBindings(aclPlan());
  try {
    await admin.createAcls({ acl });
  } finally {
    await admin.disconnect();
  }
  const asOperator = createKafkaClient({
    brokers,
    clientId: 'hub-stack-topics',
    logger,
    security: clientSecurity(m, OPERATOR_PRINCIPAL),
  });
  const topics = await ensureTopics(asOperator, secureTopicDefinitions(o.topicsFor), {
    timeoutMs: o.timeoutMs ?? 60_000,
  });
  log(
    `kafka: ${acl.length} ACL bindings for ${CLIENT_PRINCIPALS.length} principals, ${topics.length} topics`,
  );
  return { acls: acl.length, topics: topics.length };
}

/** The broker's own SCRAM identity, used only to apply the ACLs. */
function brokerSecurity(m: SecureMaterial): KafkaSecurity {
  return {
    protocol: 'SASL_SSL',
    tls: { caFile: m.caFile },
    sasl: {
      mechanism: 'scram-sha-512',
      username: BROKER_PRINCIPAL,
      password: { value: m.passwords[BROKER_PRINCIPAL] },
    },
  };
}

/**
 * The Kafka variables a service process gets on the secure profile (`hub up`
 * spawns each with its own): its own principal's, or none for a process that
 * is not a known service (it then cannot connect at all).
 */
export function serviceSecurityEnv(
  m: Pick<SecureMaterial, 'caFile' | 'passwordFile'>,
  service: string,
): Record<string, string> {
  const principal = SERVICE_PRINCIPALS.find((p) => p === service);
  return principal ? clientSecurityEnv(m, principal) : {};
}
