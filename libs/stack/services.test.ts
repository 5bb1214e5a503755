import { describe, expect, it } from 'vitest';
import { SECURE_PORT_OFFSET, SERVICES, servicesFor, withPortOffset } from './services.js';
import { SERVICE_PRINCIPALS } from './secure.js';

describe('servicesFor', () => {
  it('gives the dev profile the dev ports unchanged', () => {
    expect(servicesFor('dev')).toBe(SERVICES);
  });

  it("moves every listener of the secure profile up by the offset, clear of the dev ports, the stacks' ports and the ephemeral range", () => {
    // given the secure profile's services
    const secure = servicesFor('secure');
    // when their ports are listed
    const ports = secure.flatMap((s) => [
      s.httpPort,
      ...(s.env?.['MLLP_PORT'] ? [Number(s.env['MLLP_PORT'])] : []),
    ]);
    const devPorts = SERVICES.flatMap((s) => [s.httpPort, Number(s.env?.['MLLP_PORT'] ?? 0)]);
    // then each is 20 000 above its dev port, none is a dev or stack port, and all are below 32768
    expect(secure.map((s) => s.httpPort)).toEqual(SERVICES.map((s) => s.httpPort + SECURE_PORT_OFFSET));
    expect(secure.find((s) => s.name === 'adapter-hl7')?.env?.['MLLP_PORT']).toBe('22575');
    expect(new Set(ports).size).toBe(ports.length);
    const stackPorts = [9092, 9093, 8081, 29092, 29093, 28081, 39092, 39093, 38081];
    for (const p of ports) expect([...devPorts, ...stackPorts]).not.toContain(p);
    for (const p of ports) expect(p).toBeLessThan(32768);
  });

  it('names every service a principal of the secure profile, so each gets its own credentials', () => {
    expect(
      servicesFor('secure')
        .map((s) => s.name)
        .sort(),
    ).toEqual([...SERVICE_PRINCIPALS].sort());
  });
});

describe('the console on each profile', () => {
  it('runs with the development sign-in and plain-http cookies on the dev hub, and without the development sign-in on the secure one', () => {
    // given the console as `hub up` and `hub up --secure` run it
    const dev = servicesFor('dev').find((s) => s.name === 'console');
    const secure = servicesFor('secure').find((s) => s.name === 'console');
    // then the dev hub signs in with the local key on 8110
    expect(dev?.httpPort).toBe(8110);
    expect(dev?.env).toEqual({ CONSOLE_DEV_LOGIN: 'true', CONSOLE_SECURE_COOKIES: 'false' });
    expect(dev?.endpoints('http://127.0.0.1:8110', dev.env ?? {})).toMatch(/development sign-in/);
    // and the secure hub turns the development sign-in off explicitly (a shell's variable cannot win)
    expect(secure?.httpPort).toBe(28110);
    expect(secure?.env?.['CONSOLE_DEV_LOGIN']).toBe('false');
    expect(secure?.endpoints('http://127.0.0.1:28110', secure.env ?? {})).toMatch(/CONSOLE_OIDC_ISSUER only/);
  });
});

describe('withPortOffset', () => {
  it('keeps the other environment and says the moved MLLP port in the endpoints', () => {
    // given a service with an MLLP listener
    const hl7 = SERVICES.find((s) => s.name === 'adapter-hl7');
    if (!hl7) throw new Error('adapter-hl7 missing');
    // when it is moved up
    const moved = withPortOffset(hl7, 100);
    // then its host is kept and its endpoints name the new ports
    expect(moved.env).toEqual({ MLLP_HOST: '127.0.0.1', MLLP_PORT: '2675' });
    expect(moved.endpoints('http://127.0.0.1:8192', moved.env ?? {})).toBe(
      'mllp://127.0.0.1:2675  (http://127.0.0.1:8192/health /ready /metrics)',
    );
  });
});
