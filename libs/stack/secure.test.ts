import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOPIC_CATALOG } from '../events/index.js';
import { stackConfig } from './config.js';
import { kafkaServerProperties } from './kafka.js';
import {
  aclBindings,
  aclPlan,
  BROKER_PRINCIPAL,
  clientSecurityEnv,
  CLIENT_PRINCIPALS,
  ensureSecureMaterial,
  scramFormatArgs,
  secureTopicDefinitions,
  writeClientEnvFiles,
  writeRegistrySecurity,
  REGISTRY_ROLES,
  type AclGrant,
  type ClientPrincipal,
  type SecureMaterial,
} from './secure.js';

/** What the plan lets `principal` do on a topic or group name (prefix and literal matching as Kafka does). */
function allowed(
  plan: readonly AclGrant[],
  principal: ClientPrincipal,
  resource: AclGrant['resource'],
  name: string,
) {
  return new Set(
    plan
      .filter((g) => g.principal === principal && g.resource === resource)
      .filter((g) => (g.pattern === 'prefixed' ? name.startsWith(g.name) : g.name === '*' || g.name === name))
      .flatMap((g) => g.operations),
  );
}

describe('the secure profile ACL plan', () => {
  const plan = aclPlan();
  const suffixed = (n: string) => `${n}.run_1234`;

  it('given the plan, when a projector writes a clinical topic, then nothing allows it (it may only read them)', () => {
    for (const p of [
      'projector-portal',
      'projector-billing',
      'projector-analytics',
      'patient-directory',
    ] as const) {
      for (const name of ['clinical.patient.v1', suffixed('clinical.patient.v1')]) {
        const ops = allowed(plan, p, 'topic', name);
        expect(ops.has('write'), `${p} ${name}`).toBe(false);
        expect(ops.has('read'), `${p} ${name}`).toBe(true);
      }
      expect(allowed(plan, p, 'topic', `hub.dlq.${p}`).has('write')).toBe(true);
      expect(allowed(plan, p, 'topic', 'hub.audit.v1').size).toBe(0);
    }
  });

  it('given the plan, when anyone writes hub.audit.v1, then only the API, the (audited) FHIR adapter, delivery and the console may', () => {
    const writers = CLIENT_PRINCIPALS.filter((p) =>
      allowed(plan, p, 'topic', suffixed('hub.audit.v1')).has('write'),
    );
    expect(writers.sort()).toEqual(['adapter-fhir', 'api', 'console', 'delivery', 'hub']);
  });

  it('given the plan, then the console reads the catalog, raw and dead-letter topics, describes the groups it shows, and writes only the audit trail and redriven records', () => {
    // given the console principal's rights on the names it uses
    const topicOps = (n: string) => [...allowed(plan, 'console', 'topic', suffixed(n))].sort();
    const groupOps = (n: string) => [...allowed(plan, 'console', 'group', n)].sort();
    // then it reads every topic it shows, under any suffix
    for (const t of ['hl7.raw.v1', 'hl7.dlq.v1', 'hub.dlq.projector-portal', 'hub.dlq.delivery'])
      expect(topicOps(t), t).toEqual(['describe', 'read']);
    // and a redrive may write a dead letter back to its source: the clinical topics and the audit trail
    expect(topicOps('clinical.result.v1')).toEqual(['describe', 'read', 'write']);
    expect(topicOps('hub.audit.v1')).toEqual(['describe', 'write']);
    // but never a link decision (only the matcher and the operator publish those), nor raw or dead letters
    expect(topicOps('clinical.identity.v1')).toEqual(['describe', 'read']);
    expect(topicOps('hl7.raw.v1')).not.toContain('write');
    expect(topicOps('hub.dlq.projector-portal')).not.toContain('write');
    // and it describes the consumer groups whose lag the flow page shows, joining none of them
    for (const g of [
      'hub.projection.portal.portal_v1',
      'hub.audit.projector.audit_v1',
      'hub.delivery.5b0c6a1e',
      'hub.identity-matcher',
    ])
      expect(groupOps(g), g).toEqual(['describe']);
    // and its topic scans use throwaway groups it deletes afterwards
    expect(groupOps('hub-scan-0f9e')).toEqual(['delete', 'describe', 'read']);
    // and it creates nothing, and has no dead-letter topic of its own
    expect(secureTopicDefinitions().map((t) => t.name)).not.toContain('hub.dlq.console');
  });

  it('given the plan, then delivery reads the clinical topics in its subscriptions’ groups and writes only its dead letters and the audit trail', () => {
    // given the delivery principal's rights on the names it uses
    const topicOps = (n: string) => [...allowed(plan, 'delivery', 'topic', n)].sort();
    const groupOps = (n: string) => [...allowed(plan, 'delivery', 'group', n)].sort();
    const sub = 'hub.delivery.5b0c6a1e-3f41-4c55-9a8e-0d7f1c2b3a4d';
    // then it reads but never writes clinical events, under any suffix
    expect(topicOps(suffixed('clinical.result.v1'))).toEqual(['describe', 'read']);
    // and its subscriptions' groups (and their redrive scans) are its own, deletable with the subscription
    expect(groupOps(sub)).toEqual(['delete', 'describe', 'read']);
    expect(groupOps(`${sub}.scan-0f9e`)).toEqual(['delete', 'describe', 'read']);
    // and it writes its dead letters and the audit trail, reading neither
    expect(topicOps(suffixed('hub.dlq.delivery'))).toEqual(['describe', 'write']);
    expect(topicOps(suffixed('hub.audit.v1'))).toEqual(['describe', 'write']);
    // and nothing else: no projector's group, no other dead-letter topic, no raw HL7
    expect(groupOps('hub.projection.portal.portal_v1')).toEqual([]);
    expect(groupOps('hub-scan-0f9e')).toEqual([]);
    expect(topicOps('hub.dlq.projector-portal')).toEqual([]);
    expect(topicOps('hl7.raw.v1')).toEqual([]);
  });

  it('given the plan, then the identity-matcher reads patient events in its own group and writes only link decisions and its dead letters', () => {
    const topicOps = (n: string) => [...allowed(plan, 'identity-matcher', 'topic', suffixed(n))].sort();
    const groupOps = (n: string) => [...allowed(plan, 'identity-matcher', 'group', n)].sort();
    expect(topicOps('clinical.patient.v1')).toEqual(['describe', 'read']);
    expect(topicOps('clinical.identity.v1')).toEqual(['describe', 'write']);
    expect(topicOps('hub.dlq.identity-matcher')).toEqual(['describe', 'write']);
    expect(groupOps('hub.identity-matcher')).toEqual(['describe', 'read']);
    // and nothing else: no other clinical topic, no audit trail, no projector's group
    expect(topicOps('clinical.result.v1')).toEqual([]);
    expect(topicOps('hub.audit.v1')).toEqual([]);
    expect(groupOps('hub.projection.portal.portal_v1')).toEqual([]);
    expect(secureTopicDefinitions(suffixed).map((t) => t.name)).toContain(
      suffixed('hub.dlq.identity-matcher'),
    );
  });

  it('given the plan, then the adapters write clinical, raw and dead-letter topics and read nothing', () => {
    const hl7 = (n: string) => allowed(plan, 'adapter-hl7', 'topic', suffixed(n));
    expect([...hl7('clinical.patient.v1')].sort()).toEqual(['describe', 'write']);
    expect(hl7('hl7.raw.v1').has('write')).toBe(true);
    expect(hl7('hl7.dlq.v1').has('write')).toBe(true);
    expect(hl7('clinical.attachment.v1').has('describe-configs')).toBe(true);
    const fhir = allowed(plan, 'adapter-fhir', 'transactional-id', 'adapter-fhir-host-tx');
    expect([...fhir].sort()).toEqual(['describe', 'write']);
    for (const p of ['adapter-hl7', 'adapter-fhir'] as const) {
      expect(plan.filter((g) => g.principal === p && g.operations.includes('read'))).toEqual([]);
    }
  });

  it('given the plan, when anyone but the identity-matcher writes link decisions, then nothing allows it (an adapter could otherwise link two patients)', () => {
    const writers = new Set(
      plan
        .filter((g) => g.resource === 'topic' && g.operations.includes('write'))
        .filter((g) => allowed(plan, g.principal, 'topic', suffixed('clinical.identity.v1')).has('write'))
        .map((g) => g.principal),
    );
    expect([...writers].sort()).toEqual(['hub', 'identity-matcher']);
  });

  it('given the plan, then no service may create topics or touch the cluster; only the operator may', () => {
    const creators = plan.filter((g) => g.operations.includes('create') || g.resource === 'cluster');
    expect(new Set(creators.map((g) => g.principal))).toEqual(new Set(['hub']));
  });

  it('given the plan, then every grant says why, and the bindings are one per operation, allow, any host', () => {
    expect(plan.every((g) => g.why.length > 10)).toBe(true);
    const bindings = aclBindings(plan);
    expect(bindings).toHaveLength(plan.reduce((n, g) => n + g.operations.length, 0));
    expect(bindings[0]).toMatchObject({ principal: 'User:adapter-hl7', host: '*' });
    expect(new Set(bindings.map((b) => b.permissionType)).size).toBe(1);
  });

  it('given a suffix, then every topic the services use is created up front under it', () => {
    const names = secureTopicDefinitions(suffixed).map((t) => t.name);
    for (const t of TOPIC_CATALOG) expect(names).toContain(suffixed(t.name));
    expect(names).toEqual(
      expect.arrayContaining([
        suffixed('hub.audit.v1'),
        suffixed('hub.dlq.audit'),
        suffixed('hub.dlq.projector-portal'),
        suffixed('hub.dlq.delivery'),
        suffixed('hl7.raw.v1'),
      ]),
    );
  });
});

