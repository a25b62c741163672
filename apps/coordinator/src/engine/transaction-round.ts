import { Injectable, Logger } from '@nestjs/common';
import { isTerminal, phaseKind, type CallOutcome, type GlobalStatus, type Phase } from '@nest-dtx/protocol';
import { forTransaction } from '../logging/transaction-logger.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { DatabaseTime } from '../store/database-clock.js';
import type { BranchChange, BranchRecord, EventInput, LoadedTx, TxChange, TxRecord } from '../store/records.js';
import { BranchCaller, wasNotCalled } from './branch-caller.js';
import { crashPoint } from './crash-points.js';
import { branchStatusIn, errorOf, lockedRowsOf } from './machine.js';
import { transition, type MachineEvent, type MachineTx } from './state-machine.js';
import { TransactionWriter } from './transaction-writer.js';
import type { Wave, WaveCall } from './wave.js';

/**
 * What a wave is for, read from its transaction's status and its calls' phases: phase 1 while
 * active (one-shot, a saga's steps, an added branch), a question to the caller's service while
 * active (msg's check-back), or phase 2 of a decided transaction. It decides how answers are
 * scheduled, flagged and where the crash points are.
 */
export type Stage = 'phase1' | 'check' | 'phase2';

export function stageOf(status: GlobalStatus, calls: readonly WaveCall[]): Stage {
  if (status !== 'active') return 'phase2';
  const phase = calls.find((c) => c.phase !== null)?.phase;
  return phase && phaseKind(phase) !== 'phase1' ? 'check' : 'phase1';
}

/**
 * Whether an answer settles its call: a success, or a refusal where a refusal is an answer
 * (phase 1, the check-back; in phase 2 a 409 is a participant bug, retried). Anything else asks
 * for the same call again later. This is the one place a participant's `ongoing` (PROTOCOL.md
 * 3.6) gets its meaning: for now it is retried as a transient failure is.
 */
export function settlesCall(outcome: CallOutcome, stage: Stage): boolean {
  return outcome.kind === 'ok' || (outcome.kind === 'failed' && stage !== 'phase2');
}

/** When the transaction is looked at again after a write. */
export type NextLook =
  /** Terminal: never again; the lease is let go. */
  | { kind: 'never' }
  /** More to do at once (the next wave, phase 2 after a decision): this instance keeps the transaction under a fresh lease. */
  | { kind: 'now' }
  /** A call must be made again: after a backoff for this attempt, no later than the deadline while phase 1 runs against it. */
  | { kind: 'retry'; attempt: number; cappedAtDeadline: boolean }
  /** The mode asked for nothing before then (a message before its check-back time). */
  | { kind: 'in'; ms: number };

/** What the schedule rules read: this instance's lease, the backoff, and the deadline in the database's time. */
export interface ScheduleClock {
  ownLease(): Pick<TxChange, 'lease' | 'nextAttemptInMs'>;
  retryDelayMs(attempt: number): number;
  msUntil(deadline: Date): number;
}

