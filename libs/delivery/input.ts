/**
 * A subscription as the API and the CLI accept it: one set of rules for
 * both edges (libs/delivery/model.ts's schema, then the rest-hook topic's
 * resource type), and the signing secret the hub generates when a caller
 * gives none.
 */
import { randomBytes } from 'node:crypto';
import { HubError } from '../errors/index.js';
import { resourceTypeOfTopic } from './fhir.js';
import { parseSubscriptionInput, type SubscriptionInput } from './model.js';

/** A Standard Webhooks secret: `whsec_` + base64 of 32 random bytes. */
export const generateSecret = (): string => `whsec_${randomBytes(32).toString('base64')}`;

/**
 * A rest-hook subscription is for one of the hub's topics, and gets that
 * topic's resource type only (libs/delivery/fhir.ts): the criteria say so
 * when they do not already; any other resource type is refused.
 */
export function withTopicCriteria(input: SubscriptionInput): SubscriptionInput {
  const c = input.channel;
  if (c.type !== 'rest-hook') return input;
  const type = resourceTypeOfTopic(c.topic);
  if (!type) throw new HubError('HUB_INPUT_INVALID', 'channel.topic: not a SubscriptionTopic of this hub');
  const given = input.criteria.resourceTypes;
  if (given.some((t) => t !== type)) {
    throw new HubError('HUB_INPUT_INVALID', "criteria.resourceTypes: only the topic's resource type");
  }
  return { ...input, criteria: { ...input.criteria, resourceTypes: [type] } };
}

/** Validated input (HUB_INPUT_INVALID naming each element at fault, never a value). */
export function parseSubscription(raw: unknown): SubscriptionInput {
  return withTopicCriteria(parseSubscriptionInput(raw));
}
