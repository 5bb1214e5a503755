import { describe, expect, it } from 'vitest';
import { fakeApiPerTest } from '../../../test/support/api.js';
import type { Account } from '../readers/billing.js';

const startApi = fakeApiPerTest();

const account = (id: string): Account => ({
  encounterId: id,
  patientId: 'P2',
  encounterClass: 'IMP',
  admittedAt: '2026-03-02T08:00:00.000Z',
  dischargedAt: null,
  status: 'open',
  payer: null,
  coverage: null,
});

describe('billing routes', () => {
  it('given accounts, when paged, then the next link keeps the filter and moves the offset', async () => {
    const asked: unknown[] = [];
    const api = await startApi({
      billing: {
        accounts: (status, count, offset) => {
          asked.push({ status, count, offset });
          return Promise.resolve({ total: 3, items: [account('E1'), account('E2')] });
        },
      },
    });
    const r = await api.get('/billing/accounts?status=open&_count=2', 'billing');
    expect(r.statusCode).toBe(200);
    expect(r.headers['cache-control']).toBe('no-store');
    const body = JSON.parse(r.body) as {
      total: number;
      next: string | null;
      items: { encounterId: string }[];
    };
    expect(body.total).toBe(3);
    expect(body.next).toBe('https://api.test/billing/accounts?status=open&_count=2&_offset=2');
    expect(body.items.map((a) => a.encounterId)).toEqual(['E1', 'E2']);
    expect(asked).toEqual([{ status: 'open', count: 2, offset: 0 }]);
    // Aggregate lists name no one patient.
    expect(api.audits[0]!.entity?.some((e) => e.what?.reference?.startsWith('Patient/'))).toBe(false);
  });

  it("given an account's charges, when read, then the audit names the account's patient; unknown is 404", async () => {
    const api = await startApi({
      billing: {
        charges: (id) =>
          Promise.resolve(id === 'E1' ? { account: account('E1'), patientId: 'P2', charges: [] } : null),
      },
    });
    const r = await api.get('/billing/accounts/E1/charges', 'billing');
    expect(r.statusCode).toBe(200);
    expect(api.audits[0]!.entity?.[0]?.what?.reference).toBe('Patient/P2');
    const missing = await api.get('/billing/accounts/NOPE/charges', 'billing');
    expect(missing.statusCode).toBe(404);
    expect(JSON.parse(missing.body)).toEqual({
      code: 'HUB_NOT_FOUND',
      message: 'no such account',
      retriable: false,
    });
  });

  it('given an account with a primary coverage and an account-level worklist problem, when read, then payer, plan and member id are served and the problem names no line', async () => {
    const covered: Account = {
      ...account('E1'),
      payer: 'Commercial',
      coverage: {
        coverageId: 'C1',
        order: 1,
        payerId: 'ACME01',
        payerName: 'ACME Health',
        planId: 'GOLD',
        planName: 'ACME Gold PPO',
        planType: 'PPO',
        groupNumber: 'G-100',
        groupName: 'Testville Employers',
        memberId: 'M-P2',
        periodStart: '2026-01-01',
        periodEnd: null,
      },
    };
    const api = await startApi({
      billing: {
        charges: () => Promise.resolve({ account: covered, patientId: 'P2', charges: [] }),
        worklist: () =>
          Promise.resolve({
            total: 1,
            items: [
              {
                problem: 'charges_without_coverage',
                lineId: null,
                patientId: 'P3',
                encounterId: 'E3',
                code: null,
              },
            ],
          }),
      },
    });
    const r = await api.get('/billing/accounts/E1/charges', 'billing');
    expect(JSON.parse(r.body)).toMatchObject({
      account: { payer: 'Commercial', coverage: covered.coverage },
    });
    const w = await api.get('/billing/worklist?problem=charges_without_coverage', 'billing');
    expect(w.statusCode).toBe(200);
    expect(JSON.parse(w.body)).toMatchObject({
      items: [{ problem: 'charges_without_coverage', lineId: null, encounterId: 'E3', code: null }],
    });
  });

  it('given other tokens or bad parameters, when called, then 401/403 and 400 as JSON, before any read', async () => {
    const api = await startApi();
    expect((await api.get('/billing/worklist')).statusCode).toBe(401);
    for (const kind of ['patient', 'staff', 'analytics', 'admin'] as const) {
      const r = await api.get('/billing/worklist', kind);
      expect(r.statusCode, kind).toBe(403);
      expect(JSON.parse(r.body)).toMatchObject({ code: 'HUB_FORBIDDEN', retriable: false });
    }
    for (const q of ['status=bogus', '__proto__=x', '_count=0', '_offset=-1']) {
      const r = await api.get(`/billing/accounts?${q}`, 'billing');
      expect(r.statusCode, q).toBe(400);
      expect(r.headers['content-type']).toContain('application/json');
    }
    expect((await api.get('/billing/worklist?problem=bogus', 'billing')).statusCode).toBe(400);
  });
});