describe('the secure profile material and broker properties', () => {
  let dir: string;
  let m: SecureMaterial;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hub-secure-'));
    m = await ensureSecureMaterial(join(dir, 'secure'));
  }, 60_000);
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('given the material, then every password file is owner-only and a second call keeps them', async () => {
    for (const p of CLIENT_PRINCIPALS) {
      expect((await stat(m.passwordFile(p))).mode & 0o777).toBe(0o600);
      expect((await readFile(m.passwordFile(p), 'utf8')).trim()).toBe(m.passwords[p]);
    }
    expect((await stat(m.brokerKeystore)).mode & 0o777).toBe(0o600);
    const again = await ensureSecureMaterial(join(dir, 'secure'));
    expect(again.passwords).toEqual(m.passwords);
  });

  it('given the material, then the SCRAM bootstrap names every principal and the broker', () => {
    const args = scramFormatArgs(m.passwords);
    expect(args.filter((a) => a === '--add-scram')).toHaveLength(CLIENT_PRINCIPALS.length + 1);
    expect(args).toContain(
      `SCRAM-SHA-512=[name=${BROKER_PRINCIPAL},password=${m.passwords[BROKER_PRINCIPAL]}]`,
    );
  });

  it('given the material, then the registry file has every principal as a digest, deletes for the operator only, mode 0600', async () => {
    const file = await writeRegistrySecurity(m);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const text = await readFile(file, 'utf8');
    for (const p of CLIENT_PRINCIPALS) {
      expect(text).not.toContain(m.passwords[p]);
      const digest = createHash('sha512').update(`${p}:Quarkus:${m.passwords[p]}`).digest('hex');
      expect(text).toContain(`quarkus.security.users.embedded.users.${p}=${digest}\n`);
    }
    expect(text).toContain(`quarkus.security.users.embedded.roles.hub=${REGISTRY_ROLES.admin}\n`);
    expect(text).toContain(`quarkus.security.users.embedded.roles.api=${REGISTRY_ROLES.writer}\n`);
    expect(text).toContain('quarkus.http.auth.permission.other.policy=admin\n');
    expect(text).toContain(`quarkus.http.auth.policy.admin.roles-allowed=${REGISTRY_ROLES.admin}\n`);
    expect(text).not.toMatch(/plain-text=true/);
  });

  it('given the secure profile, then the broker listens only on SASL_SSL and mTLS, with the authorizer and no open default', () => {
    const cfg = stackConfig('secure', { HUB_CACHE_DIR: '/cache', HUB_SECURE_DATA_DIR: dir });
    const props = kafkaServerProperties(cfg, m);
    expect(props).toContain('listeners=CLIENT://127.0.0.1:39092,CONTROLLER://127.0.0.1:39093');
    expect(props).toContain('listener.security.protocol.map=CLIENT:SASL_SSL,CONTROLLER:SSL');
    expect(props).toContain('listener.name.controller.ssl.client.auth=required');
    expect(props).toContain('authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer');
    expect(props).toContain('allow.everyone.if.no.acl.found=false');
    expect(props).toMatch(/^super\.users=User:kafka-broker$/m);
    expect(props).not.toMatch(/PLAINTEXT/);
    expect(cfg.kafka.secureDir).toBe(join(dir, 'secure'));
  });

  it('given a principal, then its env file gives the agreed variables, the password as a file, mode 0600', async () => {
    expect(clientSecurityEnv(m, 'api')).toEqual({
      KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
      KAFKA_SSL_CA_FILE: m.caFile,
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: 'api',
      KAFKA_SASL_PASSWORD_FILE: m.passwordFile('api'),
      SCHEMA_REGISTRY_USERNAME: 'api',
      SCHEMA_REGISTRY_PASSWORD_FILE: m.passwordFile('api'),
    });
    const files = await writeClientEnvFiles(m, { KAFKA_BROKERS: '127.0.0.1:39092' });
    const text = await readFile(files['projector-portal'], 'utf8');
    expect(text).toContain('KAFKA_SASL_USERNAME=projector-portal\n');
    expect(text).not.toContain(m.passwords['projector-portal']);
    expect((await stat(files['projector-portal'])).mode & 0o777).toBe(0o600);
  });
});
