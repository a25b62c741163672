import { Injectable, Logger } from '@nestjs/common';
import { isTerminal, phaseKind, type CallOutcome, type GlobalStatus, type Phase } from '@nest-dtx/protocol';
import { debugLogged } from '../logging/json-logger.js';
import { forTransaction } from '../logging/transaction-logger.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { DatabaseTime } from '../store/database-clock.js';
import type { BranchChange, BranchRecord, EventInput, LoadedTx, Phase1Outcome, TxChange, TxRecord } from '../store/records.js';
import { BranchCaller, wasNotCalled, type PhaseCall } from './branch-caller.js';
import { crashPoint, type CrashPoint } from './crash-points.js';
import { branchStatusIn, errorOf, lockedRowsOf, waitingIn } from './machine.js';
import { transition, type MachineEvent, type MachineTx } from './state-machine.js';
import { TransactionWriter } from './transaction-writer.js';
import type { Wave, WaveCall } from './wave.js';

/**
 * What a wave is for, read from its transaction's status and its calls' phases: phase 1 while
 * active (one-shot, a saga's steps, an added branch), a question to the caller's service while
 * active (msg's check-back), a workflow's host asked to run it again while active (resume), or
 * phase 2 of a decided transaction. It decides how answers are scheduled, flagged and where the
 * crash points are.
 */
export type Stage = 'phase1' | 'check' | 'resume' | 'phase2';

export function stageOf(status: GlobalStatus, calls: readonly WaveCall[]): Stage {
  if (status !== 'active') return 'phase2';
  const phase = calls.find((c) => c.phase !== null)?.phase;
  if (!phase) return 'phase1';
  switch (phaseKind(phase)) {
    case 'phase1':
      return 'phase1';
    case 'resume':
      return 'resume';
    default:
      return 'check';
  }
}

/**
 * What an answer does to its call. This is the one place a participant's answer gets its
 * meaning for the round:
 * - `settled`: a success, or a refusal where a refusal is an answer (phase 1, the check-back; in
 *   phase 2 a 409 is a participant bug, retried);
 * - `waiting`: ongoing (PROTOCOL.md 3.6: accepted, outcome not known yet). The same call is made
 *   again, when the participant said (`retryAfterMs`) or after a wait that grows with how long
 *   it has waited; it is no failure: it counts no attempt and never flags for attention;
 * - `failed`: anything else (no answer, an error, a 409 in phase 2): made again after the
 *   backoff of the attempt, counted toward attention.
 *
 * A workflow's host (PROTOCOL.md 3.7) answers a resume `2xx` once it decided and `202` while it
 * runs: both settle the resume (the wave says when to resume again); anything else, a 409 among
 * them (it could not replay the workflow), fails, retried and flagged as in phase 2.
 */
export type CallSettlement = 'settled' | 'waiting' | 'failed';

export function settlementOf(outcome: CallOutcome, stage: Stage): CallSettlement {
  if (stage === 'resume') return outcome.kind === 'ok' || outcome.kind === 'ongoing' ? 'settled' : 'failed';
  if (outcome.kind === 'ok' || (outcome.kind === 'failed' && stage !== 'phase2')) return 'settled';
  return outcome.kind === 'ongoing' ? 'waiting' : 'failed';
}

/** What ongoing answers ask of the schedule: when to ask again. */
export interface OngoingWait {
  /** The longest `retryAfterMs` the ongoing answers gave: none is asked again before it. Null when none gave one. */
  readonly retryAfterMs: number | null;
  /**
   * Some gave none: they are asked again after a wait that grows with how long they have waited,
   * since `since` (the longest-waiting of them; null: the wait began with this answer).
   */
  readonly unhinted: { readonly since: Date | null } | null;
}

