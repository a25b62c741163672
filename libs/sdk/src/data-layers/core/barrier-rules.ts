import type { BranchLocks, Json, PhaseCallBody, PhaseKind } from '@nest-dtx/protocol';

/**
 * The barrier's rules (PROTOCOL.md 5.4, the technique of dtm's sub-transaction barrier), once,
 * for every data layer. Each phase inserts rows keyed (gid, branchId, phase kind) in the same
 * local transaction as the business change; what it then does depends only on which of its
 * inserts took:
 * - a repeated call finds its row and does nothing again (idempotency);
 * - a rollback that finds no phase-1 row leaves a marker in its place and changes nothing
 *   (null compensation);
 * - a phase 1 that finds that marker knows it came too late and refuses (anti-hanging).
 * A SQL data layer runs the inserts as statements (concurrent calls for one branch serialise
 * on the primary key); the Redis one hands the whole table of decisions to one Lua script.
 */

/** The row slots of a branch. */
export type BarrierSlot = 'phase1' | 'commit' | 'rollback';
/** Who wrote a row: the phase of its slot, or a rollback that came before phase 1 (the marker). */
export type BarrierOrigin = BarrierSlot;

export interface BarrierInsert {
  slot: BarrierSlot;
  origin: BarrierOrigin;
}

/** What a phase does once its inserts have run. */
export type BarrierDecision =
  /** Run the business method; phase 1 also stores its result, for duplicates to answer. */
  | { kind: 'run'; storesResult: boolean }
  /** A duplicate phase 1: answer the result stored the first time, change nothing. */
  | { kind: 'replay' }
  /** Change nothing: a duplicate, or a rollback whose phase 1 never ran (null compensation). */
  | { kind: 'skip'; duplicate: boolean }
  /** A phase 1 arriving after its branch was rolled back (anti-hanging). */
  | { kind: 'refuse' };

export type BarrierOutcome =
  | { kind: 'ok'; result: Json; duplicate: boolean; skipped: boolean; locks?: BranchLocks }
  | { kind: 'failed'; message: string; details: Json };

const INSERTS: Record<PhaseKind, readonly BarrierInsert[]> = {
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
};

/** The rows a phase inserts, in this order, each only if its slot is free. */
export function barrierInserts(kind: PhaseKind): readonly BarrierInsert[] {
  return INSERTS[kind];
}

/** Whether the decision needs the origin of the phase-1 row that was already there. */
export function needsPhase1Origin(kind: PhaseKind, inserted: readonly boolean[]): boolean {
  return (kind === 'phase1' || kind === 'check') && !inserted[0];
}

/**
 * The decision, from which inserts took (same order as barrierInserts) and, when
 * needsPhase1Origin says so, the origin of the phase-1 row found in place.
 */
export function barrierDecision(kind: PhaseKind, inserted: readonly boolean[], phase1Origin: BarrierOrigin | null): BarrierDecision {
  switch (kind) {
    case 'phase1':
      if (inserted[0]) return { kind: 'run', storesResult: true };
      return phase1Origin === 'rollback' ? { kind: 'refuse' } : { kind: 'replay' };
    case 'commit':
      return inserted[0] ? { kind: 'run', storesResult: false } : { kind: 'skip', duplicate: true };
    case 'rollback': {
      const [phase1NeverRan, first] = inserted;
      if (!first) return { kind: 'skip', duplicate: true };
      return phase1NeverRan ? { kind: 'skip', duplicate: false } : { kind: 'run', storesResult: false };
    }
    case 'check':
      // Committed: answer what the local transaction stored. Not committed (the marker is ours,
      // now or from an earlier check): refuse, a 409 the coordinator takes as "roll back".
      if (inserted[0]) return { kind: 'refuse' };
      return phase1Origin === 'rollback' ? { kind: 'refuse' } : { kind: 'replay' };
    case 'resume':
      return { kind: 'run', storesResult: false };
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
