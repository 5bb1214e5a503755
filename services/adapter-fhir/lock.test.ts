import { describe, expect, it } from 'vitest';
import { KeyedLock } from './lock.js';

describe('KeyedLock', () => {
  it('given two holders of one key, then the second runs after the first finished', async () => {
    const lock = new KeyedLock();
    const order: string[] = [];
    let releaseFirst!: () => void;
    const first = lock.run(['Patient/1'], async () => {
      order.push('first start');
      await new Promise<void>((r) => (releaseFirst = r));
      order.push('first end');
    });
    const second = lock.run(['Patient/1', 'Encounter/2'], () => {
      order.push('second');
      return Promise.resolve();
    });
    const other = lock.run(['Patient/9'], () => {
      order.push('other key');
      return Promise.resolve();
    });
    await other;
    releaseFirst();
    await Promise.all([first, second]);
    expect(order).toEqual(['first start', 'other key', 'first end', 'second']);
    expect(lock.size).toBe(0);
  });

  it('given a holder that fails, then the key is released', async () => {
    const lock = new KeyedLock();
    await expect(lock.run(['k'], () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(lock.run(['k'], () => Promise.resolve(1))).resolves.toBe(1);
  });
});