/** The lease and due time a write sets: the schedule of every write of the engine, here alone. */
export function scheduleOf(next: NextLook, tx: Pick<TxRecord, 'deadline'>, clock: ScheduleClock): Pick<TxChange, 'lease' | 'nextAttemptInMs'> {
  switch (next.kind) {
    case 'never':
      return { lease: null, nextAttemptInMs: null };
    case 'now':
      return clock.ownLease();
    case 'retry': {
      const delay = clock.retryDelayMs(next.attempt);
      // Phase 1 retried while active: never past the deadline, which then rolls it back.
      return { lease: null, nextAttemptInMs: next.cappedAtDeadline ? Math.min(delay, Math.max(0, Math.ceil(clock.msUntil(tx.deadline)))) : delay };
    }
    case 'in':
      return { lease: null, nextAttemptInMs: Math.ceil(next.ms) };
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
 * The rules of every round, as one pure function of its answers: each branch's change, the
 * history, attempts, the attention flag and when to look again.
 *
 * - attempts: back to 0 when the status moves (a new stage), one more when a call must be
 *   made again, else unchanged.
 * - attention: phase 1 is bounded by the deadline and never flags; a check-back or phase 2
 *   that is refused (409) or retried ATTENTION_AFTER_ATTEMPTS times does, still retried.
 * - next look: never when terminal; a retry with backoff when a call must be made again
 *   (capped at the deadline in phase 1); else now, under this instance's lease.
 */
export function settle(
  tx: TxRecord,
  wave: Wave,
  outcomes: readonly CallOutcome[],
  events: readonly MachineEvent[],
  next: MachineTx,
  attentionAfterAttempts: number,
): Settled {
  const stage = stageOf(tx.status, wave.calls);
  const moved = next.status !== tx.status;
  const terminal = isTerminal(next.status);
  const retrying = !moved && outcomes.some((o) => !settlesCall(o, stage));
  const attempts = moved ? 0 : retrying ? tx.attempts + 1 : tx.attempts;
  const refused = outcomes.some((o) => o.kind === 'failed');
  const needsAttention = stage === 'phase1' ? undefined : !moved && (refused || attempts >= attentionAfterAttempts);
  const statusOf = branchStatusIn(next);

  const branches: BranchChange[] = [];
  const history: EventInput[] = [];
  wave.calls.forEach((call, i) => {
    const to = call.branch ? statusOf(call.branch) : undefined;
    if (call.phase) history.push(callEvent(tx, call, call.phase, outcomes[i], to));
    if (call.branch && to) branches.push(branchChange(stage, call.branch, call.phase, outcomes[i], to));
  });
  if (moved) {
    const cause = events.findLast((e) => DECISIONS.has(e.type))?.type;
    history.push({ type: 'status', from: tx.status, to: next.status, detail: cause ? { reason: next.reason, cause } : { reason: next.reason } });
  }
  if (needsAttention && !tx.needsAttention) history.push({ type: 'attention', detail: { attempts, refused } });

  const look: NextLook = terminal ? { kind: 'never' } : retrying ? { kind: 'retry', attempt: attempts, cappedAtDeadline: stage === 'phase1' } : { kind: 'now' };
  return {
    change: { status: next.status, reason: next.reason, attempts, ...(needsAttention === undefined ? {} : { needsAttention }), branches, events: history },
    next: look,
    moved,
    terminal,
  };
}

/** A branch's change for one answer. */
function branchChange(stage: Stage, branch: BranchRecord, phase: Phase | null, outcome: CallOutcome, status: BranchRecord['status']): BranchChange {
  const change = { branchId: branch.branchId, status, calls: phase ? 1 : 0 };
  if (outcome.kind !== 'ok') return { ...change, lastError: errorOf(outcome) };
  // A phase-1 success keeps its result, and an AT prepare's locked rows ride in the same write.
  if (stage === 'phase1') return { ...change, result: outcome.result, ...lockedRowsOf(outcome), ...(branch.lastError === null ? {} : { lastError: null }) };
  // Why phase 1 failed (refusal, no answer) stays visible after the rollback; on a branch whose
  // phase 1 succeeded the only errors are phase-2 retries, cleared once one succeeds.
  return { ...change, lastError: branch.status === 'failed' || branch.status === 'pending' ? undefined : null };
}

/** The history event of one participant call (msg's check-back is no branch: it has no statuses, and counts the transaction's attempts). */
function callEvent(tx: TxRecord, call: WaveCall, phase: Phase, outcome: CallOutcome, to: string | undefined): EventInput {
  const { target, branch } = call;
  const detail = {
    participant: target.participant,
    action: target.action,
    phase,
    outcome: outcome.kind,
    attempt: (branch ? branch.attempts : tx.attempts) + 1,
    ...(outcome.kind === 'ok' ? {} : { error: errorOf(outcome) }),
  };
  return branch ? { type: 'call', branchId: target.branchId, from: branch.status, to, detail } : { type: 'call', branchId: target.branchId, detail };
}

export interface RoundResult {
  /** The transaction as written; null when another writer moved it first (this instance is fenced off). */
  saved: LoadedTx | null;
  /** Whether there is more to do at once under this instance's lease. */
  continues: boolean;
}

/**
 * The engine's one round: calls a wave, has the state machine read the answers, and writes
 * what they came to (branch changes, history, attempts, attention, schedule) in one
 * compare-and-set. Every mode's every call goes through here; modes only choose waves.
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

  /** The lease and due time of a write after which the transaction is looked at `next`. */
  schedule(next: NextLook, tx: Pick<TxRecord, 'deadline'>): Pick<TxChange, 'lease' | 'nextAttemptInMs'> {
    return scheduleOf(next, tx, { ownLease: () => this.writer.ownLease(), retryDelayMs: (a) => this.writer.retryDelayMs(a), msUntil: (d) => this.clock.msUntil(d) });
  }

  /** One wave of a transaction this instance drives under its lease (BranchCaller refuses to call past it). */
  async run(loaded: LoadedTx, machine: MachineTx, wave: Wave): Promise<RoundResult> {
    const { tx } = loaded;
    const stage = stageOf(tx.status, wave.calls);
    const outcomes = await this.call(loaded, wave, stage);
    const { events, next } = this.answer(machine, wave, outcomes);
    const settled = settle(tx, wave, outcomes, events, next, this.writer.attentionAfterAttempts);

    const saved = await this.writer.write(loaded, { ...settled.change, ...this.schedule(settled.next, tx) });
    if (!saved) {
      if (stage === 'phase2') forTransaction(this.logger, tx.gid).warn('phase-2 result not written: another instance holds the transaction');
      return { saved: null, continues: false };
    }
    const continues = settled.next.kind === 'now';
    if (stage !== 'phase2' && settled.moved) crashPoint('after_decision', tx.gid);
    // Between two rounds of a compensation in dependency order: some steps compensated and recorded, others not yet.
    if (stage === 'phase2' && continues && saved.tx.status === 'rolling_back') crashPoint('during_compensation', tx.gid);
    if (settled.terminal) forTransaction(this.logger, tx.gid).debug(`finished: ${next.status}`, { status: next.status, reason: next.reason });
    if (stage === 'phase2' && settled.next.kind === 'retry') this.phase2Incomplete(tx, wave, outcomes, settled.change.attempts);
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
   * compare-and-set of the transaction (which an answer never moves).
   */
  async runForAddedBranch(found: Pick<LoadedTx, 'tx'>, machine: MachineTx, wave: Wave): Promise<BranchRecord> {
    const [call] = wave.calls;
    const { branch, phase } = call;
    if (wave.calls.length !== 1 || !branch || !phase) throw new Error('an added branch is one call, of its phase 1');
    const outcome = await this.caller.call(found, call.target, phase);
    const { events, next } = this.answer(machine, wave, [outcome]);
    const { change } = settle(found.tx, wave, [outcome], events, next, this.writer.attentionAfterAttempts);
    const [{ branchId: _branchId, status = branch.status, calls: _calls, ...answer }] = change.branches;
    const saved = await this.writer.recordPhase1(found.tx.gid, branch.branchId, status, answer, change.events);
    return saved ?? { ...branch, status };
  }

  /**
   * The wave's calls. A branch whose kind has no phase now is answered as done without a call;
   * a wave of nothing but such branches (a message's rollback) calls no one and needs no lease.
   */
  private async call(loaded: LoadedTx, wave: Wave, stage: Stage): Promise<CallOutcome[]> {
    const { gid } = loaded.tx;
    const made = wave.calls.flatMap((call) => (call.phase ? [{ target: call.target, phase: call.phase }] : []));
    const done: CallOutcome = { kind: 'ok', result: null };
    if (made.length === 0 && wave.calls.length > 0) return wave.calls.map(() => done);
    const answers = await this.caller.callAll(loaded, made, stage === 'phase2' ? () => crashPoint('mid_phase2', gid) : undefined);
    crashPoint(stage === 'phase1' ? 'after_phase1_calls' : stage === 'check' ? 'after_check_call' : 'after_phase2_calls', gid);
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

  /** One line per branch still owed its phase 2, so each can be followed by its branchId. */
  private phase2Incomplete(tx: TxRecord, wave: Wave, outcomes: readonly CallOutcome[], attempts: number): void {
    this.metrics.retries.inc({ mode: tx.mode });
    const txLogger = forTransaction(this.logger, tx.gid);
    wave.calls.forEach(({ target, phase }, i) => {
      const outcome = outcomes[i];
      if (outcome.kind === 'ok') return;
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
