import { describe, expect, it } from 'vitest';
import { REASONS, commandEventId, decisionEventId, planCommand, planPair, type PriorPair } from './plan.js';

const link = { outcome: 'link', rules: [] } as const;
const review = { outcome: 'review', rules: [] } as const;
const reviewByRule = { outcome: 'review', rules: ['sex-conflict'] } as const;
const none = { outcome: 'none', rules: [] } as const;
const auto = (state: PriorPair['state']): PriorPair => ({ state, basis: 'auto' });
const steward = (state: PriorPair['state']): PriorPair => ({ state, basis: 'steward' });
const types = (p: ReturnType<typeof planPair>) => p.map((e) => e.type);

describe('identity-matcher: which event a pair gets (planPair)', () => {
  it('given a new pair, when the core says link / review / none, then linked / proposed / nothing', () => {
    expect(planPair(null, link)).toEqual([{ type: 'PatientsLinked', reason: REASONS.autoLink }]);
    expect(planPair(null, review)).toEqual([{ type: 'PatientLinkProposed', reason: REASONS.review }]);
    expect(planPair(null, reviewByRule)).toEqual([
      { type: 'PatientLinkProposed', reason: REASONS.safetyRule },
    ]);
    expect(planPair(null, none)).toEqual([]);
  });

  it('given any decision of a steward, when the core says anything, then the matcher publishes nothing', () => {
    for (const state of ['proposed', 'linked', 'unlinked', 'rejected'] as const)
      for (const d of [link, review, reviewByRule, none]) expect(planPair(steward(state), d)).toEqual([]);
  });

  it('given the matcher linked the pair, when it scores below lower, then unlinked (rescored); still a link or review without rule: nothing', () => {
    expect(planPair(auto('linked'), none)).toEqual([{ type: 'PatientsUnlinked', reason: REASONS.rescored }]);
    expect(planPair(auto('linked'), link)).toEqual([]);
    expect(planPair(auto('linked'), review)).toEqual([]);
  });

  it('given the matcher linked the pair, when a safety rule now forbids an automatic link, then unlinked and proposed for review', () => {
    expect(types(planPair(auto('linked'), reviewByRule))).toEqual([
      'PatientsUnlinked',
      'PatientLinkProposed',
    ]);
  });

  it('given a pending proposal, when it now links / falls below / stays in review, then linked / rejected by the matcher / nothing', () => {
    expect(types(planPair(auto('proposed'), link))).toEqual(['PatientsLinked']);
    expect(planPair(auto('proposed'), none)).toEqual([
      { type: 'PatientLinkRejected', reason: REASONS.rescored },
    ]);
    expect(planPair(auto('proposed'), review)).toEqual([]);
  });

  it('given the matcher withdrew its own link or proposal, when the pair scores again, then it is decided afresh', () => {
    expect(types(planPair(auto('unlinked'), link))).toEqual(['PatientsLinked']);
    expect(types(planPair(auto('rejected'), review))).toEqual(['PatientLinkProposed']);
    expect(planPair(auto('rejected'), none)).toEqual([]);
  });
});

describe('identity-matcher: whether a steward command holds (planCommand)', () => {
  const active = { active: true };
  const retired = { active: false };

  it('given two active records, when a steward links, unlinks a linked pair or rejects, then the event of the command', () => {
    expect(planCommand('link', null, active, active)).toEqual({ ok: true, type: 'PatientsLinked' });
    expect(planCommand('unlink', 'linked', active, active)).toEqual({ ok: true, type: 'PatientsUnlinked' });
    expect(planCommand('reject', 'proposed', active, active)).toEqual({
      ok: true,
      type: 'PatientLinkRejected',
    });
    expect(planCommand('reject', null, active, active)).toEqual({ ok: true, type: 'PatientLinkRejected' });
  });

  it('given a record retired by an EHR merge, when a steward links or unlinks it, then refused: the merge wins', () => {
    for (const kind of ['link', 'unlink', 'reject'] as const) {
      const p = planCommand(kind, 'linked', active, retired);
      expect(p.ok).toBe(false);
      if (!p.ok) expect(p.error).toMatch(/A40/);
    }
  });

  it('given a pair not linked, when a steward unlinks it, then refused; a linked pair cannot be rejected; an unknown record is refused', () => {
    expect(planCommand('unlink', 'proposed', active, active)).toEqual({
      ok: false,
      error: 'the pair is not linked',
    });
    expect(planCommand('unlink', null, active, active).ok).toBe(false);
    expect(planCommand('reject', 'linked', active, active).ok).toBe(false);
    expect(planCommand('link', null, active, null).ok).toBe(false);
  });
});

describe('identity-matcher: deterministic event ids', () => {
  it('given the same input event, pair and weights version, then the same id; another version or type, another id', () => {
    const a = decisionEventId('e1', 'P1|P2', 'w1', 'PatientsLinked');
    expect(decisionEventId('e1', 'P1|P2', 'w1', 'PatientsLinked')).toBe(a);
    expect(decisionEventId('e1', 'P1|P2', 'w2', 'PatientsLinked')).not.toBe(a);
    expect(decisionEventId('e1', 'P1|P2', 'w1', 'PatientsUnlinked')).not.toBe(a);
    expect(commandEventId('c1')).toBe(commandEventId('c1'));
    expect(commandEventId('c1')).not.toBe(commandEventId('c2'));
  });
});