/** When the transaction is looked at again after a write. */
export type NextLook =
  /** Terminal: never again; the lease is let go. */
  | { kind: 'never' }
  /** More to do at once (the next wave, phase 2 after a decision): this instance keeps the transaction under a fresh lease. */
  | { kind: 'now' }
  /**
   * A call must be made again: after the backoff of `attempt` when a call failed (null: none
   * did), and no sooner than ongoing answers ask; no later than the deadline while phase 1 (or
   * a workflow's resume) runs against it.
   */
  | { kind: 'retry'; attempt: number | null; ongoing: OngoingWait | null; cappedAtDeadline: boolean }
  /**
   * A reported outcome settled its branch while others of the stage still wait for theirs:
   * looked at again when it was due (their repeat), as if the answer had come with theirs.
   */
  | { kind: 'when_due' }
  /**
   * The mode asked for nothing before then (a message before its check-back time, a workflow
   * until its next resume); while active, perhaps no later than the deadline.
   */
  | { kind: 'in'; ms: number; cappedAtDeadline?: boolean };

/** What the schedule rules read: this instance's lease, the backoffs, and times in the database's time. */
export interface ScheduleClock {
  ownLease(): Pick<TxChange, 'lease' | 'nextAttemptInMs'>;
  retryDelayMs(attempt: number): number;
  /** How long to wait before asking again a participant that answered ongoing without saying when, having waited `waitedMs`. */
  waitingDelayMs(waitedMs: number): number;
  msUntil(time: Date): number;
}

/** How long ongoing answers ask to wait before the same calls are made again. */
function ongoingDelayMs(ongoing: OngoingWait, clock: ScheduleClock): number {
  const hinted = ongoing.retryAfterMs ?? 0;
  if (!ongoing.unhinted) return hinted;
  const waitedMs = ongoing.unhinted.since ? Math.max(0, -clock.msUntil(ongoing.unhinted.since)) : 0;
  return Math.max(hinted, clock.waitingDelayMs(waitedMs));
}

/** The lease and due time a write sets: the schedule of every write of the engine, here alone. */
export function scheduleOf(next: NextLook, tx: Pick<TxRecord, 'deadline' | 'nextAttemptAt'>, clock: ScheduleClock): Pick<TxChange, 'lease' | 'nextAttemptInMs'> {
  switch (next.kind) {
    case 'never':
      return { lease: null, nextAttemptInMs: null };
    case 'now':
      return clock.ownLease();
    case 'retry': {
      const afterFailure = next.attempt === null ? 0 : clock.retryDelayMs(next.attempt);
      const delay = Math.ceil(Math.max(afterFailure, next.ongoing ? ongoingDelayMs(next.ongoing, clock) : 0));
      // Phase 1 retried while active: never past the deadline, which then rolls it back.
      return { lease: null, nextAttemptInMs: next.cappedAtDeadline ? Math.min(delay, Math.max(0, Math.ceil(clock.msUntil(tx.deadline)))) : delay };
    }
    case 'when_due':
      return { lease: null, nextAttemptInMs: tx.nextAttemptAt === null ? 0 : Math.max(0, Math.ceil(clock.msUntil(tx.nextAttemptAt))) };
    case 'in': {
      const ms = next.cappedAtDeadline ? Math.min(next.ms, Math.max(0, clock.msUntil(tx.deadline))) : next.ms;
      return { lease: null, nextAttemptInMs: Math.ceil(ms) };
    }
  }
}

/** A round's answers as one write: everything but the lease and due time, which `next` says. */
export interface Settled {
  change: Omit<TxChange, 'lease' | 'nextAttemptInMs' | 'attempts'> & { attempts: number };
  next: NextLook;
  moved: boolean;
  terminal: boolean;
}

/**
 * The events whose answers are a decision in themselves: the status event names them as its
 * cause. Answers that complete a saga's steps or phase 2 move the status without one.
 */
const DECISIONS: ReadonlySet<MachineEvent['type']> = new Set(['phase1_finished', 'check_answered']);

/**
 * Where a round's answers came from: the calls of its wave, or a participant's report of the
 * final answer of a call it had answered ongoing (PROTOCOL.md 3.6), which has exactly the effect
 * the same answer to the call would have had.
 */
