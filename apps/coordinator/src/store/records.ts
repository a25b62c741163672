import type { BranchLocks, BranchStatus, GlobalStatus, Json, JsonObject, Mode, RollbackReason, StepKind, Transport } from '@nest-dtx/protocol';

/** A global transaction as the engine holds it in memory. */
export interface TxRecord {
  gid: string;
  mode: Mode;
  status: GlobalStatus;
  reason: RollbackReason | null;
  oneShot: boolean;
  concurrent: boolean;
  requestHash: string;
  metadata: JsonObject;
  timeoutMs: number;
  deadline: Date;
  version: number;
  attempts: number;
  needsAttention: boolean;
  nextAttemptAt: Date | null;
  leaseOwner: string | null;
  leaseUntil: Date | null;
  traceParent: string | null;
  /** msg: the action of the caller's service that answers whether its local transaction committed. */
  check: MsgCheckTarget | null;
  /** workflow: the host's workflow, which a resume calls (PROTOCOL.md 3.7). */
  workflow: WorkflowTarget | null;
  /** workflow: what it was begun with (the resume call's payload); null for other modes. */
  input: Json;
  /** workflow: what its commit carried; null until then, and for other modes. */
  result: Json;
  /** SHA-256 of the API key that began it; null when begun without keys (or before keys were recorded). */
  ownerKeyDigest: Buffer | null;
  createdAt: Date;
  updatedAt: Date;
}

/** msg's check-back target (PROTOCOL.md 3.1). */
export interface MsgCheckTarget {
  participant: string;
  action: string;
}

/** What a workflow's local step calls on rollback (PROTOCOL.md 3.7). */
export interface CompensateTarget {
  participant: string;
  action: string;
  payload: JsonObject;
}

/** A workflow's host and the name it registered the workflow under (PROTOCOL.md 3.7). */
export interface WorkflowTarget {
  participant: string;
  name: string;
}

export interface BranchRecord {
  gid: string;
  branchId: string;
  seq: number;
  participant: string;
  action: string;
  payload: JsonObject;
  dependsOn: string[];
  /** A workflow step's kind; null on the branches of every other mode (their kind is the mode). */
  kind: StepKind | null;
  /**
   * A workflow's local step: the call that undoes it on rollback, or null when it has none. (Its
   * participant and action are the workflow's host and name: the host ran it.)
   */
  compensate: CompensateTarget | null;
  status: BranchStatus;
  /** Since when the phase in progress has answered `202` (ongoing, PROTOCOL.md 3.6); null otherwise. */
  waitingSince: Date | null;
  attempts: number;
  lastError: Json;
  result: Json;
  createdAt: Date;
  updatedAt: Date;
}

export interface LoadedTx {
  tx: TxRecord;
  branches: BranchRecord[];
  /**
   * In memory only: until when (this process's monotonic clock, performance.now()) this
   * instance holds the transaction's lease, counted from before the write that took it. Unset
   * when it holds none.
   */
  heldUntil?: number;
  /**
   * Postgres's `now()` in the statement that claimed it for recovery: what "due" and "past its
   * deadline" were judged by, exactly, with no clock of this machine involved. Unset otherwise.
   */
  claimedAt?: Date;
}

/**
 * What adding a branch needs of a transaction, without the other branches' payloads and
 * results: the global row, every branch's status and kind (the state machine's rules), and the branch
 * of that id when it exists already (the same branchId again answers its recorded outcome).
 */
export interface TxForAdd {
  tx: TxRecord;
  /**
   * Every branch's id and status; a workflow step's kind (PROTOCOL.md 3.7), which the rules of
   * its status follow; since when it waits for a final answer (3.6), when it does.
   */
  branches: { branchId: string; status: BranchStatus; kind?: StepKind; waitingSince?: Date }[];
  existing: BranchRecord | null;
}

export interface EventInput {
  type: string;
  branchId?: string | null;
  from?: string | null;
  to?: string | null;
  detail?: Json;
}

export interface NewBranch {
  branchId: string;
  participant: string;
  action: string;
  payload: JsonObject;
  /** Saga steps only. */
  dependsOn?: string[];
  /** Workflow steps only. */
  kind?: StepKind;
  /** A workflow's local step only. */
  compensate?: CompensateTarget;
  /**
   * How it is recorded (default `pending`: its phase 1 is to be called); a workflow's local step
   * is recorded `committed` with its result, as the host ran it.
   */
  status?: Extract<BranchStatus, 'pending' | 'committed'>;
  result?: Json;
}

export interface NewTransaction {
  gid: string;
  mode: Mode;
  oneShot: boolean;
  concurrent: boolean;
  requestHash: string;
  metadata: JsonObject;
  timeoutMs: number;
  branches: NewBranch[];
  /** Set when this instance drives the transaction right away (one-shot). */
  leaseOwner: string | null;
  /** When recovery should first look at it: the deadline, or the end of the lease for a saga being driven. */
  firstAttemptInMs: number;
  traceParent: string | null;
  /** msg only: where the check-back goes. */
  check?: MsgCheckTarget;
  /** workflow only: the host's workflow, and what it was begun with. */
  workflow?: WorkflowTarget;
  input?: Json;
  /** SHA-256 of the API key that begins it (null without keys). */
  ownerKeyDigest?: Buffer | null;
  /**
   * How it starts: `active` (the default), or `committing` for a message submitted at once
   * (`"submit": true`): its insert is the commit point.
   */
  status?: Extract<GlobalStatus, 'active' | 'committing'>;
  /** How its branches start: `pending` (phase 1 not sent yet), or `prepared` for a message's (ready to deliver). */
  branchStatus?: Extract<BranchStatus, 'pending' | 'prepared'>;
  events: EventInput[];
}

