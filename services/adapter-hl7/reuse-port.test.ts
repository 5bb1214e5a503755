import { describe, expect, it } from 'vitest';
import { reusePortUnsupported } from './reuse-port.js';

describe('reusePortUnsupported', () => {
  it('given a runtime that reads reusePort on an SO_REUSEPORT kernel, then nothing stands in the way', () => {
    expect(reusePortUnsupported('24.22.3', 'linux')).toBeNull();
    expect(reusePortUnsupported('22.12.0', 'linux')).toBeNull();
    expect(reusePortUnsupported('23.1.0', 'freebsd')).toBeNull();
  });

  it('given a runtime that ignores reusePort, then the reason names the version needed', () => {
    expect(reusePortUnsupported('20.20.2', 'linux')).toMatch(
      /Node 20\.20\.2 ignores reusePort \(needs 22\.12\+/,
    );
    expect(reusePortUnsupported('22.11.0', 'linux')).toMatch(/ignores reusePort/);
    expect(reusePortUnsupported('23.0.0', 'linux')).toMatch(/ignores reusePort/);
  });

  it('given a kernel without SO_REUSEPORT for Node, then the reason names the platform', () => {
    expect(reusePortUnsupported('24.22.3', 'darwin')).toBe('SO_REUSEPORT is not available on darwin');
    expect(reusePortUnsupported('24.22.3', 'win32')).toBe('SO_REUSEPORT is not available on win32');
  });
});
