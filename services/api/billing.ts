import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Knex } from 'knex';
import { HubError } from '../../libs/errors/index.js';
import { timedRead } from './db.js';
import { jsonErrors } from './schemas.js';
import { COUNT_DEFAULT, COUNT_MAX, OFFSET_MAX } from './search.js';

/**
 * Billing's routes over the billing read model (services/projector-billing):
 * accounts by status, an account's charges (prices joined from the
 * chargemaster), and the billing-accuracy worklist. Identified data: only
 * `system/billing.read`.
 */
const str = { type: 'string' } as const;
const nstr = { type: ['string', 'null'] } as const;
const nint = { type: ['integer', 'null'] } as const;

export const ACCOUNT_STATUSES = ['placeholder', 'open', 'discharged', 'cancelled'] as const;
export const WORKLIST_PROBLEMS = [
  'resulted_order_without_charge',
  'charge_on_cancelled_encounter',
  'charge_without_price',
] as const;

const account = {
  type: 'object',
  properties: {
    encounterId: str,
    patientId: str,
    encounterClass: nstr,
    admittedAt: nstr,
    dischargedAt: nstr,
    status: str,
    payer: nstr,
  },
} as const;

const charge = {
  type: 'object',
  properties: {
    lineId: str,
    patientId: str,
    orderId: nstr,
    encounterId: nstr,
    code: str,
    description: nstr,
    category: str,
    priority: nstr,
    orderedAt: nstr,
    firstFinalAt: nstr,
    finalResultId: nstr,
    cpt: nstr,
    priceCents: nint,
    status: str,
  },
} as const;

const page = (items: object) =>
  ({
    type: 'object',
    properties: { total: { type: 'integer' }, next: nstr, items: { type: 'array', items } },
  }) as const;

const iso = (v: unknown): string | null =>
  v instanceof Date ? v.toISOString() : typeof v === 'string' || typeof v === 'number' ? String(v) : null;

const paging = {
  _count: { type: 'integer', minimum: 1, maximum: COUNT_MAX, default: COUNT_DEFAULT },
  _offset: { type: 'integer', minimum: 0, maximum: OFFSET_MAX, default: 0 },
} as const;

type Row = Record<string, unknown>;