/** A branch change written together with its global row. */
export interface BranchChange {
  branchId: string;
  status?: BranchStatus;
  /** The status moves only a branch still pending (a phase-1 answer written late: it never overwrites a later state). */
  ifPending?: boolean;
  /** Calls made to the participant since the last write. */
  calls: number;
  result?: Json;
  lastError?: Json;
  /** An AT prepare's answer: the rows it locked, recorded with the time of this write. */
  locks?: BranchLocks;
  /**
   * true: the phase in progress answered `202` (ongoing): waiting since this write unless it
   * was already; false: a final answer, no longer waiting. Unset: as it was.
   */
  waiting?: boolean;
}

/** A phase-1 answer of an interactive branch, as recorded. */
export interface Phase1Outcome {
  result?: Json;
  lastError?: Json;
  /** An AT prepare's answer: the rows it locked. */
  locks?: BranchLocks;
  /** Flags the transaction for attention in the same write (an answer that could not be kept as it was). */
  needsAttention?: boolean;
  /** As BranchChange.waiting. */
  waiting?: boolean;
  /**
   * The answer was ongoing: the transaction falls due in this many milliseconds (no later than
   * its deadline, and no later than it was due), so that recovery asks the branch again. Not
   * while an instance holds a live lease on it: that instance's next write schedules it.
   */
  askAgainInMs?: number;
}

/** A compare-and-set move of a global transaction, with its branches and events, in one commit. */
export interface TxChange {
  status: GlobalStatus;
  reason: RollbackReason | null;
  attempts?: number;
  needsAttention?: boolean;
  /** Milliseconds from now until recovery should look again; null when terminal. */
  nextAttemptInMs: number | null;
  /** Owner of the lease this write takes (null releases it) and its length. */
  lease: { owner: string; ms: number } | null;
  branches: BranchChange[];
  events: EventInput[];
  /** workflow: the result its commit carried (PROTOCOL.md 3.7); unset leaves it as it was. */
  result?: Json;
}

/** A registered participant as the registry stores it (PROTOCOL.md 4). */
export interface ParticipantRecord {
  name: string;
  transport: Transport;
  endpoint: string | null;
  host: string | null;
  port: number | null;
  /** rabbitmq/nats: its actions are queues or JetStream subjects the coordinator publishes to, with no reply. */
  publish: boolean;
  actions: { name: string; modes: Mode[] }[];
  /** SHA-256 of the API key that owns the name; null when no key owns it. */
  ownerKeyDigest: Buffer | null;
  /** The generation of its derived signing secret (bumped by a rotation or a release). */
  secretGeneration: number;
  /** During a rotation: the generation still signed with, side by side, until `previousSecretUntil`. */
  previousSecretGeneration: number | null;
  previousSecretUntil: Date | null;
  /** Headers sent on every call to it (HTTP), e.g. an API gateway's credentials. */
  callHeaders: Record<string, string>;
  /** An operator's ceiling on calls in flight to it from one instance; null: PARTICIPANT_MAX_IN_FLIGHT. */
  maxInFlight: number | null;
  updatedAt: Date;
}

/** What a registration writes; `ownerKeyDigest` is the registering key's (null without API keys: names then belong to no one). */
export type ParticipantRegistrationRecord = Pick<
  ParticipantRecord,
  'name' | 'transport' | 'endpoint' | 'host' | 'port' | 'publish' | 'actions' | 'callHeaders' | 'ownerKeyDigest'
>;

/** An AT branch's locks as the branches table holds them (`locks`, `locked_at`), and when its phase 2 finished. */
export interface StoredBranchLocks {
  /** The `locks` column: BranchLocks as the coordinator recorded them. */
  locks: unknown;
  lockedAt: Date;
  /** When the branch became committed or rolled back; null while it has not. */
  releasedAt: Date | null;
}

/** A held lock's branch, as GET /admin/locks reads it. */
export interface StoredHeldLock {
  gid: string;
  branchId: string;
  participant: string;
  action: string;
  transactionStatus: GlobalStatus;
  locks: unknown;
  lockedAt: Date;
}

/** Keyset position of GET /admin/locks: oldest first by the time the locks were taken, then gid and branchId. */
export interface HeldLockPosition {
  /** locked_at to the microsecond (ISO-8601), as Postgres compares it. */
  lockedAt: string;
  gid: string;
  branchId: string;
}

/**
 * What an operator's "retry now" did (TransactionStore.makeDue): made the transaction due now
 * (with its status, unchanged), left it to the instance holding a live lease on it, or found
 * nothing to retry (unknown, terminal, or an active non-saga transaction).
 */
export type MadeDue = { outcome: 'due'; status: GlobalStatus } | { outcome: 'leased' } | { outcome: 'not_retryable' };
