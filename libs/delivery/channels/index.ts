import type { Knex } from 'knex';
import type { Demographics } from '../../events/index.js';
import type { Logger } from '../../telemetry/logger.js';
import type { ChannelSender, Subscription } from '../model.js';
import { createMllpSender, hasMessage } from './mllp.js';
import { createRestHookSender } from './rest-hook.js';
import { createWebhookSender } from './webhook.js';

export interface SenderOptions {
  now(): number;
  logger: Logger;
  /** The hub's FHIR base, for the references in rest-hook notifications. */
  fhirBase: string;
  /** Stored demographics of a patient (HL7 messages about a patient by id: visits, results). */
  patientOf?(patientId: string): Promise<Demographics | null>;
}

/** Postgres: relation does not exist. */
const UNDEFINED_TABLE = '42P01';

/** The sender of a subscription's channel. */
export function senderFor(sub: Subscription, opts: SenderOptions): ChannelSender {
  const c = sub.channel;
  switch (c.type) {
    case 'webhook':
      return createWebhookSender(c, opts);
    case 'rest-hook':
      return createRestHookSender(c, opts);
    case 'mllp': {
      const sender = createMllpSender(c, { now: opts.now, logger: opts.logger, patientOf: opts.patientOf });
      // Events with no HL7 message (an allergy, a coverage) are passed over, not counted.
      return { ...sender, skips: (event) => !hasMessage(event) };
    }
  }
}

/**
 * A patient's demographics as the portal read model keeps them (the state
 * every update applied to), so that an HL7 message about a visit or a result
 * carries the name and birth date the receiver matches on (PID-5, PID-7).
 * Null while the portal has not projected the patient yet, or where no portal
 * runs: the message then carries the identifiers alone (PID-3).
 */
export function portalDemographics(
  db: Knex,
  portalSchema: string,
): (patientId: string) => Promise<Demographics | null> {
  return async (patientId) => {
    try {
      const row = await db
        .withSchema(portalSchema)
        .from('patients')
        .where({ patient_id: patientId })
        .first<{ demographics: Demographics | null } | undefined>('demographics');
      return row?.demographics ?? null;
    } catch (err) {
      // A hub without the portal read model: identifiers alone, as for a patient it has not projected.
      if ((err as { code?: unknown }).code === UNDEFINED_TABLE) return null;
      throw err;
    }
  };
}
