import { describe, expect, it } from 'vitest';
import { HUB_SCOPES, type Principal } from '../../libs/auth/scopes.js';
import { createSessionStore, csrfMatches, mayDecideIdentity, rolesOf } from './session.js';

const who = (scopes: readonly string[], expiresAt?: number): Principal => ({
  subject: 'u1',
  clientId: 'hub-console',
  scopes,
  patient: null,
  ...(expiresAt === undefined ? {} : { expiresAt }),
});

describe('rolesOf: the roles are the API’s scopes', () => {
  it('given the operator scope, then operator; given the identity scopes, then steward; given neither, then no role', () => {
    expect(rolesOf(who([HUB_SCOPES.operator]))).toEqual(['operator']);
    expect(rolesOf(who(['user/Identity.crs']))).toEqual(['steward']);
    expect(rolesOf(who(['system/Identity.rs']))).toEqual(['steward']);
    expect(rolesOf(who([HUB_SCOPES.operator, 'user/Identity.crs']))).toEqual(['operator', 'steward']);
    // neither a patient's scope, nor clinical reads, nor OpenID's own scopes give a console role
    for (const s of [['openid', 'profile'], ['patient/*.rs'], ['user/*.rs'], ['user/Patient.rs'], []])
      expect(rolesOf(who(s)), s.join(' ')).toEqual([]);
  });

  it('given a steward who may only read, then they may not decide; with create, they may', () => {
    expect(mayDecideIdentity(who(['user/Identity.rs']))).toBe(false);
    expect(mayDecideIdentity(who(['user/Identity.crs']))).toBe(true);
  });
});

describe('createSessionStore', () => {
  it('given a new session, then its id and CSRF token are random and distinct, and it is found by its id only', () => {
    const store = createSessionStore();
    const a = store.create(who([HUB_SCOPES.operator]), 60_000);
    const b = store.create(who([HUB_SCOPES.operator]), 60_000);
    expect(a.id).not.toBe(b.id);
    expect(a.csrf).not.toBe(b.csrf);
    expect(a.csrf).not.toBe(a.id);
    expect(Buffer.from(a.id, 'base64url')).toHaveLength(32);
    expect(store.get(a.id)).toBe(a);
    expect(store.get(undefined)).toBeNull();
    expect(store.get(`${a.id}x`)).toBeNull();
  });

  it('given a session, then it ends at its age or at the token’s expiry, whichever comes first', () => {
    const clock = { now: 1_000_000 };
    const store = createSessionStore(() => clock.now);
    const long = store.create(who([HUB_SCOPES.operator], clock.now + 10 * 60_000), 60 * 60_000);
    const short = store.create(who([HUB_SCOPES.operator], clock.now + 60 * 60_000), 5 * 60_000);
    expect(long.expiresAt).toBe(clock.now + 10 * 60_000);
    expect(short.expiresAt).toBe(clock.now + 5 * 60_000);
    clock.now += 5 * 60_000;
    expect(store.get(short.id)).toBeNull();
    expect(store.get(long.id)).toBe(long);
    clock.now += 5 * 60_000;
    expect(store.get(long.id)).toBeNull();
    expect(store.size()).toBe(0);
  });

  it('given expired sessions nobody asks for, then the next sign-in sweeps them (the map stays bounded)', () => {
    const clock = { now: 0 };
    const store = createSessionStore(() => clock.now);
    for (let i = 0; i < 50; i++) store.create(who([HUB_SCOPES.operator]), 1000);
    clock.now = 2000;
    store.create(who([HUB_SCOPES.operator]), 1000);
    expect(store.size()).toBe(1);
  });

  it('given destroy, then the session is gone', () => {
    const store = createSessionStore();
    const s = store.create(who([HUB_SCOPES.operator]), 60_000);
    store.destroy(s.id);
    store.destroy(undefined);
    expect(store.get(s.id)).toBeNull();
  });
});

describe('csrfMatches', () => {
  it('given the session’s token, then it matches; anything else (other, shorter, longer, not a string) does not', () => {
    const s = createSessionStore().create(who([HUB_SCOPES.operator]), 60_000);
    expect(csrfMatches(s, s.csrf)).toBe(true);
    for (const v of [`${s.csrf}x`, s.csrf.slice(1), '', s.id, undefined, null, 42, [s.csrf]])
      expect(csrfMatches(s, v), String(v)).toBe(false);
  });
});
