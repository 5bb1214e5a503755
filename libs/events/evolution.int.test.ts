import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endpoints, uniqueId } from '../../test/support/harness.js';
import { checkCompatibility } from './contracts.js';
import { DEFAULT_COMPATIBILITY, EVENT_CONTRACTS, EVENT_TYPES, type EventType } from './index.js';
import { createRegistryClient, type RegistryClient } from './registry.js';
import { composeAtRevision, schemaRevisions } from './schema-source.js';

/**
 * The registry's own verdict on the contract's history (Apicurio,
 * Confluent-compatible API): for each event type, every schema version git
 * history holds is registered oldest first under a subject of this test with
 * FULL_TRANSITIVE, then the current one. Each must be accepted: FULL
 * TRANSITIVE means every version reads every other, which is what lets
 * producers and consumers upgrade in any order and a late subscriber replay
 * the whole log. (evolution.test.ts checks the same versions value by value.)
 */

const REPO = join(dirname(fileURLToPath(import.meta.url)), '../..');

/** Distinct schemas of each event type, oldest first, as git history holds them. */
function historyByType(): Map<EventType, object[]> {
  const out = new Map<EventType, object[]>();
  for (const rev of schemaRevisions(REPO).reverse()) {
    for (const e of composeAtRevision(REPO, rev)) {
      const type = EVENT_TYPES.find((t) => t === e.type);
      if (!type) throw new Error(`${e.type} (at ${rev}) is no longer an event type`);
      const versions = out.get(type) ?? [];
      const last = versions.at(-1);
      if (!last || JSON.stringify(last) !== JSON.stringify(e.schema)) versions.push(e.schema);
      out.set(type, versions);
    }
  }
  return out;
}

describe('the contract history in the real registry under FULL_TRANSITIVE', () => {
  let registry: RegistryClient;
  const suffix = uniqueId('evo');
  const subjects: string[] = [];
  const history = historyByType();
  const subjectOf = (type: EventType) =>
    `${EVENT_CONTRACTS[type].topic}.${suffix}-${EVENT_CONTRACTS[type].fullName}`;

  beforeAll(() => {
    registry = createRegistryClient(endpoints().registryUrl);
  });
  afterAll(async () => {
    for (const s of subjects) await registry.deleteSubject(s).catch(() => undefined);
  });

  it('given every historical version registered oldest first, when the current schema follows, then the registry accepts every one of them', async () => {
    // Given a history in which the contract did change
    expect([...history.values()].some((v) => v.length > 1)).toBe(true);
    for (const type of EVENT_TYPES) {
      const subject = subjectOf(type);
      subjects.push(subject);
      const versions = [...(history.get(type) ?? [])];
      const current = EVENT_CONTRACTS[type].schema;
      if (JSON.stringify(versions.at(-1)) !== JSON.stringify(current)) versions.push(current);
      // When each version is registered in order (a refused one throws HUB_SCHEMA_INCOMPATIBLE)
      for (const schema of versions) await registry.register(subject, schema, DEFAULT_COMPATIBILITY);
      // Then the subject holds them all, under the catalog's compatibility
      expect(await registry.versions(subject), type).toHaveLength(versions.length);
      expect(await registry.getCompatibility(subject)).toBe('FULL_TRANSITIVE');
    }
  });

  it('when the current schemas are checked against the registered history, then the registry and the local Avro resolution agree they are compatible', async () => {
    const findings = await checkCompatibility(
      registry,
      EVENT_TYPES.map((type) => ({
        type,
        fullName: EVENT_CONTRACTS[type].fullName,
        topic: '',
        subject: subjectOf(type),
        schema: EVENT_CONTRACTS[type].schema,
        file: '',
      })),
    );
    expect(findings.filter((f) => f.newSubject)).toEqual([]);
    expect(findings.filter((f) => !f.compatible)).toEqual([]);
  });
});
