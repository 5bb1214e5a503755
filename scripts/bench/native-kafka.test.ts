import { describe, expect, it } from 'vitest';
import {
  mapNativeError,
  nativeBuildEnv,
  nativeHeaders,
  nativeKafkaDir,
  parseNativeSide,
} from './native-kafka.js';

describe('native Kafka client for the A/B benches', () => {
  it('given a side name, then the batches in flight and linger.ms come from it, and other names are not native', () => {
    expect(parseNativeSide('confluent')).toEqual({ maxInFlight: 1, lingerMs: 0 });
    expect(parseNativeSide('confluent-64-l1')).toEqual({ maxInFlight: 64, lingerMs: 1 });
    expect(parseNativeSide('confluent-l0.5')).toEqual({ maxInFlight: 1, lingerMs: 0.5 });
    expect(parseNativeSide('platformatic-4')).toBeUndefined();
    expect(parseNativeSide('confluent-x')).toBeUndefined();
  });

  it('given kafkajs-style headers, then each value is one single-key header, repeats kept, undefined dropped', () => {
    const raw = Buffer.from('x');
    expect(nativeHeaders({ a: '1', b: ['2', raw], c: undefined })).toEqual([
      { a: '1' },
      { b: '2' },
      { b: raw },
    ]);
    expect(nativeHeaders(undefined)).toBeUndefined();
  });

  it('given the build environment, then it links dynamically, builds from source and uses the running Node headers', () => {
    const env = nativeBuildEnv({ PATH: '/bin' }, '/opt/node-v24/bin/node');
    expect(env).toMatchObject({
      PATH: '/bin',
      CKJS_LINKING: 'dynamic',
      npm_config_build_from_source: 'true',
      npm_config_nodedir: '/opt/node-v24',
    });
    expect(nativeKafkaDir('/home/u')).toBe('/home/u/.cache/clinical-hub/native-kafka-1.10.1');
  });

  it('given librdkafka errors, then timeouts and transport failures are retriable and the rest are not', () => {
    const timedOut = Object.assign(new Error('Local: Message timed out'), { code: -185 });
    const unknownTopic = Object.assign(new Error('Broker: Unknown topic or partition'), { code: 3 });
    expect(mapNativeError(timedOut).retriable).toBe(true);
    expect(mapNativeError(unknownTopic).retriable).toBe(false);
    expect(mapNativeError(Object.assign(new Error('x'), { code: 3, isRetriable: true })).retriable).toBe(
      true,
    );
  });
});
