import { describe, expect, it } from 'vitest';
import { componentDetail } from './status.js';

describe('componentDetail', () => {
  it('tells ours, a stranger, a stopped and a hung component apart', () => {
    expect(componentDetail(true, 42)).toBe('ready');
    expect(componentDetail(true, null)).toBe('answering, not started by this tool');
    expect(componentDetail(false, null)).toBe('stopped');
    expect(componentDetail(false, 42)).toBe('process alive, not answering');
  });
});