export function billingRoutes(
  app: FastifyInstance,
  opts: { db: Knex; schema: string; timeoutMs: number; baseUrl: (req: FastifyRequest) => string },
): Promise<void> {
  const { db, schema } = opts;
  const run = (q: Knex.QueryBuilder): Promise<Row[]> => timedRead<Row[]>(q, opts.timeoutMs);
  const security = {
    interaction: 'search-type' as const,
    resourceType: 'Account',
    access: () => ({ kind: 'billing' as const }),
  };
  const toAccount = (r: Row) => ({
    encounterId: r['encounter_id'],
    patientId: r['patient_id'],
    encounterClass: r['encounter_class'] ?? null,
    admittedAt: iso(r['admitted_at']),
    dischargedAt: iso(r['discharged_at']),
    status: r['status'],
    payer: r['payer'] ?? null,
  });
  const next = (
    req: FastifyRequest,
    path: string,
    q: Record<string, string>,
    total: number,
    offset: number,
    count: number,
  ) => {
    if (offset + count >= total) return null;
    const p = new URLSearchParams({ ...q, _count: String(count), _offset: String(offset + count) });
    return `${opts.baseUrl(req)}${path}?${p.toString()}`;
  };

  app.get<{ Querystring: { status?: string; _count: number; _offset: number } }>(
    '/accounts',
    {
      schema: {
        tags: ['billing'],
        summary: 'Accounts (one per encounter), optionally by status',
        querystring: {
          type: 'object',
          properties: { status: { type: 'string', enum: [...ACCOUNT_STATUSES] }, ...paging },
        },
        response: { 200: page(account), ...jsonErrors },
      },
      config: { security },
    },
    async (req) => {
      const { status, _count, _offset } = req.query;
      let q = db.withSchema(schema).from('accounts');
      if (status) q = q.where({ status });
      const rows = await run(
        q
          .select('*', db.raw('count(*) over () as total_rows'))
          .orderBy([{ column: 'admitted_at', order: 'desc', nulls: 'last' }, { column: 'encounter_id' }])
          .limit(_count)
          .offset(_offset),
      );
      const total = Number(rows[0]?.['total_rows'] ?? 0);
      return {
        total,
        next: next(req, '/billing/accounts', status ? { status } : {}, total, _offset, _count),
        items: rows.map(toAccount),
      };
    },
  );

  app.get<{ Params: { encounterId: string } }>(
    '/accounts/:encounterId/charges',
    {
      schema: {
        tags: ['billing'],
        summary: "An account's charge lines with CPT and list price",
        params: {
          type: 'object',
          required: ['encounterId'],
          properties: { encounterId: { type: 'string', minLength: 1, maxLength: 128 } },
        },
        response: {
          200: { type: 'object', properties: { account, charges: { type: 'array', items: charge } } },
          ...jsonErrors,
        },
      },
      config: { security: { ...security, interaction: 'read' as const } },
    },
    async (req) => {
      const acc = (
        await run(db.withSchema(schema).from('accounts').where({ encounter_id: req.params.encounterId }))
      )[0];
      if (!acc) throw new HubError('HUB_NOT_FOUND', 'no such account');
      req.auditPatient = String(acc['patient_id']);
      const lines = await run(
        db
          .withSchema(schema)
          .from('charges')
          .where({ encounter_id: req.params.encounterId })
          .orderBy('line_id'),
      );
      return {
        account: toAccount(acc),
        charges: lines.map((r) => ({
          lineId: r['line_id'],
          patientId: r['patient_id'],
          orderId: r['order_id'] ?? null,
          encounterId: r['encounter_id'] ?? null,
          code: r['code'],
          description: r['description'] ?? null,
          category: r['category'],
          priority: r['priority'] ?? null,
          orderedAt: iso(r['ordered_at']),
          firstFinalAt: iso(r['first_final_at']),
          finalResultId: r['final_result_id'] ?? null,
          cpt: r['cpt'] ?? null,
          priceCents: r['price_cents'] ?? null,
          status: r['status'],
        })),
      };
    },
  );

  app.get<{ Querystring: { problem?: string; _count: number; _offset: number } }>(
    '/worklist',
    {
      schema: {
        tags: ['billing'],
        summary: 'Billing-accuracy worklist: one row per problem to fix',
        querystring: {
          type: 'object',
          properties: { problem: { type: 'string', enum: [...WORKLIST_PROBLEMS] }, ...paging },
        },
        response: {
          200: page({
            type: 'object',
            properties: { problem: str, lineId: str, patientId: str, encounterId: nstr, code: str },
          }),
          ...jsonErrors,
        },
      },
      config: { security },
    },
    async (req) => {
      const { problem, _count, _offset } = req.query;
      let q = db.withSchema(schema).from('billing_problems');
      if (problem) q = q.where({ problem });
      const rows = await run(
        q
          .select('*', db.raw('count(*) over () as total_rows'))
          .orderBy(['problem', 'line_id'])
          .limit(_count)
          .offset(_offset),
      );
      const total = Number(rows[0]?.['total_rows'] ?? 0);
      return {
        total,
        next: next(req, '/billing/worklist', problem ? { problem } : {}, total, _offset, _count),
        items: rows.map((r) => ({
          problem: r['problem'],
          lineId: r['line_id'],
          patientId: r['patient_id'],
          encounterId: r['encounter_id'] ?? null,
          code: r['code'],
        })),
      };
    },
  );
  // Fastify awaits plugins; these register routes synchronously.
  return Promise.resolve();
}
