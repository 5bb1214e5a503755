/**
 * Whether a token's SMART patient context (its `patient` claim) names a
 * patient this hub serves. A token for an unknown patient used to get 200
 * with empty bundles: the identity provider bound it to something the hub has
 * never seen (a typo, another site's id, a forged launch), so the token is
 * refused as invalid (401 invalid_token), and so is one for a patient since
 * merged into another: the record now lives under the survivor, and following
 * the merge would let a wrongly merged id read someone else's record. The
 * authorization server has to issue a token for the survivor.
 *
 * Every request with a patient token asks this, so answers are kept for a
 * while, for a bounded number of patients: found ones longer (a merge is
 * seen within `ttlMs`), unknown ones briefly (a patient registered a moment
 * ago is served within `negativeTtlMs`). Lookups of one patient in flight at
 * the same time share one query.
 */
export type PatientContextState = 'active' | 'merged' | 'unknown';

export interface PatientContextOptions {
  lookup(patientId: string): Promise<PatientContextState>;
  /** How long a found patient is trusted without asking again (default 60 s). */
  ttlMs?: number;
  /** How long an unknown or merged patient is remembered (default 5 s). */
  negativeTtlMs?: number;
  /** Patients remembered at most (default 10,000); the oldest answer goes first. */
  max?: number;
  clock?: () => number;
}

export interface PatientContexts {
  state(patientId: string): Promise<PatientContextState>;
}

// A claim the read model could hold: what the API accepts as an id in a path (1-128
// characters), without control characters or lone surrogates (a NUL stalls Postgres
// writers, the audit projector among them).
// eslint-disable-next-line no-control-regex
const UNSTORABLE = /[\u0000-\u001f\u007f]|\p{Cs}/u;

/** Whether a patient claim may be looked up and named in an audit record at all. */
export function isStorablePatientId(id: string): boolean {
  return id.length >= 1 && id.length <= 128 && !UNSTORABLE.test(id);
}

export function createPatientContexts(o: PatientContextOptions): PatientContexts {
  const ttl = o.ttlMs ?? 60_000;
  const negativeTtl = o.negativeTtlMs ?? 5_000;
  const max = o.max ?? 10_000;
  const now = o.clock ?? Date.now;
  // Insertion order is age order: re-set entries move to the end.
  const known = new Map<string, { state: PatientContextState; until: number }>();
  const pending = new Map<string, Promise<PatientContextState>>();

  const remember = (id: string, state: PatientContextState) => {
    known.delete(id);
    known.set(id, { state, until: now() + (state === 'active' ? ttl : negativeTtl) });
    while (known.size > max) {
      const oldest = known.keys().next();
      if (oldest.done) break;
      known.delete(oldest.value);
    }
  };

  return {
    state(id) {
      const hit = known.get(id);
      if (hit && hit.until > now()) return Promise.resolve(hit.state);
      if (hit) known.delete(id);
      const inFlight = pending.get(id);
      if (inFlight) return inFlight;
      const p = o.lookup(id).then(
        (state) => {
          pending.delete(id);
          remember(id, state);
          return state;
        },
        (err: unknown) => {
          // A failed lookup is not an answer: the next request asks again.
          pending.delete(id);
          throw err;
        },
      );
      pending.set(id, p);
      return p;
    },
  };
}
