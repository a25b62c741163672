import { phaseKind, type BranchLocks, type Json, type Phase, type PhaseCallBody, type PhaseKind } from '@nest-dtx/protocol';
import type { OngoingAnswer } from './ongoing-answer.js';
import type { StoredAnswer } from './stored-answer.js';

/**
 * The barrier's rules (PROTOCOL.md 5.4, the technique of dtm's sub-transaction barrier), once,
 * for every data layer. Each phase inserts rows keyed (gid, branchId, phase kind) in the same
 * local transaction as the business change; what it then does depends only on which of its
 * inserts took and, when one did not, on the row found in its place:
 * - a repeated call finds its row and does nothing again (idempotency);
 * - a rollback that finds no phase-1 row leaves a marker in its place and changes nothing
 *   (null compensation);
 * - a phase 1 that finds that marker knows it came too late and refuses (anti-hanging);
 * - a call whose business method answered ongoing (PROTOCOL.md 3.6) commits its row with the
 *   ongoing marker as its stored answer (stored-answer.ts), and what the method wrote with it: the
 *   same call again finds the marker and runs the method again, until a final answer replaces
 *   it. A rollback that finds phase 1 ongoing takes the phase-1 slot over (origin rollback) and
 *   runs the real compensation (phase 1 did run, and wrote); a late phase 1 then refuses.
 * - a compensation that has no phase 1 by design (kind `undo`: a workflow's local step, whose
 *   work ran in the workflow's host, undone by a `@LocalStepCompensation` action) takes only the
 *   rollback slot: its first call runs, a repeat is a duplicate, an ongoing answer is run again
 *   as for a rollback; it leaves no marker, there being no phase 1 here to refuse.
 *
 * The table (inserted: which of the phase's inserts took; found: the row read when one did not):
 *
 * | kind     | inserted      | found row                  | decision                                         |
 * |----------|---------------|----------------------------|--------------------------------------------------|
 * | phase1   | [yes]         | -                          | run, store the result                            |
 * | phase1   | [no]          | phase1, origin rollback    | refuse (anti-hanging)                            |
 * | phase1   | [no]          | phase1, ongoing            | run again, store the result                      |
 * | phase1   | [no]          | phase1, final              | replay the stored result                         |
 * | commit   | [yes]         | -                          | run                                              |
 * | commit   | [no]          | commit, ongoing            | run again, store the final answer (clears it)    |
 * | commit   | [no]          | commit, final              | skip (duplicate)                                 |
 * | rollback | [no, yes]     | -                          | run; take over phase 1 if it is ongoing          |
 * | rollback | [yes, yes]    | -                          | skip (null compensation)                         |
 * | rollback | [any, no]     | rollback, ongoing          | run again, store the final answer (clears it)    |
 * | rollback | [any, no]     | rollback, final            | skip (duplicate)                                 |
 * | undo     | [yes]         | -                          | run                                              |
 * | undo     | [no]          | rollback, ongoing          | run again, store the final answer (clears it)    |
 * | undo     | [no]          | rollback, final            | skip (duplicate)                                 |
 * | check    | [yes]         | -                          | refuse (not committed, for good)                 |
 * | check    | [no]          | phase1, origin rollback    | refuse                                           |
 * | check    | [no]          | phase1, other              | replay (committed)                               |
 * | resume   | []            | -                          | run (a workflow's resume keeps no row)           |
 *
 * Whatever a phase that runs answers: a result is stored when the decision says so; ongoing is
 * stored as the marker in the phase's own slot (answerSlot); a BusinessFailure rolls back that
 * call's changes and its inserts, so a slot left ongoing by an earlier call stays ongoing (a
 * repeat asks the method again, which refuses again from its state), and a first call's refusal
 * leaves no row at all, as before. A SQL data layer runs the inserts as statements (concurrent
 * calls for one branch serialise on the primary key, and a run-again locks the row it found);
 * the Redis one hands the whole table of decisions to one Lua script.
 */

/**
 * The rule a call goes through: its phase's kind, or `undo`, a compensation with no phase 1 by
 * design (a workflow's local step undone by a `@LocalStepCompensation` action). `undo` is not on
 * the wire: the call is a `compensate` like any other, the action's metadata picks the rule.
 */
