import type { JsonObject, Mode } from '@nest-dtx/protocol';
import type { DatabaseTime } from '../../store/database-clock.js';
import type { BranchRecord, LoadedTx, MsgCheckTarget, NewTransaction } from '../../store/records.js';
import type { BranchKind } from '../branch-kind.js';
import type { ModeRules } from '../state-machine.js';
import type { ActiveStep, Wave } from '../wave.js';

/** A branch as a begin request names it (PROTOCOL.md 3.1). */
export interface BranchSpec {
  readonly branchId?: string;
  readonly participant: string;
  readonly action: string;
  readonly payload?: JsonObject;
}

/** A saga step as a begin request names it (PROTOCOL.md 3.1). */
export interface StepSpec {
  readonly name: string;
  readonly participant: string;
  readonly action: string;
  readonly payload?: JsonObject;
  readonly dependsOn?: readonly string[];
}

/** A begin request as the engine takes it (PROTOCOL.md 3.1): what the client asked, the HTTP details left behind. */
export interface BeginRequest {
  readonly mode: Mode;
  readonly gid: string;
  /** Whether the client chose the gid: then it may name a transaction that exists (a begin sent again). */
  readonly gidChosen: boolean;
  readonly timeoutMs: number;
  readonly metadata: JsonObject;
  /** Hash of the request, to tell the same begin sent again from another one under the same gid. */
  readonly requestHash: string;
  readonly traceParent: string | null;
  /** SHA-256 of the API key that begins it (null without keys). */
  readonly ownerKeyDigest: Buffer | null;
  /** Every mode's own fields, as sent: each mode takes its own and refuses the others. */
  readonly branches?: readonly BranchSpec[];
  readonly steps?: readonly StepSpec[];
  readonly check?: MsgCheckTarget;
  readonly submit?: boolean;
  readonly concurrent?: boolean;
}

/** What a mode makes of a begin request: the parts of the new transaction that are the mode's to say. */
export type NewTransactionParts = Pick<NewTransaction, 'branches' | 'oneShot' | 'status' | 'branchStatus' | 'events' | 'check'> & {
  /**
   * When recovery first looks at it: at its deadline (rolled back, or a message checked then),
   * or after the lease of the instance driving it (resumed where it was if that instance dies).
   */
  firstLook: 'deadline' | 'lease';
};

/**
 * One mode, plugged into the engine: everything about it and nothing else. It turns a begin
 * request into a new transaction, declares the rules the state machine applies to it, says what
 * kind each branch is (and so the phase each branch gets in each status), and chooses the next
 * wave of calls. The engine runs every wave through its one round (transaction-round.ts):
 * calls, transitions and writes are never a mode's.
 *
 * A mode registers itself with @TransactionMode (transaction-mode.decorator.ts).
 */
export interface ModeProcessor {
  readonly rules: ModeRules;
  /**
   * Whether a one-shot begin without `wait` is answered as soon as it is durable, its phase 1
   * run in the background (a saga may take long); otherwise the answer waits for the decision.
   */
  readonly phase1InBackground: boolean;
  /** A begin request as a new transaction of this mode; InvalidRequestError (and unresolved participants) for what it cannot take. */
  begin(request: BeginRequest): Promise<NewTransactionParts>;
  /** What kind a branch is: its phases and what phase 1 makes of it follow. */
  kindOf(branch: Pick<BranchRecord, 'branchId'>): BranchKind;
  /** The next thing to do with an active transaction this instance drives: a wave, a postponement, or nothing for now. */
  nextActive(loaded: LoadedTx): ActiveStep;
  /** The next phase-2 wave of a decided transaction (an empty wave ends one with no branch). */
  nextDecided(loaded: LoadedTx): Wave;
  /**
   * The wave of `branchIds` alone (msg: `check`, its check-back) in the phase each has now, its
   * answers forming the events they would in the mode's own waves: what a participant's
   * reported outcome (PROTOCOL.md 3.6) runs through the round as, instead of a call.
   */
  waveOf(loaded: LoadedTx, branchIds: ReadonlySet<string>): Wave;
}

/**
 * Milliseconds left until the transaction's deadline, in the database's time: against the
 * claim's own `now()` when recovery claimed it (exact: what made it due), else against this
 * instance's reading of the database clock (within half a sample's round trip).
 */
export function untilDeadlineMs(loaded: LoadedTx, clock: DatabaseTime): number {
  return loaded.claimedAt ? loaded.tx.deadline.getTime() - loaded.claimedAt.getTime() : clock.msUntil(loaded.tx.deadline);
}
