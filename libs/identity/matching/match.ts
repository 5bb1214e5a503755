import { blockingKeys } from './blocking.js';
import { decide } from './decide.js';
import type { CandidateSource, MatchDecision, MatchRecord, MatchWeights } from './types.js';

export interface CandidateDecision {
  candidate: MatchRecord;
  decision: MatchDecision;
}

/**
 * Matches one record against the records its blocking keys find: every
 * candidate other than itself (deduplicated by patient id) is decided, and
 * only the pairs whose outcome is link or review are returned, in the
 * source's order.
 */
export async function matchOne(
  r: MatchRecord,
  source: CandidateSource,
  w: MatchWeights,
): Promise<CandidateDecision[]> {
  const found = await source.candidates(blockingKeys(r));
  const seen = new Set<string>([r.patientId]);
  const out: CandidateDecision[] = [];
  for (const candidate of found) {
    if (seen.has(candidate.patientId)) continue;
    seen.add(candidate.patientId);
    const decision = decide(r, candidate, w);
    if (decision.outcome !== 'none') out.push({ candidate, decision });
  }
  return out;
}
