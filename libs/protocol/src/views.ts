import type { BranchStatus, GlobalStatus, Mode, RollbackReason, StepKind } from './states.js';

/** Any JSON value: payloads, results and metadata are opaque to the coordinator. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** A branch as the API shows it (PROTOCOL.md 3.4). */
export interface BranchView {
  branchId: string;
  participant: string;
  action: string;
  status: BranchStatus;
  attempts: number;
  lastError: Json;
  result: Json;
  /** A workflow's step: its kind (PROTOCOL.md 3.7). Absent on the branches of other modes. */
  kind?: StepKind;
  /** Since when the phase in progress has answered `202` (ongoing, PROTOCOL.md 3.6); null when it is not waiting so. */
  waitingSince: string | null;
}

/** A global transaction as the API shows it (PROTOCOL.md 3.4). */
export interface TransactionView {
  gid: string;
  mode: Mode;
  status: GlobalStatus;
  reason: RollbackReason | null;
  createdAt: string;
  updatedAt: string;
  deadline: string;
  metadata: JsonObject;
  needsAttention: boolean;
  branches: BranchView[];
  /** A workflow's host and name, what it was begun with, and what its commit carried (PROTOCOL.md 3.7); absent for other modes. */
  workflow?: { participant: string; name: string };
  input?: Json;
  result?: Json;
}

/** The answer to adding a branch (PROTOCOL.md 3.2). */
export interface BranchOutcomeView {
  branchId: string;
  status: BranchStatus;
  result: Json;
}

/**
 * The answer to adding a branch whose phase 1 answered `202` (PROTOCOL.md 3.6): accepted, its
 * outcome not known yet. Read the transaction (3.4) until the branch is `prepared` or `failed`.
 */
export interface PendingBranchView {
  branchId: string;
  status: 'pending';
}

export interface ParticipantView {
  name: string;
  transport: string;
  endpoint: string | null;
  host: string | null;
  port: number | null;
  /** rabbitmq/nats: a publish target (each action a queue or JetStream subject), not a service that replies. */
  publish: boolean;
  actions: { name: string; modes: Mode[] }[];
  updatedAt: string;
}

/**
 * The answer to a registration (PROTOCOL.md 4): the participant as listed, plus its own secret
 * for verifying the coordinator's calls (5.5), which no listing ever shows.
 */
export interface ParticipantRegistrationView extends ParticipantView {
  signingSecret: string;
}

/** A participant as operators see it (GET /admin/participants): who owns it and where its secret stands, never the secret. */
export interface ParticipantAdminView extends ParticipantView {
  /** `key#<n>` (position in API_KEYS) of the owning key, `unconfigured key` when that key is gone, null when unowned. */
  owner: string | null;
  /** Generation of its signing secret; a rotation or a release adds one. */
  secretGeneration: number;
  /** During a rotation: until when the previous secret is still signed with, side by side. */
  previousSecretValidUntil: string | null;
  /** Names of the headers sent on its calls; their values are never shown. */
  callHeaderNames: string[];
  /**
   * The operator's ceiling on the calls each instance has in flight to it at once
   * (PUT /admin/participants/{name}/limits); null: PARTICIPANT_MAX_IN_FLIGHT applies.
   */
  maxInFlight: number | null;
  /** Its gate on the instance that answered, as it is now; null until that instance has called it. */
  load: ParticipantLoadView | null;
}

/** A participant circuit breaker's state: calls go through, none does, one probe is out (or may go). */
export type BreakerStateView = 'closed' | 'open' | 'half_open';

/**
 * One participant's gate on one coordinator instance (each instance has its own): the calls in
 * flight and waiting, the adaptive limit, the circuit breaker, and the calls it did not make.
 */
export interface ParticipantLoadView {
  /** Calls this instance has in flight to the participant now. */
  inFlight: number;
  /** Calls waiting here for a free slot. */
  queued: number;
  /** The adaptive limit on calls in flight now (at most `maxInFlight`). */
  limit: number;
  /** The ceiling in force on this instance: the operator's `maxInFlight`, or PARTICIPANT_MAX_IN_FLIGHT. */
  maxInFlight: number;
  breaker: BreakerStateView;
  /** An open breaker: milliseconds until it lets a probe call through; null when not open. */
  breakerRetryInMs: number | null;
  /** Calls not made since this instance started, by reason; their transactions try again later. */
  notMade: { breakerOpen: number; queueFull: number; queueTimeout: number };
}

/** The answer to a rotation: the new secret, for a participant that does not register to learn it. */
export interface SecretRotationView extends ParticipantAdminView {
  signingSecret: string;
}

/** One entry of a transaction's history (PROTOCOL.md 6). */
export interface TransactionEventView {
  at: string;
  type: string;
  branchId: string | null;
  from: string | null;
  to: string | null;
  detail: Json;
}

/**
 * The rows an AT branch locked in its participant's database, as the admin API shows them (an
 * addition to PROTOCOL.md 6): what its prepare reported (BranchLocks) and for how long.
 */
export interface BranchLocksView {
  /** Rows locked, all of them; `rows` names the first AT_LOCKS_REPORTED. */
  count: number;
  rows: { table: string; key: string }[];
  /** When the coordinator recorded the prepare's answer that reported them (ISO-8601). */
  since: string;
  /** When the branch's phase 2 finished (committed or rolled back), which released them; null while held. */
  releasedAt: string | null;
  /** Milliseconds held: until now while held, until `releasedAt` after. */
  heldMs: number;
}

/** A branch in GET /admin/transactions/{gid}: the view of PROTOCOL.md 3.4, plus `locks` on an AT branch whose prepare reported them. */
export interface BranchDetailView extends BranchView {
  locks?: BranchLocksView;
}

/** GET /admin/transactions/{gid}: the view of PROTOCOL.md 3.4 with its history, and (an addition to PROTOCOL.md 6) its trace. */
export interface TransactionDetailView extends TransactionView {
  branches: BranchDetailView[];
  events: TransactionEventView[];
  /** The W3C trace id (32 hex digits) of the trace the transaction was begun in (its begin's `traceparent`); null when none was given. */
  traceId: string | null;
  /** The trace in the operator's tracing UI (the coordinator's TRACE_UI_URL with `traceId`); null without either. */
  traceUrl: string | null;
}

/** One AT branch holding row locks now (GET /admin/locks): its phase 2 has not finished, nor has its transaction. */
export interface HeldLockView {
  gid: string;
  branchId: string;
  participant: string;
  action: string;
  transactionStatus: GlobalStatus;
  count: number;
  rows: { table: string; key: string }[];
  since: string;
  heldMs: number;
}

/** GET /admin/locks: held locks, oldest (held longest) first. */
export interface HeldLocksPage {
  items: HeldLockView[];
  nextCursor: string | null;
}

export interface TransactionPage {
  items: TransactionView[];
  nextCursor: string | null;
}

export interface TransactionCounts {
  byStatus: Record<string, number>;
  byMode: Record<string, number>;
  needsAttention: number;
  total: number;
}

/** The admission control of the instance that answered GET /admin/stats (each instance counts its own). */
export interface InstanceLoadView {
  /** INSTANCE_ID of the instance that answered. */
  instanceId: string;
  /** Begins this instance admitted since it started. */
  admitted: number;
  /** Begins it refused with 503 OVERLOADED since it started. */
  refused: number;
  /** Participant calls waiting for a slot on it now, all participants together. */
  queued: number;
}

/** GET /admin/stats: the transactions in the log (every instance's), and this instance's admission control. */
export interface AdminStats extends TransactionCounts {
  instance: InstanceLoadView;
}
