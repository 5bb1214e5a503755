import { randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Knex } from 'knex';
import { buildAuditEvent, type AuditInput } from '../../libs/audit/event.js';
import type { AuditSink } from '../../libs/audit/topic.js';
import type { TokenVerifier } from '../../libs/auth/jwt.js';
import type { EventCodec } from '../../libs/events/codec.js';
import type { RegistryClient } from '../../libs/events/registry.js';
import type { KafkaClient } from '../../libs/kafka/client.js';
import type { EventProducer } from '../../libs/kafka/producer.js';
import type { Logger } from '../../libs/telemetry/logger.js';
import type { ConsoleSession, Role } from './session.js';

/** Where the console reads: the same schemas and topics as the services and `hub` use. */
export interface ConsoleSettings {
  /** Catalog topic name → this deployment's topic name (HUB_TOPIC_SUFFIX). */
  topic(catalogName: string): string;
  /** Schema of the analytics read model (the stable schema the API reads). */
  analyticsSchema: string;
  /** Schema of the billing read model (its billing_problems view feeds the outcomes page). */
  billingSchema: string;
  identitySchema: string;
  /** Where dead-letter state (redriven / discarded) lives, shared with `hub dlq`. */
  opsSchema: string;
  deliverySchema: string;
  auditSchema: string;
  auditTopic: string;
  /** HUB_SERVICE_URLS (`name=http://host:port,...`): services whose /ready the flow page shows; unset: `hub up`'s. */
  serviceUrls: string | undefined;
  /** How often live pages refresh (ms). */
  refreshMs: number;
}

/** What every page is handed: the connections the console's main.ts made once. */
export interface ConsoleContext {
  db: Knex;
  kafka: KafkaClient;
  codec: EventCodec;
  registry: RegistryClient;
  producer: EventProducer;
  audit: AuditSink;
  verifier: TokenVerifier;
  logger: Logger;
  settings: ConsoleSettings;
  now(): number;
}

/** The options every page plugin is registered with. */
export interface PageOptions {
  ctx: ConsoleContext;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the session hook on every page route (never null there: the guard redirects first). */
    consoleSession: ConsoleSession | null;
  }
}

/** The session of a request on a guarded route. */
export function sessionOf(req: FastifyRequest): ConsoleSession {
  const s = req.consoleSession;
  if (!s) throw new Error('console page reached without a session');
  return s;
}

export function hasRole(req: FastifyRequest, role: Role): boolean {
  return req.consoleSession?.roles.includes(role) ?? false;
}

/**
 * Records a PHI view or action as the API does (same AuditEvent, same topic,
 * same chained table), and waits for the broker's acknowledgement before the
 * page shows anything: an unaudited view is never served. `route` is the
 * console's route template, never a URL with values in it.
 */
export async function auditAccess(
  ctx: ConsoleContext,
  req: FastifyRequest,
  a: {
    route: string;
    interaction: AuditInput['interaction'];
    resourceType: string | null;
    patientIds: readonly (string | null)[];
    status?: number;
    reason?: string;
  },
): Promise<void> {
  const s = sessionOf(req);
  const who = { subject: s.principal.subject, clientId: s.principal.clientId, scopes: s.principal.scopes };
  const patients = a.patientIds.length > 0 ? a.patientIds : [null];
  const events = patients.map((patientId) =>
    buildAuditEvent({
      id: randomUUID(),
      recorded: ctx.now(),
      interaction: a.interaction,
      route: a.reason ? `${a.route} (reason: ${a.reason.slice(0, 200)})` : a.route,
      resourceType: a.resourceType,
      status: a.status ?? 200,
      patientId,
      who,
      denyReason: null,
      sourceAddress: req.ip,
      observer: 'console',
    }),
  );
  await ctx.audit.recordAll(events);
}

/** An HTML fragment or page answer: never cached, never framed. */
export function sendHtml(reply: FastifyReply, body: { toString(): string }, status = 200): FastifyReply {
  return reply.status(status).type('text/html; charset=utf-8').send(body.toString());
}
