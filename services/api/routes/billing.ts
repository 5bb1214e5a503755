import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import { HubError } from '../../../libs/errors/index.js';
import { jsonErrorHandler } from '../../../libs/http/errors.js';
import { PAGING_PARAMS, nextPageLink } from '../paging.js';
import {
  ACCOUNT_STATUSES,
  WORKLIST_PROBLEMS,
  type BillingReader,
  type ListPage,
} from '../readers/billing.js';
import { jsonErrors } from '../schemas.js';
import type { RouteSecurity } from '../security.js';

/**
 * Billing's routes over the billing read model: accounts by status, an
 * account's charges, and the billing-accuracy worklist. Accounts carry
 * their primary coverage (payer, plan, member id). Identified data:
 * only `system/billing.read`. Errors are `{code, message, retriable}`.
 */
export interface BillingRoutesOptions {
  reader: BillingReader;
  baseUrl: (req: FastifyRequest) => string;
}

const str = { type: 'string' } as const;
const nstr = { type: ['string', 'null'] } as const;
const nint = { type: ['integer', 'null'] } as const;

const coverage = {
  type: ['object', 'null'],
  description:
    "The patient's active coverage for the admission day with the lowest coordination-of-benefits order",
  properties: {
    coverageId: str,
    order: nint,
    payerId: nstr,
    payerName: nstr,
    planId: nstr,
    planName: nstr,
    planType: nstr,
    groupNumber: nstr,
    groupName: nstr,
    memberId: nstr,
    periodStart: nstr,
    periodEnd: nstr,
  },
} as const;

const account = {
  type: 'object',
  properties: {
    encounterId: str,
    patientId: str,
    encounterClass: nstr,
    admittedAt: nstr,
    dischargedAt: nstr,
    status: str,
    payer: { ...nstr, description: 'Financial class the visit was admitted under, as sent' },
    coverage,
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

const worklistItem = {
  type: 'object',
  // A problem of a whole account (charges_without_coverage) names no line or code.
  properties: { problem: str, lineId: nstr, patientId: str, encounterId: nstr, code: nstr },
} as const;

const page = (items: object) =>
  ({
    type: 'object',
    properties: { total: { type: 'integer' }, next: nstr, items: { type: 'array', items } },
  }) as const;

const security: RouteSecurity = {
  interaction: 'search-type',
  resourceType: 'Account',
  access: () => ({ kind: 'billing' }),
};

/** A paged list with one optional filter from a closed set of values; the next link keeps the filter. */
interface PagedList {
  path: string;
  summary: string;
  filter: { name: string; values: readonly string[] };
  items: object;
  read(filter: string | undefined, count: number, offset: number): Promise<ListPage<unknown>>;
}

type ListQuery = Partial<Record<string, string>> & { _count: number; _offset: number };

function registerPagedList(
  app: FastifyInstance,
  baseUrl: (req: FastifyRequest) => string,
  list: PagedList,
): void {
  const { name, values } = list.filter;
  app.get<{ Querystring: ListQuery }>(
    list.path,
    {
      schema: {
        tags: ['billing'],
        summary: list.summary,
        querystring: {
          type: 'object',
          properties: { [name]: { type: 'string', enum: [...values] }, ...PAGING_PARAMS },
        },
        response: { 200: page(list.items), ...jsonErrors },
      },
      config: { security },
    },
    async (req) => {
      const { _count, _offset } = req.query;
      const filter = req.query[name];
      const p = await list.read(filter, _count, _offset);
      const span = { offset: _offset, count: _count, shown: p.items.length, total: p.total };
      const next = nextPageLink(
        baseUrl(req),
        `${app.prefix}${list.path}`,
        filter ? { [name]: filter } : {},
        span,
      );
      return { ...p, next };
    },
  );
}

export const billingRoutes: FastifyPluginAsync<BillingRoutesOptions> = (app, { reader, baseUrl }) => {
  app.setErrorHandler(jsonErrorHandler);

  registerPagedList(app, baseUrl, {
    path: '/accounts',
    summary: 'Accounts (one per encounter), optionally by status',
    filter: { name: 'status', values: ACCOUNT_STATUSES },
    items: account,
    read: (status, count, offset) => reader.accounts(status, count, offset),
  });

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
      config: { security: { ...security, interaction: 'read' } },
    },
    async (req) => {
      const found = await reader.charges(req.params.encounterId);
      if (!found) throw new HubError('HUB_NOT_FOUND', 'no such account');
      req.auditPatient = found.patientId;
      return { account: found.account, charges: found.charges };
    },
  );

  registerPagedList(app, baseUrl, {
    path: '/worklist',
    summary: 'Billing-accuracy worklist: one row per problem to fix',
    filter: { name: 'problem', values: WORKLIST_PROBLEMS },
    items: worklistItem,
    read: (problem, count, offset) => reader.worklist(problem, count, offset),
  });
  // Fastify awaits plugins; this one registers its routes synchronously.
  return Promise.resolve();
};