export type AnswerSource = 'calls' | 'report';

/** One round's answers, as the state machine read them. */
export interface RoundAnswers {
  tx: TxRecord;
  wave: Wave;
  /** In the order of the wave's calls. */
  outcomes: readonly CallOutcome[];
  /** The machine events they formed, and the machine before and after them. */
  events: readonly MachineEvent[];
  before: MachineTx;
  next: MachineTx;
  source: AnswerSource;
}

/**
 * The rules of every round, as one pure function of its answers: each branch's change, the
 * history, attempts, the attention flag and when to look again.
 *
 * - attempts: back to 0 when the status moves (a new stage) or a workflow's host answered its
 *   resume (it is there), one more when a call failed and must be made again, else unchanged
 *   (an ongoing answer is no failure).
 * - attention: phase 1 is bounded by the deadline and never flags; a check-back, a resume or
 *   phase 2 that is refused (409) or failed ATTENTION_AFTER_ATTEMPTS times does, still retried.
 *   Ongoing answers never do, however long they last.
 * - waiting: a branch waits from its phase's first ongoing answer until a final one, or until
 *   the status moves (the machine says which; see MachineBranch.waiting).
 * - next look: never when terminal; a retry when a call must be made again (after the backoff
 *   of a failure, no sooner than ongoing answers ask; capped at the deadline while active in
 *   phase 1 or a resume); after the wave's idle time when it has one (a resume answered: the
 *   next resume, capped at the deadline); else now, under this instance's lease; a report that
 *   leaves others of its stage waiting, when due.
 */
export function settle(answers: RoundAnswers, attentionAfterAttempts: number): Settled {
  const { tx, wave, outcomes, events, before, next, source } = answers;
  const stage = stageOf(tx.status, wave.calls);
  const moved = next.status !== tx.status;
  const terminal = isTerminal(next.status);
  const settlements = outcomes.map((o) => settlementOf(o, stage));
  const failed = settlements.includes('failed');
  const retrying = !moved && settlements.some((s) => s !== 'settled');
  const attempts = moved || (stage === 'resume' && !retrying) ? 0 : retrying && failed ? tx.attempts + 1 : tx.attempts;
  const refused = outcomes.some((o) => o.kind === 'failed');
  const needsAttention = stage === 'phase1' ? undefined : !moved && (refused || (failed && attempts >= attentionAfterAttempts));
  const statusOf = branchStatusIn(next);
  const waitsAfter = waitingIn(next);
  const waitedBefore = waitingIn(before);

  const branches: BranchChange[] = [];
  const history: EventInput[] = [];
  const called = new Set<string>();
  wave.calls.forEach((call, i) => {
    const to = call.branch ? statusOf(call.branch) : undefined;
    if (call.phase) history.push(source === 'report' ? reportEvent(call, call.phase, outcomes[i], to) : callEvent(tx, call, call.phase, outcomes[i], to));
    if (!call.branch || !to) return;
    called.add(call.branch.branchId);
    const waits = waitsAfter(call.branch.branchId);
    const waiting = waits === (call.branch.waitingSince !== null) ? undefined : waits;
    branches.push(branchChange(stage, call.branch, source === 'report' ? 0 : call.phase ? 1 : 0, outcomes[i], to, waiting));
  });
  // The branches this round did not call that stopped waiting: the status moved, a new phase begins for them.
  for (const b of before.branches) {
    if (!called.has(b.branchId) && waitedBefore(b.branchId) && !waitsAfter(b.branchId)) branches.push({ branchId: b.branchId, calls: 0, waiting: false });
  }
  if (moved) {
    const cause = events.findLast((e) => DECISIONS.has(e.type))?.type;
    history.push({ type: 'status', from: tx.status, to: next.status, detail: cause ? { reason: next.reason, cause } : { reason: next.reason } });
  }
  if (needsAttention && !tx.needsAttention) history.push({ type: 'attention', detail: { attempts, refused } });

  const active = next.status === 'active';
  const idleMs = !moved && wave.idleAfter ? wave.idleAfter(outcomes) : undefined;
  let look: NextLook = { kind: 'now' };
  if (terminal) look = { kind: 'never' };
  else if (retrying) {
    const cappedAtDeadline = stage === 'phase1' || (stage === 'resume' && active);
    look = { kind: 'retry', attempt: failed ? attempts : null, ongoing: ongoingWait(tx, wave, outcomes), cappedAtDeadline };
  } else if (source === 'report' && next.branches.some((b) => b.waiting && !called.has(b.branchId))) {
    look = { kind: 'when_due' };
  } else if (idleMs !== undefined) {
    look = { kind: 'in', ms: idleMs, cappedAtDeadline: active };
  }
  // Built, then given needsAttention when said: a spread in the middle of the literal made a slow
  // object that the round's write then copied and the store read (the round's costliest line in a profile).
  const change: Settled['change'] = { status: next.status, reason: next.reason, attempts, branches, events: history };
  if (needsAttention !== undefined) change.needsAttention = needsAttention;
  return {
    change,
    next: look,
    moved,
    terminal,
  };
}

