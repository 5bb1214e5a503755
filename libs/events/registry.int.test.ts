import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endpoints, uniqueId } from '../../test/support/harness.js';
import { HubError } from '../errors/index.js';
import { checkCompatibility, registerAllSchemas } from './contracts.js';
import { EVENT_CONTRACTS } from './index.js';
import { createRegistryClient, type RegistryClient } from './registry.js';

/** Against the real registry (Apicurio, Confluent-compatible API). */
describe('schema registry contracts', () => {
  let registry: RegistryClient;
  const suffix = uniqueId('reg');
  const subjects: string[] = [];
  const base = EVENT_CONTRACTS.PatientRegistered;
  const subject = `${base.topic}.${suffix}-${base.fullName}`;
  const fields = () =>
    structuredClone(base.schema['fields']) as { name: string; type: unknown; default?: unknown }[];

  beforeAll(() => {
    registry = createRegistryClient(endpoints().registryUrl);
  });
  afterAll(async () => {
    for (const s of [...subjects, subject]) await registry.deleteSubject(s).catch(() => undefined);
  });

  it('registers every event under TopicRecordNameStrategy subjects, idempotently, with FULL_TRANSITIVE', async () => {
    const topicFor = (t: keyof typeof EVENT_CONTRACTS) => `${EVENT_CONTRACTS[t].topic}.${suffix}`;
    const first = await registerAllSchemas(registry, { topicFor });
    subjects.push(...first.map((r) => r.subject));
    const second = await registerAllSchemas(registry, { topicFor });
    expect(second.map((r) => r.id)).toEqual(first.map((r) => r.id));
    expect(first).toHaveLength(Object.keys(EVENT_CONTRACTS).length);
    expect(await registry.getCompatibility(first[0]!.subject)).toBe('FULL_TRANSITIVE');
    expect(await registry.versions(first[0]!.subject)).toEqual([1]);
  });

  it('regression: an unregistered subject is reported as not registered, not as the registry being down', async () => {
    const missing = `${base.topic}.${suffix}-never-${base.fullName}`;
    const err = await registry.idOf(missing, base.schema).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HubError);
    expect((err as HubError).code).toBe('HUB_SCHEMA_NOT_REGISTERED');
    expect((err as HubError).retriable).toBe(false);
  });

  it('accepts a compatible change: an added optional field', async () => {
    await registry.register(subject, base.schema, 'FULL_TRANSITIVE');
    const evolved = {
      ...base.schema,
      fields: [...fields(), { name: 'preferredPharmacy', type: ['null', 'string'], default: null }],
    };
    const [finding] = await checkCompatibility(registry, [
      { type: 'PatientRegistered', fullName: base.fullName, topic: '', subject, schema: evolved, file: '' },
    ]);
    expect(finding?.compatible).toBe(true);
    await registry.register(subject, evolved, 'FULL_TRANSITIVE');
    expect(await registry.versions(subject)).toEqual([1, 2]);
  });

  it('refuses an added required field (old events lack it), with a readable reason', async () => {
    const addedRequired = { ...base.schema, fields: [...fields(), { name: 'ssn', type: 'string' }] };
    const [finding] = await checkCompatibility(registry, [
      {
        type: 'PatientRegistered',
        fullName: base.fullName,
        topic: '',
        subject,
        schema: addedRequired,
        file: '',
      },
    ]);
    expect(finding?.compatible).toBe(false);
    expect(finding?.problems.join(' ')).toMatch(/ssn/);
    await expect(registry.register(subject, addedRequired, 'FULL_TRANSITIVE')).rejects.toMatchObject({
      code: 'HUB_SCHEMA_INCOMPATIBLE',
    });
  });

  it('refuses a removed required field (consumers not yet upgraded still need it)', async () => {
    const removed = { ...base.schema, fields: fields().filter((f) => f.name !== 'demographics') };
    const [finding] = await checkCompatibility(registry, [
      { type: 'PatientRegistered', fullName: base.fullName, topic: '', subject, schema: removed, file: '' },
    ]);
    expect(finding?.compatible).toBe(false);
    expect(finding?.problems.join(' ')).toMatch(/old readers cannot read new events.*demographics/);
    const err = await registry.register(subject, removed, 'FULL_TRANSITIVE').catch((e: unknown) => e);
    expect((err as HubError).code).toBe('HUB_SCHEMA_INCOMPATIBLE');
  });

  it('refuses a changed field type, naming the field, and registers nothing', async () => {
    const retyped = {
      ...base.schema,
      fields: fields().map((f) => (f.name === 'patientId' ? { ...f, type: 'long' } : f)),
    };
    const err = await registry.register(subject, retyped, 'FULL_TRANSITIVE').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HubError);
    expect((err as HubError).code).toBe('HUB_SCHEMA_INCOMPATIBLE');
    expect((err as HubError).message).toMatch(/incompatible/i);
    expect((err as HubError).message).toMatch(/fields\/1|patientId|LONG|STRING/i);
    expect(await registry.versions(subject)).toEqual([1, 2]);
  });
});
