import { describe, expect, it } from 'vitest';
import { fakeApiPerTest } from '../../../test/support/api.js';
import { ACCESS_MATRIX } from './admin.js';

const startApi = fakeApiPerTest();

describe('admin routes', () => {
  it("given an admin, when a patient's audit trail is read, then that read is itself audited as about the patient", async () => {
    const asked: unknown[] = [];
    const api = await startApi({ admin: { auditEvents: (q) => (asked.push(q), Promise.resolve([])) } });
    const r = await api.get('/admin/audit/events?patient=P2&_count=5', 'admin');
    expect(r.statusCode).toBe(200);
    expect(asked).toEqual([{ limit: 5, patientId: 'P2' }]);
    expect(api.audits[0]!.entity?.[0]?.what?.reference).toBe('Patient/P2');
  });

  it('given an admin, when access is listed, then the scope matrix and the consumer groups', async () => {
    const api = await startApi({
      admin: {
        clinicalReaders: () =>
          Promise.resolve([{ groupId: 'g1', state: 'Stable', members: 1, topics: ['t'] }]),
        verifyAudit: () => Promise.resolve({ ok: true, rows: 0, lastHash: '0'.repeat(64) }),
      },
    });
    const r = JSON.parse((await api.get('/admin/access', 'admin')).body) as Record<string, unknown>;
    expect(r).toEqual({
      api: ACCESS_MATRIX,
      kafkaConsumers: [{ groupId: 'g1', state: 'Stable', members: 1, topics: ['t'] }],
    });
    expect((await api.get('/admin/audit/verify', 'admin')).statusCode).toBe(200);
  });

  it('given a chain broken on its first keyed row, when verified over the API, then seq, reason and the wrong-key hint come back', async () => {
    const api = await startApi({
      admin: {
        verifyAudit: () =>
          Promise.resolve({
            ok: false as const,
            rows: 3,
            brokenAt: 3,
            reason: 'hash-mismatch' as const,
            firstKeyed: true as const,
          }),
      },
    });
    const r = await api.get('/admin/audit/verify', 'admin');
    expect(r.statusCode).toBe(200);
    expect(JSON.parse(r.body)).toEqual({
      ok: false,
      rows: 3,
      brokenAt: 3,
      reason: 'hash-mismatch',
      firstKeyed: true,
    });
  });

  it('given other tokens or bad parameters, when called, then 401/403 and 400 before any read', async () => {
    const api = await startApi();
    expect((await api.get('/admin/audit/verify')).statusCode).toBe(401);
    for (const kind of ['patient', 'staff', 'billing', 'analytics'] as const) {
      expect((await api.get('/admin/access', kind)).statusCode, kind).toBe(403);
    }
    expect((await api.get('/admin/audit/events?_count=501', 'admin')).statusCode).toBe(400);
    expect((await api.get('/admin/audit/events?before=0', 'admin')).statusCode).toBe(400);
  });
});
