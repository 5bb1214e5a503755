import type { MatchWeights } from './types.js';
import weights from './weights.json' with { type: 'json' };

/**
 * The master patient index's matching core (pure; the only input besides its
 * arguments is the committed weights.json, produced by `npm run empi:train`).
 */

export type * from './types.js';
export {
  toMatchRecord,
  fold,
  normaliseAddressLine,
  normalisePhone,
  normalisePostalCode,
} from './normalise.js';
export type { SystemResolver } from './normalise.js';
export { blockingKeys } from './blocking.js';
export { FIELDS, FIELD_LEVELS, compare } from './compare.js';
export type { Field } from './compare.js';
export {
  decide,
  score,
  safetyRules,
  levelWeight,
  RULE_IDENTIFIER_CONFLICT,
  RULE_SEX_CONFLICT,
  RULE_TWINS,
  RULE_BIRTH_DATE_CONFLICT,
} from './decide.js';
export { matchOne } from './match.js';
export type { CandidateDecision } from './match.js';
export { estimateWeights, levelShares, withU } from './em.js';
export type { EmOptions, EmResult, LevelShares } from './em.js';
export { areNicknames } from './nicknames.js';

/** The committed weights (version, m/u per field level, thresholds): the matcher's default. */
export const DEFAULT_WEIGHTS: MatchWeights = weights;