/**
 * What the round's ongoing answers ask of the schedule; null when there were none. A branch's
 * wait began at its `waitingSince`; msg's check-back (no branch) has been asked since the deadline.
 */
function ongoingWait(tx: TxRecord, wave: Wave, outcomes: readonly CallOutcome[]): OngoingWait | null {
  let any = false;
  let retryAfterMs: number | null = null;
  let unhinted: { since: Date | null } | null = null;
  for (const [i, call] of wave.calls.entries()) {
    const outcome = outcomes[i];
    if (outcome.kind !== 'ongoing') continue;
    any = true;
    if (outcome.retryAfterMs !== undefined) {
      retryAfterMs = Math.max(retryAfterMs ?? 0, outcome.retryAfterMs);
      continue;
    }
    const since = call.branch ? call.branch.waitingSince : tx.deadline;
    // The longest wait sets the pace: null (began now) only when no other one is older.
    if (!unhinted || (since !== null && (unhinted.since === null || since < unhinted.since))) unhinted = { since };
  }
  return any ? { retryAfterMs, unhinted } : null;
}

/** A branch's change for one answer, made with `calls` calls (none for a reported one). */
function branchChange(stage: Stage, branch: BranchRecord, calls: number, outcome: CallOutcome, status: BranchRecord['status'], waiting: boolean | undefined): BranchChange {
  // One literal per case, an absent field undefined (the store reads both alike): no spreads on every answer.
  const { branchId } = branch;
  // Accepted, not done: what the branch showed before (why an earlier try failed) stays.
  if (outcome.kind === 'ongoing') return { branchId, status, calls, waiting };
  if (outcome.kind !== 'ok') return { branchId, status, calls, waiting, lastError: errorOf(outcome) };
  // A phase-1 success keeps its result, and an AT prepare's locked rows ride in the same write.
  if (stage === 'phase1') {
    const change: BranchChange = { branchId, status, calls, waiting, result: outcome.result, lastError: branch.lastError === null ? undefined : null };
    const { locks } = lockedRowsOf(outcome);
    if (locks) change.locks = locks;
    return change;
  }
  // Why phase 1 failed (refusal, no answer) stays visible after the rollback; on a branch whose
  // phase 1 succeeded the only errors are phase-2 retries, cleared once one succeeds.
  return { branchId, status, calls, waiting, lastError: branch.status === 'failed' || branch.status === 'pending' ? undefined : null };
}

/** Which call to its branch this is, from 1, every phase counted (msg's check-back is no branch: it counts the transaction's attempts). */
function attemptOf(tx: TxRecord, call: WaveCall): number {
  return (call.branch ? call.branch.attempts : tx.attempts) + 1;
}

