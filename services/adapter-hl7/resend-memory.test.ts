import { describe, expect, it } from 'vitest';
import { ResendMemory } from './resend-memory.js';
import type { Result } from './result.js';

const settled = () => new Promise((r) => setTimeout(r, 0));

describe('ResendMemory', () => {
  it('given writes that landed, when over capacity, then the oldest key is forgotten first', async () => {
    const m = new ResendMemory(2);
    for (const k of ['a', 'b', 'c']) m.track(k, Promise.resolve<Result>({ disposition: 'accepted' }));
    await settled();
    expect(['a', 'b', 'c'].map((k) => m.accepted(k))).toEqual([false, true, true]);
  });

  it('given a write still on its way, when asked, then it is pending until it settles', async () => {
    const m = new ResendMemory(10);
    let land!: (r: Result) => void;
    const write = new Promise<Result>((resolve) => (land = resolve));
    m.track('k', write);
    expect(m.pending('k')).toBe(write);
    expect(m.accepted('k')).toBe(false);
    land({ disposition: 'accepted' });
    await settled();
    expect(m.pending('k')).toBeUndefined();
    expect(m.accepted('k')).toBe(true);
  });

  it('given a write that was refused or failed, when it settles, then it is not remembered', async () => {
    const m = new ResendMemory(10);
    m.track('r', Promise.resolve<Result>({ disposition: 'rejected' }));
    m.track('f', Promise.reject(new Error('lost')));
    await settled();
    expect([m.accepted('r'), m.accepted('f'), m.pending('f')]).toEqual([false, false, undefined]);
  });

  it('given capacity 0, when a write lands, then nothing is remembered', async () => {
    const m = new ResendMemory(0);
    m.track('a', Promise.resolve<Result>({ disposition: 'accepted' }));
    await settled();
    expect(m.accepted('a')).toBe(false);
  });
});
