import { describe, expect, it } from 'vitest';
import {
  HUB_SCOPES,
  decide,
  denyStatus,
  identityPermission,
  parseScope,
  type IdentityInteraction,
  type Principal,
} from './scopes.js';

const patientA: Principal = { subject: 'pa', clientId: 'portal-app', scopes: ['patient/*.rs'], patient: 'A' };
const staff: Principal = { subject: 'nurse', clientId: 'ehr', scopes: ['user/*.rs'], patient: null };
const billing: Principal = {
  subject: 'svc',
  clientId: 'billing',
  scopes: [HUB_SCOPES.billing],
  patient: null,
};
const analytics: Principal = { subject: 'bi', clientId: 'bi', scopes: [HUB_SCOPES.analytics], patient: null };

describe('parseScope', () => {
  it('given SMART v2 and v1 scopes, when parsed, then permissions are letters', () => {
    expect([...parseScope('patient/*.rs')!.perms].sort()).toEqual(['r', 's']);
    expect([...parseScope('user/Observation.read')!.perms].sort()).toEqual(['r', 's']);
    expect(parseScope('system/billing.read')!.resource).toBe('billing');
  });
  it('given non-resource or malformed scopes, when parsed, then they are ignored', () => {
    expect(parseScope('openid')).toBeNull();
    expect(parseScope('launch/patient')).toBeNull();
    expect(parseScope('patient/*.rr')).toBeNull();
    expect(parseScope('admin/*.rs')).toBeNull();
  });
});

describe('decide', () => {
  it('given a patient token, when it reads its own record, then it is allowed and confined to it', () => {
    const d = decide(patientA, {
      kind: 'fhir',
      interaction: 'read',
      resourceType: 'Patient',
      patientId: 'A',
    });
    expect(d).toMatchObject({ allow: true, patientId: 'A' });
  });
  it('given a patient token, when it asks for another patient, then it is denied (mismatch)', () => {
    expect(
      decide(patientA, { kind: 'fhir', interaction: 'read', resourceType: 'Patient', patientId: 'B' }),
    ).toEqual({
      allow: false,
      reason: 'patient-mismatch',
    });
    expect(decide(patientA, { kind: 'everything', patientId: 'B' })).toEqual({
      allow: false,
      reason: 'patient-mismatch',
    });
    expect(
      decide(patientA, { kind: 'fhir', interaction: 'search', resourceType: 'Observation', patientId: 'B' }),
    ).toEqual({ allow: false, reason: 'patient-mismatch' });
  });
  it('given a patient token, when it searches without a patient, then the search is confined to its patient', () => {
    expect(
      decide(patientA, { kind: 'fhir', interaction: 'search', resourceType: 'Observation', patientId: null }),
    ).toMatchObject({ allow: true, patientId: 'A' });
  });
  it('given a patient scope without a patient claim, when used, then nothing is granted', () => {
    const p = { ...patientA, patient: null };
    expect(decide(p, { kind: 'fhir', interaction: 'read', resourceType: 'Patient', patientId: 'A' })).toEqual(
      {
        allow: false,
        reason: 'no-patient-context',
      },
    );
  });
  it('given a narrow patient scope, when another type is searched, then it is denied', () => {
    const p = { ...patientA, scopes: ['patient/Observation.rs'] };
    expect(
      decide(p, { kind: 'fhir', interaction: 'search', resourceType: 'Encounter', patientId: null }),
    ).toMatchObject({ allow: false, reason: 'insufficient-scope' });
    // $everything needs the Patient itself.
    expect(decide(p, { kind: 'everything', patientId: 'A' })).toMatchObject({ allow: false });
  });
  it('given a read-only scope, when it searches, then it is denied (r is not s)', () => {
    const p = { ...patientA, scopes: ['patient/*.r'] };
    expect(
      decide(p, { kind: 'fhir', interaction: 'search', resourceType: 'Observation', patientId: 'A' }),
    ).toMatchObject({ allow: false, reason: 'insufficient-scope' });
  });
  it('given staff, when any patient is read, then it is allowed; a search must name the patient', () => {
    expect(decide(staff, { kind: 'everything', patientId: 'B' })).toMatchObject({
      allow: true,
      patientId: 'B',
    });
    expect(
      decide(staff, { kind: 'fhir', interaction: 'search', resourceType: 'Observation', patientId: null }),
    ).toEqual({ allow: false, reason: 'patient-required' });
  });
  it('given billing and analytics tokens, when they use portal routes, then they are denied', () => {
    for (const p of [billing, analytics]) {
      expect(decide(p, { kind: 'everything', patientId: 'A' })).toMatchObject({
        allow: false,
        reason: 'insufficient-scope',
      });
      expect(decide(p, { kind: 'admin' })).toMatchObject({ allow: false });
    }
    expect(decide(billing, { kind: 'billing' })).toMatchObject({ allow: true });
    expect(decide(analytics, { kind: 'billing' })).toMatchObject({ allow: false });
    expect(decide(analytics, { kind: 'analytics' })).toMatchObject({ allow: true });
    expect(decide(patientA, { kind: 'analytics' })).toMatchObject({ allow: false });
  });
  it('given no principal, when anything is asked, then it is unauthenticated (401)', () => {
    const d = decide(null, { kind: 'analytics' });
    expect(d).toEqual({ allow: false, reason: 'unauthenticated' });
    expect(denyStatus('unauthenticated')).toBe(401);
    expect(denyStatus('patient-mismatch')).toBe(403);
  });
});