/** The history event of one participant call (msg's check-back is no branch: it has no statuses, and counts the transaction's attempts). */
function callEvent(tx: TxRecord, call: WaveCall, phase: Phase, outcome: CallOutcome, to: string | undefined): EventInput {
  const { target, branch } = call;
  const detail = {
    participant: target.participant,
    action: target.action,
    phase,
    outcome: outcome.kind,
    attempt: attemptOf(tx, call),
    ...(outcome.kind === 'ok' || outcome.kind === 'ongoing' ? {} : { error: errorOf(outcome) }),
    ...(outcome.kind === 'ongoing' && outcome.retryAfterMs !== undefined ? { retryAfterMs: outcome.retryAfterMs } : {}),
  };
  return branch ? { type: 'call', branchId: target.branchId, from: branch.status, to, detail } : { type: 'call', branchId: target.branchId, detail };
}

/** The history event of a reported outcome: no call was made, the participant told the answer. */
function reportEvent(call: WaveCall, phase: Phase, outcome: CallOutcome, to: string | undefined): EventInput {
  const { target, branch } = call;
  const detail = { participant: target.participant, action: target.action, phase, outcome: outcome.kind, ...(outcome.kind === 'failed' ? { error: outcome.error } : {}) };
  return branch ? { type: 'outcome_reported', branchId: target.branchId, from: branch.status, to, detail } : { type: 'outcome_reported', branchId: target.branchId, detail };
}

/** The crash point where a stage's calls have answered and nothing is written yet (none for a resume: the host's own writes are what it does). */
const CALLS_ANSWERED: Readonly<Record<Stage, CrashPoint | null>> = {
  phase1: 'after_phase1_calls',
  check: 'after_check_call',
  resume: null,
  phase2: 'after_phase2_calls',
};

export interface RoundResult {
  /** The transaction as written; null when another writer moved it first (this instance is fenced off). */
  saved: LoadedTx | null;
  /** Whether there is more to do at once under this instance's lease. */
  continues: boolean;
}

/**
 * The engine's one round: calls a wave (or takes the answer a participant reported instead of
 * a call), has the state machine read the answers, and writes what they came to (branch
 * changes, history, attempts, attention, schedule) in one compare-and-set. Every mode's every
 * call goes through here; modes only choose waves.
 */
@Injectable()
export class TransactionRound {
  // Its lines are the engine's own: operators follow a transaction by that context.
  private readonly logger = new Logger('TransactionEngine');

  constructor(
    private readonly writer: TransactionWriter,
    private readonly caller: BranchCaller,
    private readonly clock: DatabaseTime,
    private readonly metrics: MetricsService,
  ) {}

  /** What the schedule rules read, made once rather than four closures on every write. */
  private readonly scheduleClock: ScheduleClock = {
    ownLease: () => this.writer.ownLease(),
    retryDelayMs: (a) => this.writer.retryDelayMs(a),
    waitingDelayMs: (waited) => this.writer.waitingDelayMs(waited),
    msUntil: (d) => this.clock.msUntil(d),
  };

  /** The lease and due time of a write after which the transaction is looked at `next`. */
  schedule(next: NextLook, tx: Pick<TxRecord, 'deadline' | 'nextAttemptAt'>): Pick<TxChange, 'lease' | 'nextAttemptInMs'> {
    return scheduleOf(next, tx, this.scheduleClock);
  }

