import { describe, expect, it } from 'vitest';
import { brokersOf, upOutput } from './infra.js';

describe('hub infra --brokers', () => {
  it('is 1 by default and 3 for the cluster stack on the dev profile', () => {
    expect(brokersOf({ profile: 'dev' })).toBe(1);
    expect(brokersOf({ profile: 'dev', brokers: '3' })).toBe(3);
  });

  it('refuses other sizes and the cluster on the test or secure profile', () => {
    expect(() => brokersOf({ profile: 'dev', brokers: '2' })).toThrow(/--brokers must be 1 or 3/);
    expect(() => brokersOf({ profile: 'test', brokers: '3' })).toThrow(/dev stack of its own/);
    expect(() => brokersOf({ profile: 'dev', secure: true, brokers: '3' })).toThrow(/dev stack of its own/);
  });
});

describe('hub infra up output', () => {
  const ep = { registryUrl: 'http://r', databaseUrl: 'postgres://d', secure: null };

  it('lists every broker and sets the cluster topic environment for the 3-broker stack', () => {
    const out = upOutput({
      ...ep,
      kafka: { brokers: ['127.0.0.1:19092', '127.0.0.1:19093', '127.0.0.1:19094'] },
    });
    expect(out).toContain('KAFKA_BROKERS=127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094\n');
    expect(out).toContain('KAFKA_TOPIC_ENV=cluster\n');
  });

  it('prints the single-node stack as before', () => {
    expect(upOutput({ ...ep, kafka: { brokers: ['127.0.0.1:9092'] } })).toBe(
      'KAFKA_BROKERS=127.0.0.1:9092\nSCHEMA_REGISTRY_URL=http://r\nDATABASE_URL=postgres://d\n',
    );
  });
});
