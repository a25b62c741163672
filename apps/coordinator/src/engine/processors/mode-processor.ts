import type { Json, JsonObject, Mode, StepKind } from '@nest-dtx/protocol';
import type { DatabaseTime } from '../../store/database-clock.js';
import type { BranchRecord, CompensateTarget, LoadedTx, MsgCheckTarget, NewBranch, NewTransaction, TxRecord, WorkflowTarget } from '../../store/records.js';
import type { BranchKind } from '../branch-kind.js';
import type { KindedBranch } from '../machine.js';
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
  readonly workflow?: WorkflowTarget;
  /** As sent; absent is not null, so that a mode that takes no input can tell it was not given. */
  readonly input?: Json;
}

/** A workflow's step as its host records it (PROTOCOL.md 3.7), the HTTP details left behind. */
export type StepRequest =
  | { readonly stepId: string; readonly kind: Exclude<StepKind, 'local'>; readonly participant: string; readonly action: string; readonly payload: JsonObject }
  | { readonly stepId: string; readonly kind: 'local'; readonly result: Json; readonly compensate: CompensateTarget | null };

/**
 * Whether a step recorded under this stepId is the step asked for again (PROTOCOL.md 3.7): the
 * same kind and, but for a local step (which names none), the same participant (the record holds
 * the registered spelling; names are case-insensitive) and action. Otherwise the function did
 * not replay the way it ran: STEP_MISMATCH.
 */
export function sameStep(recorded: Pick<BranchRecord, 'kind' | 'participant' | 'action'>, request: StepRequest): boolean {
  if (recorded.kind !== request.kind) return false;
  if (request.kind === 'local') return true;
  return recorded.participant.toLowerCase() === request.participant.toLowerCase() && recorded.action === request.action;
}

/** What a mode makes of a step: the branch to record, and how long its record puts off the transaction's next look. */
export interface StepPlan {
  readonly branch: NewBranch;
  readonly nextLookInMs: number;
}

/** What a mode makes of a begin request: the parts of the new transaction that are the mode's to say. */
export type NewTransactionParts = Pick<NewTransaction, 'branches' | 'oneShot' | 'status' | 'branchStatus' | 'events' | 'check' | 'workflow' | 'input'> & {
  /**
   * When recovery first looks at it: at its deadline (rolled back, or a message checked then),
   * after the lease of the instance driving it (resumed where it was if that instance dies), or
   * after so many milliseconds (a workflow's resume interval), never past the deadline.
   */
  firstLook: 'deadline' | 'lease' | { readonly afterMs: number };
};

/** Every field of `T` as a required key (an optional one may hold undefined): a field left out does not compile. */
type EveryField<T> = { [K in keyof Required<T>]: T[K] };

/**
 * The new transaction a begin request makes: the request's fields, the mode's parts and the
 * engine's lease and first look, each named. Not `const { firstLook, ...shape } = parts` and
 * `{ ...shape, gid, ... }`: that rest copy and the properties added after its spread were a
 * third of TransactionEngine.begin's CPU in a profile (the object is built key by key). Fields
 * the parts leave out are undefined here, which every reader takes as absent (`??`).
 */
export function newTransaction(request: BeginRequest, parts: NewTransactionParts, engine: Pick<NewTransaction, 'leaseOwner' | 'firstAttemptInMs'>): NewTransaction {
  const tx: EveryField<NewTransaction> = {
    gid: request.gid,
    mode: request.mode,
    oneShot: parts.oneShot,
    concurrent: request.concurrent ?? false,
    requestHash: request.requestHash,
    metadata: request.metadata,
    timeoutMs: request.timeoutMs,
    branches: parts.branches,
    leaseOwner: engine.leaseOwner,
    firstAttemptInMs: engine.firstAttemptInMs,
    traceParent: request.traceParent,
    check: parts.check,
    workflow: parts.workflow,
    input: parts.input,
    // Recorded whenever keys are configured, so turning OWNER_SCOPED_KEYS on later scopes these too.
    ownerKeyDigest: request.ownerKeyDigest,
    status: parts.status,
    branchStatus: parts.branchStatus,
    events: parts.events,
  };
  return tx;
}

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
  kindOf(branch: KindedBranch): BranchKind;
  /** The next thing to do with an active transaction this instance drives: a wave, a postponement, or nothing for now. */
  nextActive(loaded: LoadedTx): ActiveStep;
  /** The next phase-2 wave of a decided transaction (an empty wave ends one with no branch). */
  nextDecided(loaded: LoadedTx): Wave;
  /**
   * A step its host records (PROTOCOL.md 3.7), checked (InvalidRequestError, unresolved
   * participants) and shaped as the branch to record. Only a mode whose rules record steps has it.
   */
  step?(tx: TxRecord, request: StepRequest): Promise<StepPlan>;
  /** Whether a commit may carry a result, kept with the decision (a workflow's, PROTOCOL.md 3.7). */
  readonly commitCarriesResult?: boolean;
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