describe('decide: subscriptions', () => {
  const token = (...scopes: string[]): Principal => ({
    subject: 'int',
    clientId: 'int',
    scopes,
    patient: null,
  });
  const ask = (p: Principal, interaction: 'read' | 'search' | 'create' | 'update' | 'delete') =>
    decide(p, { kind: 'subscription', interaction }).allow;

  it('given system/Subscription.read or .write, when subscriptions are read or changed, then each grants its own', () => {
    const reader = token('system/Subscription.read');
    const writer = token('system/Subscription.write');
    expect(['read', 'search'].map((i) => ask(reader, i as 'read'))).toEqual([true, true]);
    expect(['create', 'update', 'delete'].map((i) => ask(reader, i as 'create'))).toEqual([
      false,
      false,
      false,
    ]);
    expect(['create', 'update', 'delete'].map((i) => ask(writer, i as 'create'))).toEqual([true, true, true]);
    expect(ask(writer, 'read')).toBe(false);
    // SMART v2 letters, one by one.
    expect(ask(token('system/Subscription.rs'), 'search')).toBe(true);
    expect(ask(token('system/Subscription.c'), 'update')).toBe(false);
  });

  it('given wildcards, person scopes or other hub scopes, when subscriptions are asked for, then denied (403)', () => {
    for (const scopes of [
      ['system/*.cruds'],
      ['system/*.rs', 'system/*.cud'],
      ['user/Subscription.cruds'],
      ['patient/Subscription.cruds'],
      [HUB_SCOPES.admin],
      [HUB_SCOPES.billing],
    ]) {
      const d = decide(token(...scopes), { kind: 'subscription', interaction: 'read' });
      expect(d, scopes.join(' ')).toEqual({ allow: false, reason: 'insufficient-scope' });
      expect(denyStatus('insufficient-scope')).toBe(403);
    }
    expect(decide(null, { kind: 'subscription', interaction: 'read' })).toEqual({
      allow: false,
      reason: 'unauthenticated',
    });
  });
});

describe('decide: identity (master patient index steward)', () => {
  const token = (...scopes: string[]): Principal => ({
    subject: 'steward-1',
    clientId: 'mpi-console',
    scopes,
    patient: null,
  });
  const ask = (p: Principal, interaction: IdentityInteraction) =>
    decide(p, { kind: 'identity', interaction }).allow;
  const all: IdentityInteraction[] = ['read', 'search', 'create'];

  it('given Identity.read or .write in user or system context, when the worklist is read or a decision made, then each grants its own', () => {
    for (const ctx of ['user', 'system']) {
      const reader = token(`${ctx}/Identity.read`);
      const writer = token(`${ctx}/Identity.write`);
      expect(
        all.map((i) => ask(reader, i)),
        ctx,
      ).toEqual([true, true, false]);
      expect(
        all.map((i) => ask(writer, i)),
        ctx,
      ).toEqual([false, false, true]);
    }
    // SMART v2 letters, one by one.
    expect(all.map((i) => ask(token('user/Identity.rs'), i))).toEqual([true, true, false]);
    expect(all.map((i) => ask(token('system/Identity.c'), i))).toEqual([false, false, true]);
    expect(ask(token('user/Identity.u'), 'create')).toBe(false);
    expect(identityPermission('create')).toBe('c');
  });

  it('given wildcards, patient scopes or other hub scopes, when identity routes are asked for, then denied (403)', () => {
    for (const scopes of [
      ['user/*.rs'],
      ['user/*.cruds'],
      ['system/*.cruds'],
      ['patient/Identity.cruds'],
      ['patient/*.rs'],
      ['system/Subscription.cruds'],
      [HUB_SCOPES.admin],
      [HUB_SCOPES.operator],
    ]) {
      for (const i of all) {
        const d = decide({ ...token(...scopes), patient: 'P1' }, { kind: 'identity', interaction: i });
        expect(d, `${scopes.join(' ')} ${i}`).toEqual({ allow: false, reason: 'insufficient-scope' });
      }
    }
    expect(decide(null, { kind: 'identity', interaction: 'search' })).toEqual({
      allow: false,
      reason: 'unauthenticated',
    });
  });
});
