import type { BranchStatus } from '@nest-dtx/protocol';
import type { BranchChange, BranchRecord, EventInput, LoadedTx, Phase1Outcome, TxForAdd } from '../store/records.js';

/**
 * A workflow step's final phase-1 answer (PROTOCOL.md 3.7) that this instance gave the host and
 * has not written yet: it is written with the workflow's next write (its next step, its
 * decision, any round), or on its own once it has been held for WORKFLOW_ANSWER_HOLD_MS.
 *
 * Why it may wait: a participant keeps its answer (5.4: a repeated phase call is answered as the
 * first one was, which the SDK's barrier does from its stored answer), so an answer lost in a
 * crash is asked again, not lost. The step's record was durable before the call (the engine
 * writes it pending first), so a rollback always reaches the participant. What is saved is one
 * commit per step: a workflow of n steps writes n + 3 times, not 2n + 3.
 */
export interface HeldAnswer {
  branchId: string;
  status: BranchStatus;
  /** Only a result and an error: an answer that waits, locks rows or needs attention is written at once. */
  outcome: Pick<Phase1Outcome, 'result' | 'lastError'>;
  events: EventInput[];
}

/** Held answers by gid, then by branchId: at most one per step (a newer answer to the same step replaces it). */
export class HeldAnswers {
  private readonly byGid = new Map<string, Map<string, HeldAnswer>>();
  /** Answers a write in flight carries: no second write takes them meanwhile (two would count the call twice, and log it twice). */
  private readonly riding = new Set<HeldAnswer>();

  hold(gid: string, answer: HeldAnswer): void {
    let answers = this.byGid.get(gid);
    if (!answers) {
      answers = new Map<string, HeldAnswer>();
      this.byGid.set(gid, answers);
    }
    answers.set(answer.branchId, answer);
  }

  /** The answers held for `gid`, oldest first (the order their events are written in): how the transaction reads here. */
  of(gid: string): readonly HeldAnswer[] {
    const answers = this.byGid.get(gid);
    return answers ? [...answers.values()] : NONE;
  }

  has(gid: string): boolean {
    return this.byGid.has(gid);
  }

  /**
   * The answers held for `gid` that no write in flight carries yet, but for those of branches in
   * `except`, taken for a write: until it is settled (release, or letGo when it did not happen)
   * no other write takes them.
   */
  ride(gid: string, except?: ReadonlySet<string>): HeldAnswer[] {
    const answers = this.byGid.get(gid);
    if (!answers) return [];
    const taken: HeldAnswer[] = [];
    for (const answer of answers.values()) {
      if (this.riding.has(answer) || except?.has(answer.branchId)) continue;
      this.riding.add(answer);
      taken.push(answer);
    }
    return taken;
  }

  /** A write that carried these did not happen: they are held as before, for the next one. */
  letGo(answers: readonly HeldAnswer[]): void {
    for (const answer of answers) this.riding.delete(answer);
  }

  get size(): number {
    return this.byGid.size;
  }

  gids(): string[] {
    return [...this.byGid.keys()];
  }

  /** Forgets these answers, once written; an answer replaced meanwhile by a newer one stays. */
  release(gid: string, written: readonly HeldAnswer[]): void {
    this.letGo(written);
    const answers = this.byGid.get(gid);
    if (!answers) return;
    for (const answer of written) if (answers.get(answer.branchId) === answer) answers.delete(answer.branchId);
    if (answers.size === 0) this.byGid.delete(gid);
  }
}

const NONE: readonly HeldAnswer[] = [];

/** A held answer as the compare-and-set writes it with the rest of a change. */
export function heldBranchChange(answer: HeldAnswer): BranchChange {
  return { branchId: answer.branchId, status: answer.status, ifPending: true, calls: 1, ...answer.outcome };
}

/** A branch as it reads once its held answer is written: as the store's phase-1 write does it (only a pending branch changes status). */
export function withHeldAnswer(branch: BranchRecord, answer: HeldAnswer | undefined): BranchRecord {
  if (!answer) return branch;
  const { result, lastError } = answer.outcome;
  return {
    ...branch,
    status: branch.status === 'pending' ? answer.status : branch.status,
    attempts: branch.attempts + 1,
    ...(result === undefined ? {} : { result }),
    ...(lastError === undefined ? {} : { lastError }),
  };
}

/** The transaction as it reads once `answers` are written. */
export function withHeldAnswers<T extends LoadedTx>(loaded: T, answers: readonly HeldAnswer[]): T {
  if (answers.length === 0) return loaded;
  const byBranch = new Map(answers.map((a) => [a.branchId, a]));
  return { ...loaded, branches: loaded.branches.map((b) => withHeldAnswer(b, byBranch.get(b.branchId))) };
}

/** The same, for the reading an added branch (or step) needs. */
export function withHeldAnswersForAdd(found: TxForAdd, answers: readonly HeldAnswer[]): TxForAdd {
  if (answers.length === 0) return found;
  const byBranch = new Map(answers.map((a) => [a.branchId, a]));
  return {
    ...found,
    branches: found.branches.map((b) => {
      const answer = byBranch.get(b.branchId);
      return answer && b.status === 'pending' ? { ...b, status: answer.status } : b;
    }),
    existing: found.existing ? withHeldAnswer(found.existing, byBranch.get(found.existing.branchId)) : null,
  };
}