  /**
   * One wave of a transaction this instance drives under its lease (BranchCaller refuses to
   * call past it). With `reported`, nobody is called: these are the wave's answers, as a
   * participant reported them (PROTOCOL.md 3.6), and they are written as its calls' would be.
   * The caller makes sure no other instance holds a live lease then (it would be calling).
   */
  async run(loaded: LoadedTx, machine: MachineTx, wave: Wave, reported?: readonly CallOutcome[]): Promise<RoundResult> {
    const { tx } = loaded;
    const stage = stageOf(tx.status, wave.calls);
    const outcomes = reported ?? (await this.call(loaded, wave, stage));
    const { events, next } = this.answer(machine, wave, outcomes);
    const source = reported ? 'report' : 'calls';
    const settled = settle({ tx, wave, outcomes, events, before: machine, next, source }, this.writer.attentionAfterAttempts);

    const { lease, nextAttemptInMs } = this.schedule(settled.next, tx);
    const saved = await this.writer.write(loaded, { ...settled.change, lease, nextAttemptInMs });
    if (!saved) {
      if (stage === 'phase2' && !reported) forTransaction(this.logger, tx.gid).warn('phase-2 result not written: another instance holds the transaction');
      return { saved: null, continues: false };
    }
    const continues = settled.next.kind === 'now';
    if (stage !== 'phase2' && settled.moved) crashPoint('after_decision', tx.gid);
    // Between two rounds of a compensation in dependency order: some steps compensated and recorded, others not yet.
    if (stage === 'phase2' && continues && saved.tx.status === 'rolling_back') crashPoint('during_compensation', tx.gid);
    if (settled.terminal && debugLogged()) forTransaction(this.logger, tx.gid).debug(`finished: ${next.status}`, { status: next.status, reason: next.reason });
    if (stage === 'phase2' && settled.next.kind === 'retry') this.phase2Incomplete(tx, wave, outcomes, settled.change.attempts);
    if (stage === 'resume' && settled.next.kind === 'retry') this.resumeUnanswered(tx, outcomes, settled.change.attempts);
    return { saved, continues };
  }

  /** Nothing to call for `ms` (the mode said so): the lease let go, due again then. Null when fenced off. */
  postpone(loaded: LoadedTx, ms: number): Promise<LoadedTx | null> {
    const { tx } = loaded;
    return this.writer.write(loaded, { status: tx.status, reason: tx.reason, ...this.schedule({ kind: 'in', ms }, tx), branches: [], events: [] });
  }

  /**
   * Phase 1 of a branch just added to an interactive transaction. No lease: adds to one
   * transaction run side by side, so the answer is recorded on the branch alone, not with a
   * compare-and-set of the transaction (which an answer never moves). A workflow step's final
   * answer (`holdAnswer`) is held, to be written with the workflow's next write (held-answers.ts).
   */
  async runForAddedBranch(found: Pick<LoadedTx, 'tx'>, machine: MachineTx, wave: Wave, holdAnswer = false): Promise<BranchRecord> {
    const [call] = wave.calls;
    const { branch, phase } = call;
    if (wave.calls.length !== 1 || !branch || !phase) throw new Error('an added branch is one call, of its phase 1');
    const outcome = await this.caller.call(found, call.target, phase, call.mode, attemptOf(found.tx, call));
    const { events, next } = this.answer(machine, wave, [outcome]);
    const settled = settle({ tx: found.tx, wave, outcomes: [outcome], events, before: machine, next, source: 'calls' }, this.writer.attentionAfterAttempts);
    const [change] = settled.change.branches;
    const status = change.status ?? branch.status;
    // Named, not a rest copy of the change: V8 builds that key by key, and the store reads it slowly after.
    const answer: Phase1Outcome = { result: change.result, lastError: change.lastError, locks: change.locks, waiting: change.waiting };
    // Accepted, not done (PROTOCOL.md 3.6): the transaction falls due when the branch is to be
    // asked again (recovery asks it), no longer only at its deadline.
    const askAgainInMs = settled.next.kind === 'retry' && settled.next.ongoing ? this.schedule(settled.next, found.tx).nextAttemptInMs : null;
    const held = holdAnswer && askAgainInMs === null ? this.writer.hold(found.tx.gid, branch, status, answer, settled.change.events) : null;
    if (held) return held;
    const saved = await this.writer.recordPhase1(
      found.tx.gid,
      branch.branchId,
      status,
      askAgainInMs === null ? answer : { ...answer, askAgainInMs },
      settled.change.events,
    );
    return saved ?? { ...branch, status };
  }

