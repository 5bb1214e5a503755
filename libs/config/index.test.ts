import { describe, expect, it } from 'vitest';
import type { HubError } from '../errors/index.js';
import { kafkaEnv, loadConfig, z } from './index.js';

describe('loadConfig', () => {
  const schema = z.object({ ...kafkaEnv });
  it('applies defaults and splits broker lists', () => {
    expect(loadConfig(schema, { KAFKA_BROKERS: 'a:1, b:2' }).KAFKA_BROKERS).toEqual(['a:1', 'b:2']);
  });
  it('lists every problem at once, by variable name, without echoing values', () => {
    try {
      loadConfig(schema, { KAFKA_BROKERS: 'nope', SCHEMA_REGISTRY_URL: 'secret-not-a-url' });
      expect.unreachable();
    } catch (err) {
      expect((err as HubError).code).toBe('HUB_CONFIG_INVALID');
      expect((err as HubError).message).toMatch(/KAFKA_BROKERS/);
      expect((err as HubError).message).toMatch(/SCHEMA_REGISTRY_URL/);
      expect((err as HubError).message).not.toContain('secret-not-a-url');
    }
  });
});
