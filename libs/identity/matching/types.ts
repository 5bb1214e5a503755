/**
 * The contract of the master patient index's matching core (pure: no I/O,
 * no clock, no randomness). The service (services/identity-matcher), the
 * benchmark (scripts/bench/empi.ts) and the steward surfaces all use these
 * shapes; the model behind them is in this folder.
 */

/** One patient record as the matcher compares it: normalised, no display values. */
export interface MatchRecord {
  patientId: string;
  /** Every identifier, canonical system (site-config authorities resolved) and value. */
  identifiers: readonly { system: string; value: string; type: string | null }[];
  /** Given names (first, then middle), folded: lower case, diacritics removed. */
  given: readonly string[];
  /** Family name(s), folded; a compound/hyphenated surname is kept whole here. */
  family: string | null;
  /** YYYY-MM-DD, or partial (YYYY, YYYY-MM) as sent; null when unknown. */
  birthDate: string | null;
  /** FHIR administrative gender; null when unknown. */
  sex: string | null;
  /** Digits only, last 10. */
  phones: readonly string[];
  /** Folded, spaces removed. */
  postalCode: string | null;
  /** First address line, folded, with street words normalised. */
  addressLine: string | null;
  /** Lower-cased. */
  email: string | null;
}

/** A field's graded agreement level; `missing` when either side has no value. */
export type Level = string;

/** The comparison vector of a pair: field → level. */
export type Comparison = Readonly<Record<string, Level>>;

export interface Evidence {
  field: string;
  level: Level;
  /** log2(m/u) under the weights version used. */
  weight: number;
}

/**
 * Fellegi-Sunter weights: per field, per level, m (P(level | match)) and u
 * (P(level | non-match)), estimated from data (EM); the thresholds on the
 * summed log2(m/u); and the version naming all of it (carried by every
 * decision, so a re-run with new weights is a new version).
 */
export interface MatchWeights {
  version: string;
  fields: Readonly<Record<string, Readonly<Record<Level, { m: number; u: number }>>>>;
  /** Score at or above: auto-link (unless a safety rule says review). */
  upper: number;
  /** Score at or above (and below upper): review. Below: no link. */
  lower: number;
}

export type Outcome = 'link' | 'review' | 'none';

export interface MatchDecision {
  outcome: Outcome;
  score: number;
  evidence: readonly Evidence[];
  /** Safety rules that overrode the score (identifier-conflict, sex-conflict, twins, ...). */
  rules: readonly string[];
}

/** Where candidates come from: the blocking index (in memory for the bench, Postgres in the service). */
export interface CandidateSource {
  candidates(keys: readonly string[]): Promise<readonly MatchRecord[]> | readonly MatchRecord[];
}