export type BarrierKind = PhaseKind | 'undo';

/** How a call goes through the barrier, beside what its phase says (DtxDataLayer.runPhase). */
export interface BarrierRunOptions {
  /** `undo`: the call compensates work that had no phase 1 here (only a rollback phase may). */
  kind?: 'undo';
}

/** The rule of a call of `phase` run with `options`; `undo` for anything but a rollback phase is a bug (TypeError). */
export function barrierKind(phase: Phase, options?: BarrierRunOptions): BarrierKind {
  const kind = phaseKind(phase);
  if (options?.kind !== 'undo') return kind;
  if (kind !== 'rollback') throw new TypeError(`the barrier's undo rule is for a rollback phase (cancel, rollback, compensate), not ${phase}`);
  return 'undo';
}

/** The row slots of a branch. */
export type BarrierSlot = 'phase1' | 'commit' | 'rollback';
/** Who wrote a row: the phase of its slot, or a rollback that came before phase 1 (the marker) or took an ongoing phase 1 over. */
export type BarrierOrigin = BarrierSlot;

export interface BarrierInsert {
  slot: BarrierSlot;
  origin: BarrierOrigin;
}

/** A row found in a slot the phase could not insert into: who wrote it and what it stores. */
export interface FoundRow {
  origin: BarrierOrigin;
  answer: StoredAnswer['kind'];
}

/** What a phase does once its inserts have run (and the row it found was read). */
export type BarrierDecision =
  | {
      kind: 'run';
      /** Write the final result into the phase's own slot: phase 1 (for its duplicates), and a run again (clearing the ongoing marker). */
      storesResult: boolean;
      /** A rollback whose phase 1 ran: take the phase-1 slot over if it is ongoing, so that a late phase 1 refuses. */
      takesOverOngoingPhase1: boolean;
    }
  /** A duplicate phase 1: answer the result stored the first time, change nothing. */
  | { kind: 'replay' }
  /** Change nothing: a duplicate, or a rollback whose phase 1 never ran (null compensation). */
  | { kind: 'skip'; duplicate: boolean }
  /** A phase 1 arriving after its branch was rolled back (anti-hanging). */
  | { kind: 'refuse' };

export type BarrierOutcome =
  | { kind: 'ok'; result: Json; duplicate: boolean; skipped: boolean; locks?: BranchLocks }
  | { kind: 'failed'; message: string; details: Json }
  /** The business method answered ongoing (PROTOCOL.md 3.6): what it wrote committed with the marker; the same call will run it again. */
  | { kind: 'ongoing'; retryAfterMs?: number };

const INSERTS: Record<BarrierKind, readonly BarrierInsert[]> = {
  phase1: [{ slot: 'phase1', origin: 'phase1' }],
  commit: [{ slot: 'commit', origin: 'commit' }],
  // Taking the phase-1 slot first means a late phase 1 will find it and refuse.
  rollback: [
    { slot: 'phase1', origin: 'rollback' },
    { slot: 'rollback', origin: 'rollback' },
  ],
  // msg's check-back (PROTOCOL.md 3.1) asks whether the caller's local transaction committed:
  // that transaction took the phase-1 slot of its message's `check` branch. Taking the slot
  // when it is free answers "no" for good: the local transaction, were it still running, now
  // conflicts on the slot and can no longer commit.
  check: [{ slot: 'phase1', origin: 'rollback' }],
  // A workflow's resume (PROTOCOL.md 3.7) takes no row: its steps are recorded by the coordinator.
  resume: [],
  // A compensation with no phase 1 by design: no marker in the phase-1 slot, nothing could refuse on it.
  undo: [{ slot: 'rollback', origin: 'rollback' }],
};

/** The rows a phase inserts, in this order, each only if its slot is free. */
export function barrierInserts(kind: BarrierKind): readonly BarrierInsert[] {
  return INSERTS[kind];
}

/** The slot whose row keeps what this phase answered (its result, or the ongoing marker); null: the phase keeps none. */
export function answerSlot(kind: BarrierKind): BarrierSlot | null {
  switch (kind) {
    case 'phase1':
    case 'commit':
    case 'rollback':
      return kind;
    case 'undo':
      return 'rollback';
    case 'check':
    case 'resume':
      return null;
  }
}