  /**
   * The wave's calls. A branch whose kind has no phase now is answered as done without a call;
   * a wave of nothing but such branches (a message's rollback) calls no one and needs no lease.
   */
  private async call(loaded: LoadedTx, wave: Wave, stage: Stage): Promise<CallOutcome[]> {
    const { gid } = loaded.tx;
    const made: PhaseCall[] = []; // a loop, not flatMap's array per call
    for (const call of wave.calls) if (call.phase) made.push({ target: call.target, phase: call.phase, mode: call.mode, attempt: attemptOf(loaded.tx, call) });
    const done: CallOutcome = { kind: 'ok', result: null };
    if (made.length === 0 && wave.calls.length > 0) return wave.calls.map(() => done);
    const answers = await this.caller.callAll(loaded, made, stage === 'phase2' ? () => crashPoint('mid_phase2', gid) : undefined);
    const point = CALLS_ANSWERED[stage];
    if (point) crashPoint(point, gid);
    let answered = 0;
    return wave.calls.map((call) => (call.phase ? answers[answered++] : done));
  }

  /** What the answers come to, as the state machine says. */
  private answer(machine: MachineTx, wave: Wave, outcomes: readonly CallOutcome[]): { events: MachineEvent[]; next: MachineTx } {
    const events = wave.answered(outcomes);
    let next = machine;
    for (const event of events) {
      const result = transition(next, event);
      if (!result.ok) throw new Error(`${event.type} refused: ${result.error}`);
      next = result.tx;
    }
    return { events, next };
  }

  /** A workflow's host did not take its resume: retried later, and flagged past the attention count (or at once on a 409). */
  private resumeUnanswered(tx: TxRecord, outcomes: readonly CallOutcome[], attempts: number): void {
    const [outcome] = outcomes;
    if (!outcome || outcome.kind === 'ok' || outcome.kind === 'ongoing') return;
    const error = errorOf(outcome);
    const why = typeof error === 'string' ? error : JSON.stringify(error);
    const line = `workflow resume not taken by its host after attempt ${attempts}; retrying later`;
    const detail = { attempts, outcome: outcome.kind, error: why.slice(0, 300) };
    // A call the host's gate held back is no news per workflow: the breaker's own line says it once.
    if (wasNotCalled(outcome)) forTransaction(this.logger, tx.gid).debug(line, detail);
    else forTransaction(this.logger, tx.gid).warn(line, detail);
  }

  /** One line per branch still owed its phase 2, so each can be followed by its branchId. */
  private phase2Incomplete(tx: TxRecord, wave: Wave, outcomes: readonly CallOutcome[], attempts: number): void {
    if (outcomes.some((o) => settlementOf(o, 'phase2') === 'failed')) this.metrics.retries.inc({ mode: tx.mode });
    const txLogger = forTransaction(this.logger, tx.gid);
    wave.calls.forEach(({ target, phase }, i) => {
      const outcome = outcomes[i];
      if (outcome.kind === 'ok') return;
      if (outcome.kind === 'ongoing') {
        // Accepted, not done yet (PROTOCOL.md 3.6): no failure, nothing for an operator to do.
        txLogger.branch(target.branchId).debug(`phase 2 (${phase}) ongoing; asking again later`, { phase, retryAfterMs: outcome.retryAfterMs });
        return;
      }
      // Why, too: without it an operator reading the log cannot tell a down participant from a lock timeout.
      const error = errorOf(outcome);
      const why = typeof error === 'string' ? error : JSON.stringify(error);
      const line = `phase 2 (${phase}) incomplete after attempt ${attempts}; retrying later`;
      const detail = { phase, attempts, outcome: outcome.kind, error: why.slice(0, 300) };
      // A call the participant's gate held back (its breaker open, its queue full) is no news
      // per transaction: the breaker's own line and the metrics say it once for all of them.
      if (wasNotCalled(outcome)) txLogger.branch(target.branchId).debug(line, detail);
      else txLogger.branch(target.branchId).warn(line, detail);
    });
  }
}
