import type { Mode, ModePhases } from '@nest-dtx/protocol';
import type { DatabaseTime } from '../../store/database-clock.js';
import type { BranchRecord, LoadedTx } from '../../store/records.js';

/**
 * What one mode means to the engine: its phase names, how a one-shot transaction runs up to its
 * decision, and which branches phase 2 calls next. The engine, store, invoker and recovery are
 * shared; each mode plugs in as one processor.
 */
export interface ModeProcessor {
  readonly mode: Mode;
  readonly phases: ModePhases;
  /** Runs phase 1 of a one-shot transaction (saga: its forward steps) up to a durable decision or a pause. */
  start(loaded: LoadedTx): Promise<LoadedTx>;
  /**
   * Whether an active transaction that recovery claimed is past its time and is rolled back
   * (reason timeout); otherwise resumeActive picks it up.
   */
  expiredWhenClaimed(loaded: LoadedTx): boolean;
  /** Picks up an active transaction recovery claimed and expiredWhenClaimed did not roll back. */
  resumeActive(loaded: LoadedTx): Promise<LoadedTx>;
  /** The branches the next phase-2 call round goes to (all at once, or in dependency order). */
  phase2Wave(loaded: LoadedTx): BranchRecord[];
}

/**
 * Milliseconds left until the transaction's deadline, in the database's time: against the
 * claim's own `now()` when recovery claimed it (exact: what made it due), else against this
 * instance's reading of the database clock (within half a sample's round trip).
 */
export function untilDeadlineMs(loaded: LoadedTx, clock: DatabaseTime): number {
  return loaded.claimedAt ? loaded.tx.deadline.getTime() - loaded.claimedAt.getTime() : clock.msUntil(loaded.tx.deadline);
}