/**
 * The slot whose row the decision needs (its origin and stored answer), given which inserts took
 * (same order as barrierInserts); null when it needs none.
 */
export function slotToRead(kind: BarrierKind, inserted: readonly boolean[]): BarrierSlot | null {
  switch (kind) {
    case 'phase1':
    case 'check':
      return inserted[0] ? null : 'phase1';
    case 'commit':
      return inserted[0] ? null : 'commit';
    case 'rollback':
      return inserted[1] ? null : 'rollback';
    case 'undo':
      return inserted[0] ? null : 'rollback';
    case 'resume':
      return null;
  }
}

const run = (storesResult: boolean, takesOverOngoingPhase1 = false): BarrierDecision => ({ kind: 'run', storesResult, takesOverOngoingPhase1 });

/**
 * The decision, from which inserts took (same order as barrierInserts) and, when slotToRead
 * names a slot, the row found there (null if it vanished meanwhile: treated as a final answer).
 */
export function barrierDecision(kind: BarrierKind, inserted: readonly boolean[], found: FoundRow | null): BarrierDecision {
  switch (kind) {
    case 'phase1':
      if (inserted[0]) return run(true);
      if (found?.origin === 'rollback') return { kind: 'refuse' };
      return found?.answer === 'ongoing' ? run(true) : { kind: 'replay' };
    case 'commit':
      if (inserted[0]) return run(false);
      return found?.answer === 'ongoing' ? run(true) : { kind: 'skip', duplicate: true };
    case 'rollback': {
      const [phase1NeverRan, first] = inserted;
      if (!first) return found?.answer === 'ongoing' ? run(true) : { kind: 'skip', duplicate: true };
      return phase1NeverRan ? { kind: 'skip', duplicate: false } : run(false, true);
    }
    case 'undo':
      // No phase 1 to look at, none to take over: the first call runs, as a rollback's would.
      if (inserted[0]) return run(false);
      return found?.answer === 'ongoing' ? run(true) : { kind: 'skip', duplicate: true };
    case 'check':
      // Committed: answer what the local transaction stored. Not committed (the marker is ours,
      // now or from an earlier check): refuse, a 409 the coordinator takes as "roll back".
      if (inserted[0]) return { kind: 'refuse' };
      return found?.origin === 'rollback' ? { kind: 'refuse' } : { kind: 'replay' };
    case 'resume':
      return run(false);
  }
}

/** The refusal of a phase 1 that came after its rollback, or msg's check answer "did not commit". */
export function rolledBackRefusal(call: Pick<PhaseCallBody, 'gid' | 'branchId' | 'phase'>): Extract<BarrierOutcome, { kind: 'failed' }> {
  if (call.phase === 'check') {
    return { kind: 'failed', message: `the local transaction of ${call.gid} did not commit, and now never will`, details: { reason: 'not_committed' } };
  }
  return { kind: 'failed', message: `branch ${call.branchId} of ${call.gid} was already rolled back`, details: { reason: 'rolled_back' } };
}

/**
 * The answer of a phase whose decision was not `run` (`stored`: the result phase 1 stored, for
 * a replay), or of one that ran (`ran`: what the business method returned).
 */
export function barrierOutcome(call: Pick<PhaseCallBody, 'gid' | 'branchId' | 'phase'>, decision: BarrierDecision, result: Json): BarrierOutcome {
  switch (decision.kind) {
    case 'run':
      return { kind: 'ok', result, duplicate: false, skipped: false };
    case 'replay':
      return { kind: 'ok', result, duplicate: true, skipped: true };
    case 'skip':
      return { kind: 'ok', result: null, duplicate: decision.duplicate, skipped: true };
    case 'refuse':
      return rolledBackRefusal(call);
  }
}

/** The answer of a phase whose business method answered ongoing(), with its hint. */
export function ongoingOutcome(answer: OngoingAnswer): Extract<BarrierOutcome, { kind: 'ongoing' }> {
  return answer.retryAfterMs === undefined ? { kind: 'ongoing' } : { kind: 'ongoing', retryAfterMs: answer.retryAfterMs };
}
